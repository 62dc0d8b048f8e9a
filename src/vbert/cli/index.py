"""``vbert index`` and ``vbert search``: keep folders of long documents searchable (a face over :class:`vbert.Index`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vbert.cli.errors import fail, reported

IndexOpt = Annotated[Path, typer.Option("--index", help="Index folder (created on first use).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


def index_command(
    paths: Annotated[
        list[Path], typer.Argument(help="Text files (.txt/.md), folders of them, or JSONL files with 'text'.")
    ],
    index: IndexOpt,
    embedder: Annotated[
        str | None, typer.Option(help="Embedder for a new index (default: 'default'; later: the index's).")
    ] = None,
    merger: Annotated[
        str | None, typer.Option(help="Merger for a new index (default: 'default'; later: the index's).")
    ] = None,
    chunk_tokens: Annotated[
        int | None, typer.Option(help="Largest chunk in tokens (default: the embedder's window).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Chunks per forward pass.")] = 32,
    as_json: JsonOpt = False,
) -> None:
    """Index documents, or bring an index up to date: only new and changed chunks are embedded.

    Files that disappeared from a folder given here leave the index; other folders' documents stay.
    """
    from vbert.index import Index, read_paths

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"{', '.join(missing)} does not exist")
    with (
        reported(FileNotFoundError, ValueError),
        Index(index, embedder, merger, chunk_tokens=chunk_tokens, batch_size=batch_size) as idx,
    ):
        sources = [str(p.resolve()) for p in paths]
        report = idx.sync(read_paths(paths), sources, show_progress=not as_json)
    if as_json:
        typer.echo(json.dumps({"index": str(index), **report.to_dict()}, indent=2))
        return
    if report.repaired:
        typer.secho("repaired an interrupted earlier run", fg=typer.colors.YELLOW, err=True)
    typer.echo(
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, {report.removed} removed; "
        f"{report.chunks_embedded} chunks embedded, {report.chunks_reused} reused; "
        f"{report.documents} documents in {index}"
    )


def search_command(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    index: IndexOpt,
    k: Annotated[int, typer.Option("-k", help="Number of documents to show.")] = 10,
    rerank: Annotated[
        str | None, typer.Option(help="'maxsim': re-rank the top documents by their best chunk.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search an index: the best documents, each with its best-matching chunk and where it is."""
    from vbert.index import Index
    from vbert.index.index import SETTINGS

    if not (index / SETTINGS).is_file():
        fail(
            f"{index} is not an index folder (no {SETTINGS}); build one with `vbert index PATH --index {index}`"
        )
    with reported(FileNotFoundError, ValueError), Index(index) as idx:
        hits = idx.search(query, k=k, rerank=rerank)
    if as_json:
        typer.echo(
            json.dumps(
                {"query": query, "hits": [hit.to_dict() for hit in hits]}, indent=2, ensure_ascii=False
            )
        )
        return
    if not hits:
        typer.echo("no documents in the index")
    for rank, hit in enumerate(hits, start=1):
        typer.secho(f"{rank}. {hit.id}  score {hit.score:.4f}", bold=True)
        typer.echo(
            f"   chunk {hit.chunk_index + 1}/{hit.chunks}, characters {hit.start}-{hit.end} "
            f"(chunk score {hit.chunk_score:.4f})"
        )
        typer.echo(f"   {hit.snippet}")
