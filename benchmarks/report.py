"""The report's targets and its Markdown rendering."""

from __future__ import annotations

from typing import Any

MERGE_RATIO_TARGET = 100.0
EFFICIENCY_TARGET = 0.5
PIPELINE_TARGET = 0.9
CACHED_OVER_MERGE_TARGET = 0.5
BATCH1_OVER_MATMUL_TARGET = 2.0
ONNX_TOLERANCE = 1e-4
PREFIX_TOLERANCE = 1e-5
DATA_BUILD_TARGET = 0.9


def _seconds(value: float) -> str:
    if value >= 1.0:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.0f} µs"


def _measured(section: dict[str, Any] | None) -> bool:
    return section is not None and section.get("status") != "not measured"


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the performance issue with the measured value and whether it is met."""
    sections = report["sections"]
    out: list[dict[str, Any]] = []

    def add(name: str, goal: str, value: float | None, met: bool | None, shown: str) -> None:
        out.append({"target": name, "goal": goal, "value": value, "met": met, "measured": shown})

    cost = sections.get("merge_cost")
    row16 = next((r for r in cost["rows"] if r["chunks"] == 16), None) if _measured(cost) else None
    if row16:
        ratio = row16["embed_over_merge"]
        add(
            "merge-only vs embedding, 16 chunks",
            f"≥ {MERGE_RATIO_TARGET:.0f}×",
            ratio,
            ratio >= MERGE_RATIO_TARGET,
            f"{ratio:,.0f}×",
        )
    efficiency = sections.get("efficiency")
    rows64 = [r for r in efficiency["rows"] if r["batch"] == 64] if _measured(efficiency) else []
    if rows64:
        worst = min(r["efficiency"] for r in rows64)
        shown = ", ".join(f"N={r['chunks']}: {r['efficiency']:.0%}" for r in rows64)
        add(
            "merger forward vs matmul, batch 64",
            f"≥ {EFFICIENCY_TARGET:.0%}",
            worst,
            worst >= EFFICIENCY_TARGET,
            shown,
        )
    pipeline = sections.get("pipeline")
    if _measured(pipeline):
        ratio = pipeline["misses"].get("pipeline_over_bare")
        if ratio is not None:
            add(
                "embedding pipeline vs bare forward loop",
                f"≥ {PIPELINE_TARGET:.0%}",
                ratio,
                ratio >= PIPELINE_TARGET,
                f"{ratio:.0%}",
            )
        hits = pipeline["hits"]
        ratio = hits["cached_over_merge"]
        add(
            f"cached re-encode vs merge-only, {hits['chunks_per_document']}-chunk documents",
            f"≥ {CACHED_OVER_MERGE_TARGET:.0%}",
            ratio,
            ratio >= CACHED_OVER_MERGE_TARGET if hits["chunks_per_document"] == 16 else None,
            f"{ratio:.0%} ({hits['documents_per_s']:,.0f} vs {hits['merge_documents_per_s']:,.0f} docs/s)",
        )
    if _measured(efficiency) and efficiency.get("overhead"):
        worst = max(r["merge_batch_s"] / r["matmul_s"] for r in efficiency["overhead"])
        shown = ", ".join(
            f"N={r['chunks']}: {r['merge_batch_s'] / r['matmul_s']:.2f}×" for r in efficiency["overhead"]
        )
        add(
            "batch-1 merge vs its matmuls",
            f"≤ {BATCH1_OVER_MATMUL_TARGET:.0f}×",
            worst,
            worst <= BATCH1_OVER_MATMUL_TARGET,
            shown,
        )
    memory = sections.get("memory")
    if _measured(memory):
        small, large = memory["rows"][0], memory["rows"][-1]
        add(
            "peak memory flat in the document count",
            f"growth ≤ {memory['tolerance_mib']:.0f} MiB",
            memory["growth_mib"],
            memory["flat"],
            f"{small['documents']:,} docs {small['peak_rss_mib']:.0f} MiB → {large['documents']:,} docs "
            f"{large['peak_rss_mib']:.0f} MiB",
        )
        turns = memory.get("throughput")
        if turns:
            ratio = turns["stream_over_whole"]
            add(
                "streaming `vbert merge` vs whole-corpus throughput",
                f"≥ {memory['stream_over_whole_target']:.0%}",
                ratio,
                ratio >= memory["stream_over_whole_target"],
                f"{ratio:.0%} ({turns['documents']:,} docs, in turns, {turns['clock']} clock)",
            )
    onnx = sections.get("onnx")
    if _measured(onnx):
        diff = max(onnx["max_abs_diff"], onnx["export_parity_max_abs_diff"] or 0.0)
        add(
            "ONNX parity with PyTorch", f"≤ {ONNX_TOLERANCE:.0e}", diff, diff <= ONNX_TOLERANCE, f"{diff:.1e}"
        )
    prefix = sections.get("prefix")
    if _measured(prefix) and prefix["rows"]:
        diff = max(r["max_abs_diff"] for r in prefix["rows"])
        add(
            "batched prefix merges = one-by-one",
            f"≤ {PREFIX_TOLERANCE:.0e}",
            diff,
            diff <= PREFIX_TOLERANCE,
            f"{diff:.1e}",
        )
        slowest = min(r["speedup"] for r in prefix["rows"])
        lengths = [r["length"] for r in prefix["rows"]]
        add(
            f"prefix merges vs separate merges, L = {min(lengths)}–{max(lengths)}",
            "> 1× at every L",
            slowest,
            slowest > 1.0,
            ", ".join(f"L={r['length']}: {r['speedup']:.2f}×" for r in prefix["rows"]),
        )
    data = sections.get("data_build")
    if _measured(data):
        for row in data["rows"]:
            ratio = row["ratio"]
            add(
                f"dataset build ({row['dataset']}) vs raw encode",
                f"≥ {DATA_BUILD_TARGET:.0%}",
                ratio,
                ratio >= DATA_BUILD_TARGET,
                f"{ratio:.0%}",
            )
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _not_measured(title: str, section: dict[str, Any]) -> list[str]:
    return [f"## {title}", "", f"Not measured: {section['reason']}", ""]


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: machine, targets, then one table per section."""
    m = report["machine"]
    lines = [
        "# vbert performance report",
        "",
        f"Run {report['created']} in {report['seconds']:.0f} s. Machine: {m['cpu']} ({m['usable_cpus']} usable CPUs, "
        f"{', '.join(m['cpu_simd']) or 'no AVX'}), {m['memory_gib']} GiB, GPU: {m['gpu'] or 'none'}; "
        f"torch {m['torch']} with {m['torch_threads']} threads, onnxruntime {m['onnxruntime']}, python {m['python']}. "
        f"Load average at start {report['load_average_start']}, at end {report['load_average_end']}.",
        "",
        f"Embedder: {report['embedder']['note']}. Merger: {report['merger']['note']} "
        f"({report['merger']['num_layers']} layers, d={report['merger']['d_model']}, "
        f"FFN {report['merger']['ffn_dim']}, {report['merger']['parameters'] / 1e6:.2f} M parameters).",
        "",
        "Every time is the median of repeated runs after a warm-up, on the "
        + (
            "process clock (CPU seconds of the benchmark process, so time other programs hold the CPU is not counted)."
            if report["settings"].get("clock") == "process"
            else "wall clock."
        ),
        "",
        "## Targets",
        "",
    ]
    verdict = {True: "met", False: "**missed**", None: "n/a"}
    lines += _table(
        ["target", "goal", "measured", "verdict"],
        [[t["target"], t["goal"], t["measured"], verdict[t["met"]]] for t in report["targets"]],
    )
    lines.append("")
    sections = report["sections"]
    renderers = {
        "merge_cost": _merge_cost,
        "efficiency": _efficiency,
        "pipeline": _pipeline,
        "training": _training,
        "memory": _memory,
        "scaling": _scaling,
        "onnx": _onnx,
        "prefix": _prefix,
        "long_context": _long_context,
        "data_build": _data_build,
    }
    for name, section in sections.items():
        lines += renderers[name](section)
    return "\n".join(lines) + "\n"


