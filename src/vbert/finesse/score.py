"""``finesse score``: turn raw outputs into ``results.json`` (+ a Markdown table).

The overall score is the mean of every per-sample score of every evaluated length (equal
to the mean of the per-length means, as every length has the same number of samples).
Lengths a native model could not evaluate are listed under ``lengths_not_evaluated`` and
never averaged in as if scored. Latencies are reported per sample and as medians.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from vbert.finesse import srs
from vbert.finesse.integrity import seal
from vbert.finesse.raw import RawRun, find_runs
from vbert.finesse.scoring import FORMULAS, SCORE_SCALE, SCORE_VERSIONS, sample_gaps, sample_score
from vbert.finesse.storage import write_json, write_text

RESULTS_FORMAT = "vbert-finesse-results/1"
DECIMALS = 6
RESULTS_FILE = "results.json"


def _r(value: float) -> float:
    return round(float(value), DECIMALS) + 0.0


def _rl(values: Any) -> list[float]:
    return [_r(v) for v in values]


def _latencies(values: Any) -> list[float | None]:
    """Rounded latencies; an untimed sample (NaN, see ``runtime.timed_samples``) becomes None."""
    return [None if np.isnan(v) else _r(v) for v in np.asarray(values, dtype=np.float64)]


def _median(values: list[float | None]) -> float | None:
    timed = [v for v in values if v is not None]
    return _r(np.median(timed)) if timed else None


def _vbert_version() -> str:
    try:
        return metadata.version("vbert")
    except metadata.PackageNotFoundError:
        return "not installed"


def score_rss_length(arrays: dict[str, np.ndarray], formula: str, version: str) -> dict[str, Any]:
    """Per-sample TD, BU, scores and latencies of one length, with their means and medians."""
    tds, bus, scores = [], [], []
    for chunks, synths in zip(arrays["chunks"], arrays["synths"], strict=True):
        gaps = sample_gaps(chunks, synths, formula)
        tds.append(gaps.td)
        bus.append(gaps.bu)
        scores.append(sample_score(gaps.td, gaps.bu, version))
    full = _latencies(arrays["latency_full_ms"])
    merge = _latencies(arrays["latency_merge_ms"])
    return {
        "samples": len(scores),
        "scores": _rl(scores),
        "td": _rl(tds),
        "bu": _rl(bus),
        "latency_full_ms": full,
        "latency_merge_ms": merge,
        "mean_score": _r(np.mean(scores)),
        "mean_td": _r(np.mean(tds)),
        "mean_bu": _r(np.mean(bus)),
        "median_latency_full_ms": _median(full),
        "median_latency_merge_ms": _median(merge),
        "_raw_scores": scores,
        "_raw_td": tds,
        "_raw_bu": bus,
    }


def score_srs_length(arrays: dict[str, np.ndarray], formula: str) -> dict[str, Any]:
    """Per-sample (p, position) SRS scores of one length and their means."""
    detail = srs.score_length(arrays, formula)
    flat_per_sample = [[v for values in s.values() for v in values] for s in detail["position_scores"]]
    every = [v for values in flat_per_sample for v in values]
    return {
        "samples": len(flat_per_sample),
        "position_scores": [{p: _rl(v) for p, v in s.items()} for s in detail["position_scores"]],
        "scores": _rl(np.mean(values) for values in flat_per_sample),
        "mean_score": _r(np.mean(every)),
        "_raw_every": every,
        "_raw_positions": detail["position_scores"],
    }


def score_run(run: RawRun, formula: str | None = None, score_version: str | None = None) -> dict[str, Any]:
    """The unsealed results object of one competitor's raw folder."""
    run.require_complete()
    manifest = run.manifest
    scoring = manifest["config"]["scoring"]
    formula = formula or scoring["formula"]
    version = score_version or scoring["score_version"]
    if formula not in FORMULAS:
        raise ValueError(f"unknown formula {formula!r}; use one of {FORMULAS}")
    if version not in SCORE_VERSIONS:
        raise ValueError(f"unknown score version {version!r}; use one of {SCORE_VERSIONS}")
    lengths: dict[str, Any] = {}
    pooled: dict[str, list[float]] = {"score": [], "td": [], "bu": [], "full": [], "merge": []}
    positions: dict[int, list[dict[str, list[float]]]] = {}
    for length in run.lengths:
        arrays = run.arrays(length)
        if run.metric == "rss":
            entry = score_rss_length(arrays, formula, version)
            pooled["td"] += entry.pop("_raw_td")
            pooled["bu"] += entry.pop("_raw_bu")
            pooled["score"] += entry.pop("_raw_scores")
            pooled["full"] += entry["latency_full_ms"]
            pooled["merge"] += entry["latency_merge_ms"]
        else:
            entry = score_srs_length(arrays, formula)
            pooled["score"] += entry.pop("_raw_every")
            positions[length] = entry.pop("_raw_positions")
        lengths[str(length)] = entry
    if not lengths:
        raise ValueError(
            f"{run.folder}: no length could be evaluated ({run.not_evaluated}); nothing to score. "
            "Use on_overflow: truncate or shorter lengths for this native model"
        )
    summary: dict[str, Any] = {
        "samples": sum(entry["samples"] for entry in lengths.values()),
        "mean_score": _r(np.mean(pooled["score"])),
    }
    if run.metric == "rss":
        summary.update(
            mean_td=_r(np.mean(pooled["td"])),
            mean_bu=_r(np.mean(pooled["bu"])),
            median_latency_full_ms=_median(pooled["full"]),
            median_latency_merge_ms=_median(pooled["merge"]),
        )
    else:
        summary["pbi"] = _r(srs.position_bias_index(positions))
    environments = manifest.get("environments", [])
    return {
        "format": RESULTS_FORMAT,
        "benchmark": "finesse",
        "metric": run.metric,
        "formula": formula,
        "score_version": version if run.metric == "rss" else None,
        "score_scale": SCORE_SCALE if run.metric == "rss" else srs.SRS_SCALE,
        "chunk_space": manifest["chunk_space"],
        "competitor": manifest["competitor"],
        "config": manifest["config"],
        "probes": manifest["probes"],
        "raw_files": {k: v["sha256"] for k, v in sorted(manifest["lengths"].items())},
        "lengths": lengths,
        "lengths_evaluated": run.lengths,
        "lengths_not_evaluated": {str(k): v for k, v in sorted(run.not_evaluated.items())},
        "lengths_truncated": manifest.get("truncated", {}),
        "summary": summary,
        "environment": environments[0] if environments else None,
        "environments": environments,
        "latency_protocol": manifest.get("latency_protocol"),
        "scored_with": {"vbert": _vbert_version()},
    }


