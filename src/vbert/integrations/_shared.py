"""What the server, LangChain and LlamaIndex integrations share: extras, encoders, queries."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from vbert.errors import ResourceError


class MissingExtraError(ResourceError, ImportError):
    """An optional dependency of an integration is not installed."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or fail with the ``pip install 'vbert[extra]'`` that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"this vbert integration needs {module.split('.')[0]}, which is not installed: "
            f"run `pip install 'vbert[{extra}]'`"
        ) from err


def build_encoder(
    embedder: object = "default",
    merger: object = "default",
    *,
    cache: object = None,
    chunk_tokens: int | None = None,
    batch_size: int = 32,
    device: str | None = None,
):
    """A :class:`vbert.LongDocumentEncoder` from names, folders or loaded objects; ``device`` places
    the models loaded from names or folders (default: each loader's own)."""
    from vbert import LongDocumentEncoder, load_embedder, load_merger

    if isinstance(embedder, str | Path):
        embedder = load_embedder(embedder, **({"device": device} if device else {}))
    if isinstance(merger, str | Path):
        merger = load_merger(merger, device=device)
    return LongDocumentEncoder(
        embedder, merger, chunk_tokens=chunk_tokens, cache=cache, batch_size=batch_size
    )


def encode_queries(encoder, texts: Sequence[str]) -> np.ndarray:
    """Search queries as (n, d) float32 unit vectors, never truncated.

    A query that fits the chunk window is embedded exactly as the embedder embeds queries
    (``encode_queries``: e5's ``"query: "`` prefix), as vbert's retrieval evaluation does. A
    longer one is chunked like a document, each chunk embedded as a query, and the chunks
    merged by the encoder's merger. Query vectors never enter the chunk cache (it holds
    document vectors). An embedder without ``encode_queries`` embeds queries as documents.
    """
    embedder = encoder.embedder
    if not hasattr(embedder, "encode_queries"):
        return encoder.encode(list(texts))
    chunked = [encoder.chunk(text) for text in texts]
    flat = [chunk for chunks in chunked for chunk in chunks]
    vectors = np.asarray(embedder.encode_queries(flat, batch_size=encoder.batch_size), dtype=np.float32)
    out = np.empty((len(chunked), embedder.dim), dtype=np.float32)
    long_rows, sequences, start = [], [], 0
    for row, chunks in enumerate(chunked):
        if len(chunks) == 1:
            out[row] = vectors[start]
        else:
            long_rows.append(row)
            sequences.append(vectors[start : start + len(chunks)])
        start += len(chunks)
    if long_rows:
        from vbert.mergers import merge_sequences

        weights = encoder.chunk_weights([chunked[row] for row in long_rows])
        out[long_rows] = merge_sequences(encoder.merger, sequences, weights)
    return out


class LockedEncoder:
    """One :class:`vbert.LongDocumentEncoder` shared by threads, one call at a time.

    The chunk cache's SQLite connection and the tokenizer are not safe to use from two
    threads at once; LangChain and LlamaIndex call from executor threads.
    """

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self._lock = threading.Lock()

    def documents(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self.encoder.encode(list(texts))

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return encode_queries(self.encoder, texts)
