"""Finesse: does a merged vector remember its chunks? (RSS Top-Down/Bottom-Up, SRS, latency).

Python API::

    from vbert.finesse import run_benchmark, load_config
    run = run_benchmark(load_config("benchmark.yaml"), "out/", embedder=my_embedder,
                        mergers={"merger": my_merger})
    print(run.summary)

Metrics are classes listed in :data:`METRICS` (:mod:`vbert.finesse.metrics`); the RSS
primitives :func:`top_down`, :func:`bottom_up`, :func:`sample_score` live in
:mod:`vbert.finesse.metrics.rss`. See ``docs/benchmark.md`` for exact definitions.
"""

from __future__ import annotations

from vbert.errors import ConfigError
from vbert.finesse.compare import compare, compare_files
from vbert.finesse.config import (
    BenchmarkConfig,
    load_config,
    load_preset,
    parse_config,
    preset_text,
)
from vbert.finesse.generate import generate
from vbert.finesse.integrity import check, content_hash, seal, verify
from vbert.finesse.metrics import METRICS, FinesseMetric, get_metric
from vbert.finesse.metrics.rss import bottom_up, sample_score, top_down
from vbert.finesse.probes import (
    NotEnoughDocumentsError,
    ProbeSet,
    build_probes,
    build_probes_from_config,
    load_probes,
    save_probes,
)
from vbert.finesse.raw import RawIntegrityError, RawOutputError, RawRun
from vbert.finesse.runner import BenchmarkRun, run_benchmark
from vbert.finesse.scoring import score_raw, score_run, write_results
from vbert.finesse.storage import UnsafeFileError

__all__ = [
    "BenchmarkConfig",
    "BenchmarkRun",
    "ConfigError",
    "FinesseMetric",
    "METRICS",
    "NotEnoughDocumentsError",
    "ProbeSet",
    "RawIntegrityError",
    "RawOutputError",
    "RawRun",
    "UnsafeFileError",
    "bottom_up",
    "build_probes",
    "build_probes_from_config",
    "check",
    "compare",
    "compare_files",
    "content_hash",
    "generate",
    "get_metric",
    "load_config",
    "load_preset",
    "load_probes",
    "parse_config",
    "preset_text",
    "run_benchmark",
    "sample_score",
    "save_probes",
    "score_raw",
    "score_run",
    "seal",
    "top_down",
    "verify",
    "write_results",
]
