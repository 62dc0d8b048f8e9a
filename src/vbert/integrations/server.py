"""An OpenAI-compatible embedding server (FastAPI) that embeds documents of any length.

Endpoints:

* ``POST /v1/embeddings``: the OpenAI embeddings API (string or list input, ``encoding_format``
  ``float`` or ``base64``, ``usage.prompt_tokens``, OpenAI-style error bodies). vbert extension:
  ``"input_type": "query"`` embeds search queries with the embedder's query prefix.
* ``GET /v1/models``: the one model served.
* text-embeddings-inference style ``POST /embed``, ``POST /tokenize``, ``GET /info``, ``GET /health``.

Long inputs are chunked at the embedder's window, the chunks embedded through the persistent
chunk cache (shared by all requests), and merged into one vector: nothing is rejected for its
length and nothing is truncated. Concurrent requests are batched (:mod:`vbert.integrations.batching`).
Request bodies are limited in size, every request has a timeout, and with ``api_key`` every
route but ``/health`` needs ``Authorization: Bearer <key>``.

Start it with ``vbert serve`` or ``uvicorn``::

    app = create_app(vbert.LongDocumentEncoder(vbert.load_embedder(), vbert.load_merger("default")))
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

import vbert
from vbert.errors import ResourceError
from vbert.integrations._shared import encode_queries, require
from vbert.integrations.batching import MicroBatcher, OverloadedError

require("fastapi", "server")

from fastapi import Depends, FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from pydantic import BaseModel, ConfigDict  # noqa: E402
from starlette.datastructures import Headers  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402
from starlette.types import ASGIApp, Message, Receive, Scope, Send  # noqa: E402

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_INPUTS = 2048  # OpenAI's limit on inputs per request
DEFAULT_REQUEST_TIMEOUT = 120.0


@dataclass
class ServerSettings:
    """Limits and identity of a server; every field has a safe default."""

    model_name: str | None = None
    api_key: str | None = None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_inputs: int = DEFAULT_MAX_INPUTS
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    max_batch_texts: int = 64
    max_wait: float = 0.005
    max_pending: int = 1024


class ApiError(Exception):
    """An error answered to the client: HTTP status, message and OpenAI error type/code."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code


# TEI's error_type for each status (text-embeddings-inference's ErrorType).
_TEI_ERROR_TYPES = {413: "Validation", 422: "Validation", 429: "Overloaded", 503: "Unhealthy", 504: "Backend"}


