"""``vbert index`` and ``vbert search``: keep folders of long documents searchable (a face over :class:`vbert.Index`)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from vbert.cli.errors import fail, reported

IndexOpt = Annotated[Path, typer.Option("--index", help="Index folder (created on first use).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
EngineOpt = Annotated[
    str, typer.Option(help="'local' (this process) or 'ray' (chunk embedding as a Ray Data pipeline).")
]
RayAddressOpt = Annotated[
    str | None, typer.Option(help="Ray cluster to join (default: start a local Ray instance).")
]
WorkersOpt = Annotated[int, typer.Option(help="Embedder actors in the Ray pipeline.")]
ENGINES = ("local", "ray")


def index_command(
    paths: Annotated[
        list[Path], typer.Argument(help="Text files (.txt/.md), folders of them, or JSONL files with 'text'.")
    ],
    index: IndexOpt,
    embedder: Annotated[
        str | None, typer.Option(help="Embedder for a new index (default: 'default'; later: the index's).")
    ] = None,
    merger: Annotated[
        str | None,
        typer.Option(
            help="Merger for a new index (default: 'mean', which retrieves best today; later: the index's)."
        ),
    ] = None,
    chunk_tokens: Annotated[
        int | None, typer.Option(help="Largest chunk in tokens (default: the embedder's window).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Chunks per forward pass.")] = 32,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = 1,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Index documents, or bring an index up to date: only new and changed chunks are embedded.

    Files that disappeared from a folder given here leave the index; other folders' documents stay.
    """
    from vbert.index import Index, read_paths

    if engine not in ENGINES:
        fail(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"{', '.join(missing)} does not exist")
    with (
        reported(FileNotFoundError, ValueError),
        Index(index, embedder, merger, chunk_tokens=chunk_tokens, batch_size=batch_size) as idx,
    ):
        sources = [str(p.resolve()) for p in paths]
        documents = read_paths(paths)
        shard_run = None
        if engine == "ray":
            documents = list(documents)
            shard_run = idx.embed_on_ray(documents, workers, ray_address, show_progress=progress)
        report = idx.sync(documents, sources, show_progress=progress)
        if shard_run is not None:  # the sync found these chunks in the cache: they were embedded on Ray
            report.chunks_reused = max(report.chunks_reused - shard_run.chunks_embedded, 0)
            report.chunks_embedded += shard_run.chunks_embedded
            shutil.rmtree(shard_run.folder)
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


def embed_with_ray(
    documents: list[tuple[str, str]],
    output: Path,
    embedder: str,
    chunk_tokens: int | None,
    batch_size: int,
    workers: int,
    ray_address: str | None,
    write_vectors: Callable[[Path, list[str], np.ndarray, dict], None],
) -> None:
    """``vbert embed --engine ray``: shards under ``OUTPUT.shards/`` (kept, so a killed run resumes), then OUTPUT."""
    from vbert import load_embedder
    from vbert.index.ray_engine import embed_on_ray
    from vbert.index.shards import ChunkRule, read_chunk_vectors

    with reported(FileNotFoundError, ValueError):
        model = load_embedder(embedder)
        rule = ChunkRule("windows", chunk_tokens or model.content_window)
        shards = output.with_name(output.name + ".shards")
        run = embed_on_ray(
            documents,
            shards,
            model,
            embedder,
            rule,
            workers=workers,
            address=ray_address,
            batch_size=batch_size,
            show_progress=True,
        )
        table, vectors = read_chunk_vectors(shards)
    typer.echo(
        f"{run.shards} shards ({run.reused} from an earlier run), {run.chunks_embedded} chunks embedded"
    )
    extra = {"chunk_index": table["chunk_index"].to_pylist(), "embedder": model.fingerprint}
    write_vectors(output, table["doc_id"].to_pylist(), vectors, extra)
