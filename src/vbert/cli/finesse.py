"""The ``finesse`` command line (also ``vbert finesse``): a thin face over :mod:`vbert.finesse`."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from vbert.cli.integrations import export_reference
from vbert.cli.lab import leaderboard_command

app = typer.Typer(
    name="finesse",
    help=(
        "Finesse benchmark for sequence mergers: build probes once, generate raw embeddings, score, "
        "checksum, verify, inspect and compare. See docs/benchmark.md."
    ),
    no_args_is_help=True,
    add_completion=False,
)


class Preset(StrEnum):
    quick = "quick"
    leaderboard = "leaderboard"
    reference = "reference"


class Formula(StrEnum):
    q1q3 = "q1q3"
    q2q2 = "q2q2"


class ScoreVersion(StrEnum):
    balanced = "balanced"
    sum = "sum"


@contextlib.contextmanager
def _friendly_errors() -> Iterator[None]:
    """Show library errors as one clear message and exit with status 2 instead of a traceback."""
    try:
        yield
    except (ValueError, TypeError, KeyError, FileNotFoundError, FileExistsError, ImportError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2) from None


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
    from vbert.finesse.config import load_preset, preset_text
    from vbert.finesse.storage import write_text

    with _friendly_errors():
        if output.exists() and not force:
            raise FileExistsError(f"{output} already exists; pass --force to overwrite it")
        load_preset(preset.value)  # the shipped text must itself be valid
        write_text(output, preset_text(preset.value))
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

    with _friendly_errors():
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

    with _friendly_errors():
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
    from vbert.finesse.score import markdown_table, score_raw
    from vbert.finesse.storage import read_json

    with _friendly_errors():
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
    from vbert.finesse.integrity import check
    from vbert.finesse.storage import read_json

    with _friendly_errors():
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
    from vbert.finesse.integrity import verify as run_verify
    from vbert.finesse.storage import read_json

    with _friendly_errors():
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
    from vbert.finesse.inspect import inspect_sample
    from vbert.finesse.raw import RawRun

    with _friendly_errors():
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
    from vbert.finesse.compare import compare_files
    from vbert.finesse.storage import write_text

    with _friendly_errors():
        table = compare_files(results, allow_mismatch=allow_mismatch)
        if output is not None:
            write_text(output, table)
    typer.echo(table)


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

    with _friendly_errors():
        result = run_benchmark(
            load_config(config), output, only=competitor or None, sign_key=_read_key(sign_key)
        )
    typer.echo(result.summary)
    typer.echo(json.dumps({name: str(path) for name, path in result.result_files.items()}, indent=2))


if __name__ == "__main__":
    app()


app.command("leaderboard")(leaderboard_command)
app.command("export-reference")(export_reference)