def _error_response(request: Request, error: ApiError) -> JSONResponse:
    if request.url.path.startswith("/v1"):
        body: dict[str, Any] = {
            "error": {"message": error.message, "type": error.kind, "param": error.param, "code": error.code}
        }
    else:
        body = {"error": error.message, "error_type": _TEI_ERROR_TYPES.get(error.status, "Validation")}
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(body, status_code=error.status, headers=headers)


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with a 413 in the route's error style.

    A declared ``Content-Length`` over the limit is answered before the body is read; a body
    sent without one is counted as it arrives.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = _error_response(Request(scope), ApiError(413, self.message))
            return await response(scope, receive, send)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise StarletteHTTPException(413, self.message)
            return message

        await self.app(scope, counting_receive, send)

    @property
    def message(self) -> str:
        return f"request body is larger than the server's limit of {self.max_bytes} bytes"


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request; unknown fields (``user``...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    input: Any
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    input_type: Literal["query", "document"] = "document"


class EmbedRequest(BaseModel):
    """text-embeddings-inference's ``/embed`` request."""

    model_config = ConfigDict(extra="allow")
    inputs: Any
    normalize: bool = True
    truncate: bool | None = None
    prompt_name: str | None = None


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    inputs: Any
    add_special_tokens: bool = True


def _texts(value: Any, field: str, max_inputs: int) -> list[str]:
    """A request's input as a non-empty list of non-empty strings, or a 400 that says what is wrong."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise ApiError(400, f"'{field}' must be a string or a non-empty list of strings", param=field)
    if len(texts) > max_inputs:
        raise ApiError(
            400, f"'{field}' has {len(texts)} items; at most {max_inputs} per request", param=field
        )
    for index, text in enumerate(texts):
        if isinstance(text, int | list):
            raise ApiError(
                400,
                "token-id input is not supported (ids of another tokenizer mean nothing to this model): "
                "send the text itself",
                param=field,
            )
        if not isinstance(text, str):
            raise ApiError(400, f"{field}[{index}] is {type(text).__name__}, not a string", param=field)
        if not text.strip():
            raise ApiError(
                400, f"{field}[{index}] is empty or whitespace-only: nothing to embed", param=field
            )
    return texts


def _base64(vector: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


def create_app(encoder: vbert.LongDocumentEncoder, settings: ServerSettings | None = None) -> FastAPI:
    """The FastAPI application serving ``encoder`` (a :class:`vbert.LongDocumentEncoder`)."""
    settings = settings or ServerSettings()
    embedder, merger = encoder.embedder, encoder.merger
    model_name = settings.model_name or f"vbert/{embedder.name}+{merger.name}"

    def encode(texts: list[str], query: bool) -> list[tuple[np.ndarray, int]]:
        counts = [embedder.count_tokens(text) for text in texts]
        vectors = encode_queries(encoder, texts) if query else encoder.encode(texts)
        return list(zip(vectors, counts, strict=True))

    batcher = MicroBatcher(
        encode,
        max_batch_texts=settings.max_batch_texts,
        max_wait=settings.max_wait,
        max_pending=settings.max_pending,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="vbert embedding server", version=vbert.__version__, lifespan=lifespan)
    app.state.batcher = batcher
    app.state.encoder = encoder
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return _error_response(request, error)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'][1:]) or 'body'}: {e['msg']}" for e in error.errors()
        )
        status = 400 if request.url.path.startswith("/v1") else 422
        return _error_response(request, ApiError(status, f"invalid request: {problems}"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = str(error.detail)
        kind = "not_found_error" if error.status_code == 404 else "invalid_request_error"
        return _error_response(request, ApiError(error.status_code, message, kind))

    def check_key(request: Request) -> None:
        if settings.api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip(), settings.api_key):
            raise ApiError(
                401, "missing or wrong API key (send 'Authorization: Bearer <key>')", code="invalid_api_key"
            )

    async def embed(texts: list[str], query: bool) -> list[tuple[np.ndarray, int]]:
        if query and not hasattr(embedder, "encode_queries"):
            raise ApiError(400, f"embedder {embedder.name!r} has no query mode", param="input_type")
        try:
            return await asyncio.wait_for(batcher.submit(texts, query), settings.request_timeout)
        except TimeoutError:
            raise ApiError(
                504, f"the request took longer than {settings.request_timeout:g} s", "timeout_error"
            ) from None
        except OverloadedError as err:
            raise ApiError(429, str(err), "rate_limit_error", code="overloaded") from None
        except (ValueError, TypeError) as err:
            raise ApiError(400, str(err)) from None
        except ResourceError as err:
            raise ApiError(503, str(err), "server_error") from None

    authorized = [Depends(check_key)]

    @app.post("/v1/embeddings", dependencies=authorized)
    async def openai_embeddings(body: EmbeddingRequest) -> JSONResponse:
        if body.dimensions is not None and body.dimensions != embedder.dim:
            raise ApiError(
                400,
                f"this model gives {embedder.dim}-d vectors and cannot shorten them (dimensions={body.dimensions})",
                param="dimensions",
            )
        texts = _texts(body.input, "input", settings.max_inputs)
        rows = await embed(texts, body.input_type == "query")
        convert = _base64 if body.encoding_format == "base64" else (lambda v: v.tolist())
        tokens = sum(count for _, count in rows)
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": convert(vector)}
                    for i, (vector, _) in enumerate(rows)
                ],
                "model": model_name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    @app.get("/v1/models", dependencies=authorized)
    async def openai_models() -> dict:
        return {
            "object": "list",
            "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "vbert"}],
        }

    @app.post("/embed", dependencies=authorized)
    async def tei_embed(body: EmbedRequest) -> JSONResponse:
        if body.prompt_name not in (None, "document", "query"):
            raise ApiError(422, f"unknown prompt_name {body.prompt_name!r}: use 'query' or 'document'")
        texts = _texts(body.inputs, "inputs", settings.max_inputs)
        rows = await embed(texts, body.prompt_name == "query")
        return JSONResponse([vector.tolist() for vector, _ in rows])

    @app.post("/tokenize", dependencies=authorized)
    async def tei_tokenize(body: TokenizeRequest) -> JSONResponse:
        backend = getattr(getattr(embedder, "tokenizer", None), "backend_tokenizer", None)
        if backend is None:
            raise ApiError(501, f"embedder {embedder.name!r} exposes no tokenizer")
        texts = _texts(body.inputs, "inputs", settings.max_inputs)

        def tokenize() -> list[list[dict]]:
            # On the encoder's thread: the embedder's tokenizer is not shared between threads.
            encodings = [backend.encode(text, add_special_tokens=body.add_special_tokens) for text in texts]
            return [
                [
                    {"id": i, "text": token, "special": bool(special), "start": start, "stop": stop}
                    for i, token, special, (start, stop) in zip(
                        e.ids, e.tokens, e.special_tokens_mask, e.offsets, strict=True
                    )
                ]
                for e in encodings
            ]

        return JSONResponse(await batcher.call(tokenize))

    @app.get("/info", dependencies=authorized)
    async def info() -> dict:
        return {
            "model_id": model_name,
            "model_type": {"embedding": {"pooling": getattr(embedder, "pooling", None)}},
            "version": vbert.__version__,
            "embedder": {
                "name": embedder.name,
                "fingerprint": embedder.fingerprint,
                "dim": embedder.dim,
                "content_window": embedder.content_window,
                "chunk_tokens": encoder.chunk_tokens,
            },
            "merger": {"name": merger.name, "fingerprint": merger.fingerprint},
            "max_input_length": None,  # no limit: long inputs are chunked and merged
            "max_client_batch_size": settings.max_inputs,
            "max_request_bytes": settings.max_request_bytes,
            "request_timeout_s": settings.request_timeout,
            "max_batch_texts": settings.max_batch_texts,
            "chunk_cache": str(encoder.cache.path) if encoder.cache is not None else None,
            "batching": vars(batcher.stats),
        }

    @app.get("/health")
    async def health() -> JSONResponse:
        if not batcher.running:
            return JSONResponse({"status": "unhealthy"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return app