def markdown_table(results: dict[str, Any]) -> str:
    """A per-length Markdown table of one results object."""
    name = results["competitor"]["name"]
    summary = results["summary"]
    lines = [
        f"### Finesse {results['metric'].upper()} — {name}",
        "",
        f"formula `{results['formula']}`, score version `{results['score_version']}`, "
        f"chunk space `{results['chunk_space']}`, probes `{results['probes']['content_hash'][:19]}`",
        "",
    ]
    if results["metric"] == "rss":
        lines += [
            "| L | samples | score | TD | BU | median full ms | median merge ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for length, entry in results["lengths"].items():
            lines.append(
                f"| {length} | {entry['samples']} | {entry['mean_score']:.3f} | {entry['mean_td']:.4f} | "
                f"{entry['mean_bu']:.4f} | {_fmt(entry['median_latency_full_ms'])} | "
                f"{_fmt(entry['median_latency_merge_ms'])} |"
            )
        for length, reason in results["lengths_not_evaluated"].items():
            lines.append(f"| {length} | – | not evaluated | | | | |  <!-- {reason} -->")
        lines.append(
            f"| **all** | {summary['samples']} | **{summary['mean_score']:.3f}** | {summary['mean_td']:.4f} | "
            f"{summary['mean_bu']:.4f} | {_fmt(summary['median_latency_full_ms'])} | "
            f"{_fmt(summary['median_latency_merge_ms'])} |"
        )
    else:
        lines += ["| L | samples | SRS |", "|---|---|---|"]
        for length, entry in results["lengths"].items():
            lines.append(f"| {length} | {entry['samples']} | {entry['mean_score']:.3f} |")
        for length in results["lengths_not_evaluated"]:
            lines.append(f"| {length} | – | not evaluated |")
        lines.append(
            f"| **all** | {summary['samples']} | **{summary['mean_score']:.3f}** (PBI {summary['pbi']:.3f}) |"
        )
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def write_results(results: dict[str, Any], output: str | Path, key: bytes | None = None) -> Path:
    """Seal (hash, optionally sign) and write ``results.json`` and ``results.md`` into ``output``."""
    folder = Path(output)
    sealed = seal(results, key)
    path = folder / RESULTS_FILE
    write_json(path, sealed)
    write_text(folder / "results.md", markdown_table(sealed))
    return path


def score_raw(
    raw: str | Path,
    output: str | Path,
    key: bytes | None = None,
    formula: str | None = None,
    score_version: str | None = None,
) -> list[Path]:
    """Score one competitor folder (→ ``output/results.json``) or every competitor in a generate
    output (→ ``output/<name>/results.json`` plus ``output/summary.md``)."""
    runs = find_runs(raw)
    out = Path(output)
    if len(runs) == 1 and (Path(raw) / "manifest.json").is_file():
        return [write_results(score_run(runs[0], formula, score_version), out, key)]
    paths = [write_results(score_run(run, formula, score_version), out / run.name, key) for run in runs]
    from vbert.finesse.compare import compare_files

    write_text(out / "summary.md", compare_files(paths))
    return paths
