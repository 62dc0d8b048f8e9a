"""``vbert serve``: the OpenAI-compatible embedding server (needs ``vbert[server]``)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from vbert.cli.errors import fail, reported
from vbert.cli.options import CacheOpt, NoCacheOpt


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_command(
    host: Annotated[
        str, typer.Option(help="Address to bind; loopback unless you mean to expose it.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    merger: Annotated[
        str, typer.Option(help="'default', 'mean', 'mean-weighted', 'truncation', or a merger folder.")
    ] = "default",
    embedder: Annotated[
        str,
        typer.Option(help="'default' (offline multilingual-e5-small), 'minilm', a local folder or a HF id."),
    ] = "default",
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="VBERT_API_KEY", help="Require 'Authorization: Bearer KEY' (or set VBERT_API_KEY)."
        ),
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="Model id reported to clients (default: vbert/EMBEDDER+MERGER).")
    ] = None,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    max_request_mb: Annotated[float, typer.Option(help="Largest request body accepted, in MiB.")] = 16.0,
    timeout: Annotated[float, typer.Option(help="Seconds a request may take before a 504.")] = 120.0,
    max_batch: Annotated[int, typer.Option(help="Texts of concurrent requests embedded together.")] = 64,
) -> None:
    """Serve embeddings over HTTP: OpenAI /v1/embeddings and TEI-style /embed, /tokenize, /info, /health."""
    from vbert.integrations._shared import build_encoder, require

    with reported(ImportError):
        uvicorn = require("uvicorn", "server")
        from vbert.integrations.server import ServerSettings, create_app
    if max_request_mb <= 0 or timeout <= 0 or max_batch < 1:
        fail("--max-request-mb and --timeout must be positive and --max-batch at least 1")
    if not _is_loopback(host) and api_key is None:
        typer.secho(
            f"warning: serving on {host} without --api-key: anyone who can reach this address can use it",
            fg=typer.colors.YELLOW,
            err=True,
        )
    with reported(OSError, ValueError):
        encoder = build_encoder(embedder, merger, cache=False if no_cache else cache)
    settings = ServerSettings(
        model_name=model_name,
        api_key=api_key,
        max_request_bytes=int(max_request_mb * 1024 * 1024),
        request_timeout=timeout,
        max_batch_texts=max_batch,
    )
    uvicorn.run(create_app(encoder, settings), host=host, port=port)