def _merge_cost(s: dict[str, Any]) -> list[str]:
    lines = ["## 1. Merge-only vs cold cost", "", s["what"] + ".", ""]
    lines += _table(
        [
            "chunks",
            "tokens",
            "embed chunks",
            "merge (cached vectors)",
            "embed / merge",
            "cached encode (lookup + merge)",
            "embed / cached encode",
        ],
        [
            [
                str(r["chunks"]),
                f"{r['tokens']:,}",
                _seconds(r["embed_s"]) + (f" ({r['embed_runs']} run)" if r["embed_runs"] == 1 else ""),
                _seconds(r["merge_s"]),
                f"{r['embed_over_merge']:,.0f}×",
                _seconds(r["cached_encode_s"]) + f" (a split would add {_seconds(r['split_s'])})",
                f"{r['embed_over_cached_encode']:,.0f}×",
            ]
            for r in s["rows"]
        ],
    )
    return [*lines, ""]


def _efficiency(s: dict[str, Any]) -> list[str]:
    lines = ["## 2. Merger efficiency", "", s["what"] + " (FLOPs counted on the 2N+1 PPE length).", ""]
    lines += _table(
        ["batch", "N", "length", "GFLOP", "forward", "forward GFLOP/s", "matmul GFLOP/s", "efficiency"],
        [
            [
                str(r["batch"]),
                str(r["chunks"]),
                str(r["sequence_length"]),
                f"{r['gflop']:.2f}",
                _seconds(r["forward_s"]),
                f"{r['forward_gflops']:.1f}",
                f"{r['matmul_gflops']:.1f}",
                f"{r['efficiency']:.0%}",
            ]
            for r in s["rows"]
        ],
    )
    lines += ["", "Per-call cost at batch 1:", ""]
    lines += _table(
        ["N", "merge_batch", "forward", "its matmuls", "time outside matmuls"],
        [
            [
                str(r["chunks"]),
                _seconds(r["merge_batch_s"]),
                _seconds(r["forward_s"]),
                _seconds(r["matmul_s"]),
                f"{r['non_matmul_share']:.0%}",
            ]
            for r in s["overhead"]
        ],
    )
    return [*lines, ""]


