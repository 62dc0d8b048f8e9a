"""``vbert evaluate retrieval``: long-document retrieval on a held-out split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Evaluate mergers on held-out data.", no_args_is_help=True, add_completion=False)


@app.command()
def retrieval(
    merger: Annotated[
        list[str],
        typer.Option(help="Repeatable: 'default', 'mean', 'mean-weighted', 'truncation', or a folder."),
    ] = ["default", "mean", "mean-weighted", "truncation"],  # noqa: B006 (typer needs a list default)
    corpus: Annotated[
        str, typer.Option(help="'debian', 'wikipedia', or a corpus folder / files path.")
    ] = "debian",
    split: Annotated[str, typer.Option(help="Which split to evaluate on.")] = "test",
    split_seed: Annotated[int, typer.Option(help="Seed of the document split.")] = 0,
    task: Annotated[list[str], typer.Option(help="Repeatable; default: all tasks.")] = [],  # noqa: B006
    size: Annotated[str, typer.Option(help="'small' (minutes on a CPU) or 'full'.")] = "small",
    embedder: Annotated[str, typer.Option(help="Base embedder.")] = "default",
    seed: Annotated[int, typer.Option(help="Seed for query and needle sampling.")] = 0,
    output: Annotated[Path, typer.Option("--output", "-o", help="Report file (JSON).")] = Path(
        "results/retrieval.json"
    ),
) -> None:
    """Deep-paragraph, cross-lingual, passkey and needle retrieval; every method on the same data."""
    from vbert import load_embedder, load_merger
    from vbert.data.corpora import load_corpus
    from vbert.data.splits import filter_split
    from vbert.evaluation.suite import TASKS, format_markdown, run_retrieval_suite
    from vbert.io import atomic_write_json

    try:
        mergers = {name: load_merger(name) for name in merger}
        articles = list(filter_split(load_corpus(corpus), split, seed=split_seed))
        report = run_retrieval_suite(
            articles, load_embedder(embedder), mergers, tasks=task or TASKS, size=size, seed=seed
        )
    except (FileNotFoundError, ValueError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from err
    report.update({"corpus": corpus, "split": split, "split_seed": split_seed})
    atomic_write_json(output, report)
    typer.echo(format_markdown(report))
    typer.echo(f"report written to {output}")
