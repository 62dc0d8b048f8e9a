"""Smoke tests of every section on tiny sizes: the code paths run and report what they claim (no timings checked)."""

import json

import pytest

from benchmarks import (
    data_build,
    efficiency,
    long_context,
    memory,
    merge_cost,
    onnx_runtime,
    pipeline,
    prefix,
    scaling,
    training,
)
from benchmarks.report import render_markdown, targets
from benchmarks.suite import SECTIONS, main, run_suite


def positive(*values: float) -> bool:
    return all(v > 0 for v in values)


def test_merge_cost(bench_context):
    result = merge_cost.run(bench_context)
    (row,) = result["rows"]
    assert row["chunks"] == 2 and row["tokens"] > 0
    assert positive(row["embed_s"], row["merge_s"], row["cached_encode_s"], row["split_s"])
    assert row["embed_over_merge"] == pytest.approx(row["embed_s"] / row["merge_s"])


def test_efficiency(bench_context):
    result = efficiency.run(bench_context)
    assert [(r["batch"], r["chunks"]) for r in result["rows"]] == [(1, 2), (2, 2)]
    for row in result["rows"]:
        assert row["sequence_length"] == 5
        assert row["efficiency"] == pytest.approx(row["matmul_s"] / row["forward_s"])
        assert row["forward_gflops"] == pytest.approx(row["gflop"] / row["forward_s"])
    assert [r["chunks"] for r in result["overhead"]] == [1]


def test_pipeline(bench_context):
    result = pipeline.run(bench_context)
    misses, hits = result["misses"], result["hits"]
    assert misses["chunks"] == 4 and misses["documents"] == 2
    assert positive(
        misses["pipeline_chunks_per_s"], misses["bare_chunks_per_s"], misses["cache_bytes_per_chunk"]
    )
    assert set(misses["stages_s"]) == {"split", "cache_read_write", "merge"}
    assert hits["documents"] == 2 and hits["chunks_per_document"] == 3
    assert positive(
        hits["documents_per_s"], hits["merge_documents_per_s"], *hits["stages_documents_per_s"].values()
    )
    assert hits["cached_over_merge"] == pytest.approx(hits["documents_per_s"] / hits["merge_documents_per_s"])


def test_training(bench_context):
    result = training.run(bench_context)
    assert {(r["size"], r["objective"]) for r in result["rows"]} == {
        ("tiny", objective) for objective in ("vmlm", "vnsp", "distill")
    }
    assert result["models"]["tiny"]["d_model"] == bench_context.merger.config.d_model
    assert all(r["samples_per_s"] > 0 for r in result["rows"])


@pytest.mark.parametrize("models", ["double", "tiny"])
@pytest.mark.parametrize("mode", ["stream", "whole"])
def test_memory_worker_writes_every_document(tmp_path, models, mode):
    result = memory.stream(12, tmp_path, models, mode)
    assert result["documents"] == result["rows_written"] == 12 and result["peak_rss_mib"] > 0


def test_memory_throughput_times_both_paths_in_turns(tmp_path):
    result = memory.throughput(12, tmp_path, "double", repeats=2, clock="process")
    assert result["stream"]["runs"] == result["whole"]["runs"] == 2
    assert result["stream_over_whole"] == pytest.approx(
        result["whole"]["median_s"] / result["stream"]["median_s"]
    )
    assert not any(p.name.startswith("run-") for p in tmp_path.iterdir())  # each run's folder is removed


@pytest.mark.slow
def test_memory_section_runs_each_count_in_a_subprocess(bench_context):
    result = memory.run(bench_context)
    assert [r["documents"] for r in result["rows"]] == [5, 20]
    assert result["stream_over_whole"] > 0 and result["throughput"]["documents"] == 12
    assert result["growth_mib"] == pytest.approx(
        result["rows"][1]["peak_rss_mib"] - result["rows"][0]["peak_rss_mib"]
    )


def test_scaling(bench_context):
    result = scaling.run(bench_context)
    assert [r["chunks"] for r in result["rows"]] == [1, 2, 4, 8]
    assert result["exponent_all"] is not None and result["exponent_large_n"] is None
    assert 0.5 < result["flop_exponent_all"] < 2.0


def test_onnx(bench_context):
    result = onnx_runtime.run(bench_context)
    assert result["max_abs_diff"] <= 1e-4 and result["export_parity_max_abs_diff"] <= 1e-4
    assert [(r["batch"], r["padded"]) for r in result["rows"]] == [(1, False), (2, True)]