def _pipeline(s: dict[str, Any]) -> list[str]:
    if s.get("status") == "not measured":
        return _not_measured("3. Embedding pipeline", s)
    m, h = s["misses"], s["hits"]
    lines = ["## 3. Embedding pipeline", "", s["what"] + ".", ""]
    rows = [
        [
            "LongDocumentEncoder, empty cache",
            f"{m['pipeline_chunks_per_s']:.2f} chunks/s",
            _seconds(m["pipeline_s"]),
        ],
    ]
    if "bare_s" in m:
        rows.append(
            ["bare forward_batch loop", f"{m['bare_chunks_per_s']:.2f} chunks/s", _seconds(m["bare_s"])]
        )
        rows.append(["ratio", f"{m['pipeline_over_bare']:.1%}", ""])
    else:
        rows.append(["bare forward_batch loop", m["bare"], ""])
    lines += _table([f"{m['documents']} documents, {m['chunks']} chunks", "throughput", "time"], rows)
    stages = ", ".join(f"{k.replace('_', ' ')} {_seconds(v)}" for k, v in m["stages_s"].items())
    lines += [
        "",
        f"The other stages of a cold encode, each timed once on its own: {stages}. "
        f"Cache on disk: {m['cache_bytes_per_chunk']:,.0f} bytes per chunk.",
    ]
    stages = ", ".join(f"{k} {v:,.1f} docs/s" for k, v in h["stages_documents_per_s"].items())
    lines += [""]
    lines += _table(
        [f"{h['documents']} documents × {h['chunks_per_document']} chunks, seen before", "documents/s"],
        [
            ["LongDocumentEncoder.encode (lookup + merge)", f"{h['documents_per_s']:,.1f}"],
            ["merge_sequences of the cached vectors alone", f"{h['merge_documents_per_s']:,.1f}"],
            ["ratio", f"{h['cached_over_merge']:.0%}"],
            [
                "first encode (cuts the documents, records their chunk keys)",
                f"{h['first_encode_documents_per_s']:,.1f}",
            ],
        ],
    )
    lines += ["", f"Each stage alone: {stages}.", ""]
    return lines


def _training(s: dict[str, Any]) -> list[str]:
    if s.get("status") == "not measured":
        return _not_measured("4. Training throughput", s)
    models = ", ".join(
        f"{size}: {d['source']} ({d['num_layers']} layers, d={d['d_model']}, {d['parameters'] / 1e6:.2f} M parameters)"
        for size, d in s["models"].items()
    )
    lines = [
        "## 4. Training throughput",
        "",
        f"{s['what']}. Batch {s['batch']}, up to {s['max_chunks']} chunks. Models: {models}.",
        "",
    ]
    lines += _table(
        ["model", "objective", "step", "samples/s"],
        [[r["size"], r["objective"], _seconds(r["step_s"]), f"{r['samples_per_s']:,.1f}"] for r in s["rows"]],
    )
    return [*lines, ""]


def _memory(s: dict[str, Any]) -> list[str]:
    lines = ["## 5. Memory", "", f"{s['what']}. Setup: {s['setup']}.", ""]
    lines += _table(
        ["path", "documents", "RSS after setup", "peak RSS", "peak measured over", "time", "documents/s"],
        [
            [
                r.get("mode", "stream"),
                f"{r['documents']:,}",
                "n/a" if r["setup_rss_mib"] is None else f"{r['setup_rss_mib']:.1f} MiB",
                f"{r['peak_rss_mib']:.1f} MiB",
                r["peak_covers"],
                _seconds(r["seconds"]),
                f"{r['documents'] / r['seconds']:,.0f}",
            ]
            for r in [*s["rows"], *s.get("whole", [])]
        ],
    )
    turns = s.get("throughput")
    if turns:
        lines += [
            "",
            f"Throughput of the streaming path vs the whole-corpus path, timed in turns in one process on "
            f"{turns['documents']:,} documents ({turns['clock']} clock, median of {turns['repeats']}): "
            f"{_seconds(turns['stream']['median_s'])} vs {_seconds(turns['whole']['median_s'])}, "
            f"{s['stream_over_whole']:.0%}.",
        ]
    verdict = "flat" if s["flat"] else "**grows**"
    lines += [
        "",
        f"Growth {s['growth_mib']:+.1f} MiB (tolerance {s['tolerance_mib']:.0f} MiB): {verdict}.",
        "",
    ]
    return lines


