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
