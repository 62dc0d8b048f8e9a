"""The ``finesse`` command line (also ``vbert finesse``): a thin face over :mod:`vbert.finesse`."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from vbert.cli.errors import reported
from vbert.cli.integrations import export_reference
from vbert.cli.lab import leaderboard_command
from vbert.finesse.metrics import FORMULAS, METRICS
from vbert.finesse.metrics.rss import SCORE_VERSIONS

app = typer.Typer(
    name="finesse",
    help=(
        "Finesse benchmark for sequence mergers: build probes once, generate raw embeddings, score, "
        f"checksum, verify, inspect and compare. Metrics: {', '.join(METRICS.names())} (`finesse metrics`). "
        "See docs/benchmark.md."
    ),
    no_args_is_help=True,
    add_completion=False,
)


class Preset(StrEnum):
    quick = "quick"
    leaderboard = "leaderboard"
    reference = "reference"


Formula = StrEnum("Formula", {name: name for name in FORMULAS})
ScoreVersion = StrEnum("ScoreVersion", {name: name for name in SCORE_VERSIONS})


# Besides vbert's own errors (each with its exit code), these become one line and exit code 2.
LIBRARY_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError, FileExistsError, ImportError)


ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="benchmark YAML (see `finesse init`)")]
PresetOption = Annotated[
    Preset, typer.Option(help="quick (lengths 4–16) or leaderboard (4–64 × 25, seed 42)")
]
InitOutputOption = Annotated[Path, typer.Option("--output", "-o", help="config file to write")]
PlotDirOption = Annotated[Path, typer.Option("--output-dir", help="where to write the PNGs")]


@app.command()
def init(
    preset: PresetOption = Preset.quick,
    output: InitOutputOption = Path("benchmark.yaml"),
    force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False,
) -> None:
    """Write a commented benchmark config from a preset."""
    from vbert.files import atomic_write_text
    from vbert.finesse.config import load_preset, preset_text

    with reported(*LIBRARY_ERRORS):
        if output.exists() and not force:
            raise FileExistsError(f"{output} already exists; pass --force to overwrite it")
        load_preset(preset.value)  # the shipped text must itself be valid
        atomic_write_text(output, preset_text(preset.value))
    typer.echo(f"wrote {output} (preset {preset.value}); next: finesse build-probes --config {output}")


@app.command("build-probes")
def build_probes(
    config: ConfigOption,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="probe file (.parquet/.jsonl); default probes.file")
    ] = None,
) -> None:
    """Build the probe set ONCE from the configured corpus (same texts for every competitor)."""
    from vbert.finesse.config import load_config
    from vbert.finesse.probes import build_probes_from_config

    with reported(*LIBRARY_ERRORS):
        cfg = load_config(config)
        probe_set, path = build_probes_from_config(cfg, output=output)
    typer.echo(
        f"wrote {path}: {len(probe_set.chunks)} chunks, lengths {probe_set.lengths[0]}–{probe_set.lengths[-1]}, "
        f"{probe_set.params['samples_per_length']} samples each, {probe_set.content_hash}"
    )


@app.command()
def generate(
    config: ConfigOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="raw output folder (resumable)")],
    competitor: Annotated[
        list[str] | None, typer.Option("--competitor", help="run only this competitor (repeatable)")
    ] = None,
) -> None:
    """Embed the probes and write raw outputs (.npz + manifest) for every competitor."""
    from vbert.finesse.config import load_config
    from vbert.finesse.generate import generate as run_generate

    with reported(*LIBRARY_ERRORS):
        folders = run_generate(load_config(config), output, only=competitor or None)
    for folder in folders:
        typer.echo(f"raw outputs: {folder}")


def _read_key(path: Path | None) -> bytes | None:
    from vbert.finesse.integrity import read_key

    return read_key(path) if path is not None else None


@app.command()
def score(
    raw: Annotated[Path, typer.Option("--raw", help="a competitor folder or a whole generate output")],
    output: Annotated[Path, typer.Option("--output", "-o", help="folder for results.json")],
    sign_key: Annotated[
        Path | None, typer.Option("--sign-key", help="key file: sign results with HMAC-SHA256")
    ] = None,
    formula: Annotated[Formula | None, typer.Option(help="override the config's formula")] = None,
    score_version: Annotated[
        ScoreVersion | None, typer.Option(help="override the config's score version")
    ] = None,
) -> None:
    """Score raw outputs into results.json (+ a Markdown table on stdout)."""
    from vbert.files import read_json
    from vbert.finesse.scoring import markdown_table, score_raw

    with reported(*LIBRARY_ERRORS):
        paths = score_raw(
            raw,
            output,
            key=_read_key(sign_key),
            formula=formula.value if formula else None,
            score_version=score_version.value if score_version else None,
        )
        for path in paths:
            typer.echo(markdown_table(read_json(path)))
            typer.echo(f"wrote {path}\n")


@app.command()
def checksum(
    results: Annotated[Path, typer.Option("--results", help="results.json to check")],
    key_file: Annotated[Path | None, typer.Option("--key-file", help="also check the HMAC signature")] = None,
) -> None:
    """Check the content hash (and with --key-file the signature) of a results.json."""
    from vbert.files import read_json
    from vbert.finesse.integrity import check

    with reported(*LIBRARY_ERRORS):
        problems = check(read_json(results, "results file"), _read_key(key_file))
    if problems:
        for problem in problems:
            typer.echo(f"FAIL: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"OK: {results} content hash matches" + (" and the signature is valid" if key_file else ""))


@app.command()
def verify(
    raw: Annotated[Path, typer.Option("--raw", help="the competitor's raw folder")],
    results: Annotated[Path, typer.Option("--results", help="its results.json")],
) -> None:
    """Recompute every score from the raw embeddings and compare with results.json."""
    from vbert.files import read_json
    from vbert.finesse.integrity import verify as run_verify

    with reported(*LIBRARY_ERRORS):
        problems = run_verify(raw, read_json(results, "results file"))
    if problems:
        for problem in problems:
            typer.echo(f"FAIL: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"OK: every score in {results} matches the raw outputs in {raw}")


@app.command()
def inspect(
    raw: Annotated[Path, typer.Option("--raw", help="a competitor's raw folder (rss)")],
    length: Annotated[int, typer.Option("--length", "-l", help="sequence length L")],
    sample: Annotated[int | None, typer.Option(help="sample index")] = None,
    best: Annotated[bool, typer.Option("--best", help="the best-scoring sample")] = False,
    worst: Annotated[bool, typer.Option("--worst", help="the worst-scoring sample")] = False,
    output_dir: PlotDirOption = Path("inspect_plots"),
) -> None:
    """Draw Top-Down and Bottom-Up heat-maps (memory/noise tiers, quartile gaps) of one sample."""
    from vbert.finesse.heatmaps import inspect_sample
    from vbert.finesse.raw import RawRun

    with reported(*LIBRARY_ERRORS):
        info = inspect_sample(RawRun.open(raw), length, output_dir, sample=sample, best=best, worst=worst)
    typer.echo(
        f"sample {info['sample']}: TD {info['td']:+.4f}  BU {info['bu']:+.4f}  score {info['score']:+.2f}"
    )
    for file in info["files"]:
        typer.echo(f"wrote {file}")


@app.command()
def compare(
    results: Annotated[list[Path], typer.Argument(help="results.json files")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="also write the table here")] = None,
    allow_mismatch: Annotated[
        bool, typer.Option(help="compare results of different formulas or probe sets anyway")
    ] = False,
) -> None:
    """Side-by-side table per length of several results.json."""
    from vbert.files import atomic_write_text
    from vbert.finesse.compare import compare_files

    with reported(*LIBRARY_ERRORS):
        table = compare_files(results, allow_mismatch=allow_mismatch)
        if output is not None:
            atomic_write_text(output, table)
    typer.echo(table)


@app.command()
def metrics() -> None:
    """List the Finesse metrics a config's `metric:` can name (a package.module:Class spec works too)."""
    from vbert.finesse.metrics import get_metric

    for name in METRICS.names():
        metric = get_metric(name)
        typer.echo(f"{name}: {metric.title}\n    {metric.description}\n    main score: {metric.main_score}")


@app.command()
def run(
    config: ConfigOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="folder for raw/ and results/")],
    sign_key: Annotated[Path | None, typer.Option("--sign-key", help="key file: sign results")] = None,
    competitor: Annotated[list[str] | None, typer.Option("--competitor", help="only this competitor")] = None,
) -> None:
    """generate + score in one go (builds the probe set first if it is missing)."""
    from vbert.finesse.config import load_config
    from vbert.finesse.runner import run_benchmark

    with reported(*LIBRARY_ERRORS):
        result = run_benchmark(
            load_config(config), output, only=competitor or None, sign_key=_read_key(sign_key)
        )
    typer.echo(result.summary)
    typer.echo(json.dumps({name: str(path) for name, path in result.result_files.items()}, indent=2))


app.command("leaderboard")(leaderboard_command)
app.command("export-reference")(export_reference)

if __name__ == "__main__":
    app()