def _scaling(s: dict[str, Any]) -> list[str]:
    lines = ["## 6. Scaling", "", s["what"] + ".", ""]
    lines += _table(
        ["N", "merge", "GFLOP", "GFLOP/s"],
        [
            [str(r["chunks"]), _seconds(r["merge_s"]), f"{r['gflop']:.3f}", f"{r['gflops']:.1f}"]
            for r in s["rows"]
        ],
    )
    large = s["exponent_large_n"]
    lines += [
        "",
        f"Fitted exponent of time ∝ N^k: k = {s['exponent_all']:.2f} over all N"
        + (f", k = {large:.2f} for N ≥ {s['large_n_from']}" if large is not None else "")
        + f"; the FLOP count alone gives k = {s['flop_exponent_all']:.2f}.",
        "",
    ]
    return lines


def _onnx(s: dict[str, Any]) -> list[str]:
    if s.get("status") == "not measured":
        return _not_measured("7. ONNX runtime", s)
    lines = [
        "## 7. ONNX runtime",
        "",
        f"{s['what']}. Export took {_seconds(s['export_s'])} ({s['file_mib']:.1f} MiB); parity check after export "
        f"{s['export_parity_max_abs_diff']:.1e}.",
        "",
    ]
    lines += _table(
        ["batch", "N", "padded", "PyTorch", "onnxruntime", "speed-up", "max abs diff"],
        [
            [
                str(r["batch"]),
                str(r["chunks"]),
                "yes" if r["padded"] else "no",
                _seconds(r["torch_s"]),
                _seconds(r["onnx_s"]),
                f"{r['onnx_speedup']:.2f}×",
                f"{r['max_abs_diff']:.1e}",
            ]
            for r in s["rows"]
        ],
    )
    return [*lines, ""]


def _prefix(s: dict[str, Any]) -> list[str]:
    if s.get("status") == "not measured":
        return _not_measured("8. Batched prefix merges", s)
    lines = ["## 8. Batched prefix merges", "", s["what"] + ".", ""]
    lines += _table(
        [
            "L",
            "prefix_merges",
            "one padded batch",
            "L separate merges",
            "speed-up (shared, padded)",
            "max abs diff",
        ],
        [
            [
                str(r["length"]),
                _seconds(r["shared_s"]),
                _seconds(r["one_padded_batch_s"]) if "one_padded_batch_s" in r else "not timed",
                _seconds(r["one_by_one_s"]),
                f"{r['speedup']:.2f}×" + (f", {r['padded_speedup']:.2f}×" if "padded_speedup" in r else ""),
                f"{r['max_abs_diff']:.1e}",
            ]
            for r in s["rows"]
        ],
    )
    return [*lines, ""]


def _long_context(s: dict[str, Any]) -> list[str]:
    if s.get("status") == "not measured":
        return _not_measured("9. One long window vs chunks", s)
    lines = ["## 9. One long window vs chunks (cost proxy)", "", s["what"], ""]
    lines += _table(
        [
            "windows",
            "tokens",
            "one long window",
            "chunked embed",
            "merge",
            "long / (chunked + merge)",
            "update one chunk",
        ],
        [
            [
                str(r["windows"]),
                f"{r['tokens']:,}",
                _seconds(r["long_window_s"]),
                _seconds(r["chunked_s"]),
                _seconds(r["merge_s"]),
                f"{r['long_over_chunked_and_merge']:.2f}×",
                _seconds(r["update_one_chunk_s"]),
            ]
            for r in s["rows"]
        ],
    )
    return [*lines, ""]


def _data_build(s: dict[str, Any]) -> list[str]:
    if s.get("status") == "not measured":
        return _not_measured("10. Dataset builds", s)
    lines = ["## 10. Dataset builds", "", f"{s['what']}; corpus: {s['corpus']}.", ""]
    lines += _table(
        ["dataset", "articles", "texts embedded", "build", "raw encode", "ratio"],
        [
            [
                r["dataset"],
                str(r["articles"]),
                str(r["texts_embedded"]),
                f"{r['build_s']:.2f} s",
                f"{r['raw_encode_s']:.2f} s",
                f"{r['ratio']:.0%}",
            ]
            for r in s["rows"]
        ],
    )
    return [*lines, ""]
