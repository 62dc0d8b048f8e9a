"""Run the sections, collect one report, write ``report.json`` and ``report.md``."""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (
    default_size_merger,
    describe_merger,
    load_average,
    load_bench_embedder,
    machine,
    random_merger,
    use_clock,
)
from benchmarks.context import Context, Settings
from benchmarks.report import render_markdown, targets
from vbert.files import atomic_write_json, atomic_write_text

# Section name → module with run(ctx) -> dict, in report order.
SECTIONS = {
    "merge_cost": "benchmarks.merge_cost",
    "efficiency": "benchmarks.efficiency",
    "pipeline": "benchmarks.pipeline",
    "training": "benchmarks.training",
    "memory": "benchmarks.memory",
    "scaling": "benchmarks.scaling",
    "onnx": "benchmarks.onnx_runtime",
    "prefix": "benchmarks.prefix",
    "long_context": "benchmarks.long_context",
    "data_build": "benchmarks.data_build",
}
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"


def run_suite(
    settings: Settings,
    output_dir: Path = DEFAULT_OUTPUT,
    sections: list[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``sections`` (default: all) with ``settings``; write and return the report."""
    chosen = list(SECTIONS) if sections is None else sections
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown sections {unknown}; choose from {list(SECTIONS)}")
    if settings.clock == "process" and torch.get_num_threads() != 1:
        raise ValueError(
            f"the process clock adds up the CPU time of every thread; with {torch.get_num_threads()} torch "
            "threads use the wall clock, or run with one thread (--threads 1)"
        )
    use_clock(settings.clock)
    try:
        return _run(settings, output_dir, chosen, log)
    finally:
        use_clock("wall")


def _run(
    settings: Settings, output_dir: Path, chosen: list[str], log: Callable[[str], None] | None
) -> dict[str, Any]:
    started = time.perf_counter()
    report: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_start": load_average(),
        "settings": settings.to_dict(),
        "sections": {},
    }
    with tempfile.TemporaryDirectory(prefix="vbert-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        embedder, embedder_note = load_bench_embedder(settings.embedder, scratch)
        if settings.merger is None:
            merger, merger_note = default_size_merger()
        else:
            merger, merger_note = (
                random_merger(settings.merger),
                "randomly initialised merger of the given config",
            )
        if merger.config.d_model != embedder.dim:
            raise ValueError(
                f"the merger is {merger.config.d_model}-d but the embedder gives {embedder.dim}-d vectors; "
                "pick a merger config with d_model equal to the embedder's dimension"
            )
        ctx = Context(settings, embedder, embedder_note, merger, merger_note, scratch)
        if log is not None:
            ctx.log = log  # type: ignore[method-assign]
        report["embedder"] = {"note": embedder_note, "name": embedder.name, "dim": embedder.dim}
        report["merger"] = {"note": merger_note, **describe_merger(merger)}
        for name in chosen:
            section_start = time.perf_counter()
            result = importlib.import_module(SECTIONS[name]).run(ctx)
            result["seconds"] = time.perf_counter() - section_start
            result["load_average_after"] = load_average()
            report["sections"][name] = result
    report["seconds"] = time.perf_counter() - started
    report["load_average_end"] = load_average()
    report["targets"] = targets(report)
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(output_dir / "report.json", report)
    atomic_write_text(output_dir / "report.md", render_markdown(report))
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks [--quick] [--output DIR] [--sections a,b] [--embedder NAME] [--threads N]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a run of a minute or two")
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="folder for report.json and report.md"
    )
    parser.add_argument("--sections", default=None, help=f"comma-separated subset of: {','.join(SECTIONS)}")
    parser.add_argument(
        "--embedder",
        default="default",
        help="'default' (multilingual-e5-small), 'tiny' (random tiny BERT) or a folder",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--clock",
        choices=("wall", "process"),
        default="wall",
        help="'wall' (elapsed time) or 'process' (CPU time of this process; needs --threads 1)",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()] if args.sections else None
    if sections is not None:
        unknown = [s for s in sections if s not in SECTIONS]
        if unknown:
            parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    merger = None
    if args.embedder == "tiny":
        from benchmarks.training import tiny_config

        merger, _ = tiny_config()
    preset = Settings.quick if args.quick else Settings.full
    try:
        report = run_suite(
            preset(embedder=args.embedder, merger=merger, clock=args.clock), args.output, sections
        )
    except ValueError as err:
        parser.error(str(err))
    print(render_markdown(report))
    print(f"wrote {args.output / 'report.json'} and {args.output / 'report.md'}", file=sys.stderr)
    return 0
