"""The suite lives in the top-level ``benchmarks/`` folder, which is not installed: import it from the checkout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.context import Context, Settings  # noqa: E402 - needs the path above
from benchmarks.training import tiny_config  # noqa: E402


@pytest.fixture(scope="session")
def tiny_settings() -> Settings:
    """Every section at a size that runs in seconds: checks the code, not the speed."""
    merger, _ = tiny_config()
    return Settings(
        embedder="tiny",
        merger=merger,
        cost_chunks=(2,),
        cold_repeats=(1,),
        merge_repeats=2,
        efficiency_batches=(1, 2),
        efficiency_chunks=(2,),
        max_repeats=3,
        overhead_chunks=(1,),
        pipeline_documents=2,
        pipeline_chunks=2,
        pipeline_repeats=1,
        cached_documents=2,
        cached_chunks=3,
        cached_repeats=1,
        train_batch=4,
        train_chunks=4,
        train_repeats=1,
        train_sizes=("tiny",),
        memory_documents=(5, 20),
        memory_models="double",
        memory_whole_runs=1,
        memory_throughput_documents=12,
        scaling_max_power=3,
        onnx_batches=(1, 2),
        onnx_chunks=(3,),
        prefix_lengths=(5,),
        long_context_windows=(2,),
        long_context_repeats=1,
        data_articles=2,
        data_datasets=("articles",),
    )


@pytest.fixture(scope="session")
def bench_context(tmp_path_factory, tiny_settings: Settings) -> Context:
    from benchmarks.common import load_bench_embedder, random_merger

    settings = tiny_settings
    scratch = tmp_path_factory.mktemp("bench")
    embedder, embedder_note = load_bench_embedder("tiny", scratch)
    merger = random_merger(settings.merger)
    return Context(settings, embedder, embedder_note, merger, "random tiny merger", scratch)
