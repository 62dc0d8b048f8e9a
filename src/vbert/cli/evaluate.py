"""``vbert evaluate``: long-document retrieval and distillation fidelity on held-out data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vbert.cli.errors import reported
from vbert.cli.mergers import merger_names
from vbert.mergers import baseline_names

app = typer.Typer(help="Evaluate mergers on held-out data.", no_args_is_help=True, add_completion=False)

MERGER_HELP = (
    f"Repeatable: {merger_names()}, a folder, a 'module:factory' spec, or NAME=FOLDER to give a folder a "
    "short name in the report."
)
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Report file (JSON).")]


def _load_mergers(specs: list[str]) -> dict:
    """``NAME=FOLDER`` or a plain name/folder (reported under that string)."""
    from vbert.cli.mergers import load_checked_merger
    from vbert.errors import ConfigError

    mergers = {}
    for spec in specs:
        name, _, path = spec.partition("=") if "=" in spec else (spec, "", spec)
        if name in mergers:
            raise ConfigError(f"merger name {name!r} is given twice; use NAME=FOLDER to tell them apart")
        mergers[name] = load_checked_merger(path)
    return mergers


def _publish(report: dict, output: Path, table: str) -> None:
    """Write the JSON report atomically and print its Markdown table."""
    from vbert.files import atomic_write_json

    atomic_write_json(output, report)
    typer.echo(table)
    typer.echo(f"report written to {output}")


@app.command()
def retrieval(
    merger: Annotated[list[str], typer.Option(help=MERGER_HELP)] = ["default", *baseline_names()],  # noqa: B006
    corpus: Annotated[
        str, typer.Option(help="'debian', 'wikipedia', or a corpus folder / files path.")
    ] = "debian",
    split: Annotated[str, typer.Option(help="Which split to evaluate on.")] = "test",
    split_seed: Annotated[int, typer.Option(help="Seed of the document split.")] = 0,
    task: Annotated[
        list[str],
        typer.Option(
            help="Repeatable; default: deep-paragraph, cross-lingual, passkey, needle. "
            "deep-paragraph-distractors and cross-lingual-deep add distractors and max-sim."
        ),
    ] = [],  # noqa: B006
    distractors: Annotated[
        int | None,
        typer.Option(help="Distractor documents of --distractor-split (deep tasks; default by size)."),
    ] = None,
    distractor_split: Annotated[str, typer.Option(help="Split the distractors come from.")] = "train",
    langs: Annotated[
        str | None, typer.Option(help="Languages of the deep tasks, comma-separated (default by size).")
    ] = None,
    size: Annotated[str, typer.Option(help="'small' (minutes on a CPU) or 'full'.")] = "small",
    embedder: Annotated[str, typer.Option(help="Base embedder.")] = "default",
    seed: Annotated[int, typer.Option(help="Seed for query and needle sampling.")] = 0,
    output: OutputOpt = Path("results/retrieval.json"),
) -> None:
    """Deep-paragraph, cross-lingual, passkey and needle retrieval; every method on the same data."""
    from vbert import load_embedder
    from vbert.data.corpora import load_corpus
    from vbert.data.splits import filter_split
    from vbert.evaluation.suite import DEFAULT_TASKS, deep_plan_for, format_markdown, run_retrieval_suite

    with reported(FileNotFoundError, ValueError):
        mergers = _load_mergers(merger)
        everything = list(load_corpus(corpus))
        articles = list(filter_split(everything, split, seed=split_seed))
        report = run_retrieval_suite(
            articles,
            load_embedder(embedder),
            mergers,
            tasks=task or DEFAULT_TASKS,
            size=size,
            seed=seed,
            distractors=filter_split(everything, distractor_split, seed=split_seed),
            deep_plan=deep_plan_for(size, seed, langs.split(",") if langs else None, distractors),
        )
    report.update({"corpus": corpus, "split": split, "split_seed": split_seed})
    _publish(report, output, format_markdown(report))


@app.command()
def distill(
    data: Annotated[Path, typer.Option(help="An N-to-1 dataset folder built by `vbert data n-to-1`.")],
    merger: Annotated[list[str], typer.Option(help=MERGER_HELP)] = ["default", "mean", "mean-weighted"],  # noqa: B006
    split: Annotated[str, typer.Option(help="Which split of the dataset to score.")] = "test",
    baseline: Annotated[str, typer.Option(help="Merger the others are compared with.")] = "mean",
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    output: OutputOpt = Path("results/distill.json"),
) -> None:
    """Distillation fidelity: cosine of each merger's vector to the embedder's vector of the joined text."""
    from vbert.data.datasets import load_pairs
    from vbert.evaluation.fidelity import distillation_fidelity, format_fidelity_markdown

    with reported(FileNotFoundError, ValueError):
        mergers = _load_mergers(merger)
        dataset = load_pairs(data, split=split)
        rows = dataset.__getitems__(list(range(len(dataset))))
        report = distillation_fidelity(rows, mergers, baseline=baseline, seed=seed)
    manifest = dataset.manifest
    report.update(
        {"data": str(data), "split": split, "embedder": manifest["embedder"], "params": manifest["params"]}
    )
    _publish(report, output, format_fidelity_markdown(report))
