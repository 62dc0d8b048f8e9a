"""Commands that hand vbert to other tools: ``vbert export-st``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vbert.cli.errors import reported


def export_st(
    merger: Annotated[
        str, typer.Argument(help="'default', 'mean', 'mean-weighted', 'truncation', or a merger folder.")
    ],
    destination: Annotated[Path, typer.Argument(help="New folder for the sentence-transformers model.")],
    embedder: Annotated[
        str,
        typer.Option(help="'default' (offline multilingual-e5-small), 'minilm', a local folder or a HF id."),
    ] = "default",
) -> None:
    """Write a sentence-transformers model folder that chunks, embeds and merges long documents."""
    with reported(FileNotFoundError, ImportError):
        from vbert.integrations.sentence_transformers import export_sentence_transformers

        export_sentence_transformers(merger, destination, embedder=embedder)
    typer.echo(
        f"exported {merger} to {destination}; load it with "
        f"SentenceTransformer({str(destination)!r}, trust_remote_code=True)"
    )


def export_reference(
    results: Annotated[Path, typer.Argument(help="A vbert Finesse results.json (one competitor).")],
    output: Annotated[
        Path, typer.Argument(help="File to write (a folder gets benchmark_results.json inside).")
    ],
    score_version: Annotated[
        str, typer.Option(help="sum: (TD+BU)×500, the reference's leaderboard since v0.16; or balanced.")
    ] = "sum",
    merger_name: Annotated[str | None, typer.Option(help="Merger name for the reference config.")] = None,
    embedder_name: Annotated[
        str | None, typer.Option(help="Embedder name (e.g. its hub id) for the reference config.")
    ] = None,
    merger_path: Annotated[Path | None, typer.Option(help="Merger folder: compute model_hash.")] = None,
    embedder_path: Annotated[
        Path | None, typer.Option(help="Base (or native) embedder folder: compute model_hash.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output file.")] = False,
) -> None:
    """Write the reference finesse-benchmark's benchmark_results.json (with its content hash)."""
    import json

    from vbert.files import atomic_write_text, read_json
    from vbert.finesse.reference_format import to_reference

    target = output / "benchmark_results.json" if output.is_dir() else output
    with reported(FileNotFoundError, FileExistsError):
        if target.exists() and not force:
            raise FileExistsError(f"{target} already exists; pass --force to overwrite it")
        source = read_json(results)
        folders: dict[str, Path] = {}
        native = (source.get("competitor") or {}).get("mode") == "native"
        if merger_path is not None:
            folders["merger"] = merger_path
        if embedder_path is not None:
            folders["native" if native else "base_embedder"] = embedder_path
        exported = to_reference(
            source,
            score_version=score_version,
            names={"merger": merger_name, "embedder": embedder_name},
            model_folders=folders,
        )
        atomic_write_text(target, json.dumps(exported, indent=2) + "\n")
    for difference in exported["metadata"]["vbert_export"]["differences_from_leaderboard"]:
        typer.secho(f"warning: differs from the official leaderboard: {difference}", fg="yellow", err=True)
    typer.echo(f"wrote {target} (content_hash {exported['content_hash']})")