def test_prefix(bench_context):
    (row,) = prefix.run(bench_context)["rows"]
    assert row["length"] == 5 and row["max_abs_diff"] <= 1e-5
    assert positive(row["one_padded_batch_s"], row["shared_s"], row["one_by_one_s"], row["speedup"])


def test_long_context(bench_context):
    (row,) = long_context.run(bench_context)["rows"]
    assert row["tokens"] == 2 * bench_context.embedder.max_tokens
    assert positive(row["long_window_s"], row["chunked_s"], row["merge_s"])


def test_data_build(bench_context):
    result = data_build.run(bench_context)
    if result.get("status") == "not measured":
        pytest.skip(result["reason"])
    (row,) = result["rows"]
    assert row["dataset"] == "articles" and row["texts_embedded"] > 0 and row["ratio"] > 0


def test_process_clock_needs_one_thread(tmp_path, tiny_settings):
    import dataclasses

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(ValueError, match="--threads 1"):
            run_suite(dataclasses.replace(tiny_settings, clock="process"), tmp_path, sections=["scaling"])
    finally:
        torch.set_num_threads(threads)


def test_run_suite_writes_json_and_markdown(tmp_path, tiny_settings):
    report = run_suite(tiny_settings, tmp_path, sections=["scaling", "prefix", "onnx"], log=lambda _: None)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert set(saved["sections"]) == {"scaling", "prefix", "onnx"}
    assert saved["machine"]["torch"] and saved["machine"]["logical_cpus"] >= 1
    assert {t["target"] for t in saved["targets"]} == {
        "ONNX parity with PyTorch",
        "batched prefix merges = one-by-one",
        "prefix merges vs separate merges, L = 5–5",
    }
    assert all(
        t["met"] for t in report["targets"] if t["target"] != "prefix merges vs separate merges, L = 5–5"
    )
    markdown = (tmp_path / "report.md").read_text()
    assert (
        "## 6. Scaling" in markdown
        and "## 7. ONNX runtime" in markdown
        and "AMD" in markdown
        or "Machine:" in markdown
    )


def test_targets_flag_misses():
    report = {
        "sections": {
            "merge_cost": {"rows": [{"chunks": 16, "embed_over_merge": 40.0}]},
            "efficiency": {
                "rows": [
                    {"batch": 64, "chunks": 4, "efficiency": 0.7},
                    {"batch": 64, "chunks": 16, "efficiency": 0.3},
                ]
            },
        }
    }
    verdicts = {t["target"]: t["met"] for t in targets(report)}
    assert verdicts == {
        "merge-only vs embedding, 16 chunks": False,
        "merger forward vs matmul, batch 64": False,
    }


def test_streaming_throughput_target():
    row = {"documents": 10, "peak_rss_mib": 100.0}
    turns = {"documents": 5000, "clock": "process", "stream_over_whole": 0.9}
    memory_section = {"rows": [row, row], "tolerance_mib": 10.0, "growth_mib": 0.0, "flat": True}
    memory_section.update(throughput=turns, stream_over_whole=0.9, stream_over_whole_target=0.95)
    verdicts = {t["target"]: t["met"] for t in targets({"sections": {"memory": memory_section}})}
    assert verdicts["streaming `vbert merge` vs whole-corpus throughput"] is False


def test_not_measured_sections_render():
    report = json.loads(
        json.dumps(
            {
                "created": "now",
                "seconds": 1.0,
                "load_average_start": None,
                "load_average_end": None,
                "machine": {
                    "cpu": "cpu",
                    "usable_cpus": 1,
                    "cpu_simd": [],
                    "memory_gib": 1,
                    "gpu": None,
                    "torch": "t",
                    "torch_threads": 1,
                    "onnxruntime": None,
                    "python": "3",
                },
                "embedder": {"note": "e"},
                "merger": {"note": "m", "num_layers": 1, "d_model": 8, "ffn_dim": 8, "parameters": 10},
                "sections": {"training": {"status": "not measured", "reason": "no training code"}},
                "targets": [],
                "settings": {"clock": "wall"},
            }
        )
    )
    assert "Not measured: no training code" in render_markdown(report)


def test_cli_rejects_unknown_sections(capsys):
    with pytest.raises(SystemExit):
        main(["--sections", "nonsense"])
    assert "unknown sections" in capsys.readouterr().err
    assert "merge_cost" in SECTIONS
