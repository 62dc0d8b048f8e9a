"""CLI faces of the leaderboard site and the live lab.

Mounted by the main CLIs as ``finesse leaderboard`` (:func:`leaderboard_command`) and
``vbert lab`` (:func:`lab_command`), e.g. ``app.command("leaderboard")(leaderboard_command)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vbert.cli.errors import fail, reported
from vbert.lab.analysis import default_mergers
from vbert.mergers import MERGERS


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1024:.0f} KiB" if n_bytes < 1024 * 1024 else f"{n_bytes / 1024 / 1024:.1f} MiB"


def leaderboard_command(
    results: Annotated[list[Path], typer.Argument(help="results.json files written by `finesse score`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the site into (index.html).")],
    raw: Annotated[
        list[Path] | None,
        typer.Option(
            "--raw", help="Raw folder of `finesse generate` for the Anatomy Laboratory (repeatable)."
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="HMAC key: signed results that match it show as 'signed'."),
    ] = None,
    anatomy_samples: Annotated[
        int,
        typer.Option(
            help="Samples per length kept for the Anatomy Laboratory (best and worst always); 0 = all."
        ),
    ] = 5,
    title: Annotated[str, typer.Option(help="Page title.")] = "Finesse leaderboard",
) -> None:
    """Write a static leaderboard site (opens from disk, no network) for the given results."""
    from vbert.finesse.integrity import read_key
    from vbert.finesse.leaderboard import build_site

    with reported(FileNotFoundError, ValueError):
        key = read_key(key_file) if key_file is not None else None
        report = build_site(
            results, out, raw_dirs=raw or [], key=key, anatomy_samples=anatomy_samples, title=title
        )
    for warning in report.warnings:
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
    anatomy = (
        f" + {_size(report.anatomy_bytes)} of anatomy data in {len(report.anatomy_files)} file(s)"
        if report.anatomy_files
        else " (no Anatomy Laboratory: pass --raw)"
    )
    typer.echo(f"wrote {report.results} result(s): page {_size(report.page_bytes)}{anatomy}")
    typer.echo(report.index.resolve().as_uri())


def lab_command(
    host: Annotated[
        str, typer.Option(help="Address to bind; keep the loopback default unless you mean it.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 = any free port).", min=0, max=65535)] = 8765,
    embedder: Annotated[
        list[str] | None,
        typer.Option(
            "--embedder", help="Embedder offered in the page (repeatable): default, minilm, a folder, py:..."
        ),
    ] = None,
    merger: Annotated[
        list[str] | None,
        typer.Option(
            "--merger",
            help=f"Merger offered (repeatable): {', '.join([*MERGERS.names(), 'native'])}, a folder, "
            "package.module:factory or py:... (default: the baselines and native)",
        ),
    ] = None,
    chunk_tokens: Annotated[
        int, typer.Option(help="Default tokens per chunk when the page cuts a text.")
    ] = 64,
) -> None:
    """Serve the Anatomy Laboratory live: paste a text, see its Top-Down / Bottom-Up matrices."""
    from vbert.lab import NATIVE, Lab, is_loopback, make_server, spec_factories

    offered = merger or default_mergers()
    embedders, mergers = spec_factories(embedder or ["default"], offered)
    try:
        with reported(ValueError):
            lab = Lab(
                embedders=embedders,
                mergers=mergers,
                native=NATIVE in offered,
                default_chunk_tokens=chunk_tokens,
            )
            server = make_server(lab, host, port)
    except OSError as err:
        fail(f"cannot listen on {host}:{port} ({err.strerror or err}); choose another --port or --host")
    if not is_loopback(host):
        typer.secho(
            f"warning: binding to {host} lets other machines use this lab; use --host 127.0.0.1 to keep it local",
            fg=typer.colors.YELLOW,
            err=True,
        )
    typer.echo(f"vbert lab on {server.url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        server.server_close()
