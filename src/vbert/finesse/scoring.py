"""``finesse score``: turn raw outputs into ``results.json`` (+ a Markdown table), for any metric.

The metric of a raw folder (:mod:`vbert.finesse.metrics`) scores each length and sums the
lengths up; this module adds what every results file shares: the config, probes, competitor,
file hashes, environments, the lengths that could not be evaluated, and the integrity seal.

The overall score is the mean of every per-sample score of every evaluated length (equal
to the mean of the per-length means, as every length has the same number of samples).
Lengths a native model could not evaluate are listed under ``lengths_not_evaluated`` and
never averaged in as if scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vbert.errors import ConfigError, DataError
from vbert.files import atomic_write_json, atomic_write_text
from vbert.finesse.environment import vbert_version
from vbert.finesse.integrity import seal
from vbert.finesse.metrics import FORMULAS, LengthScore, get_metric
from vbert.finesse.raw import MANIFEST, RawRun, find_runs

RESULTS_FORMAT = "vbert-finesse-results/1"
RESULTS_FILE = "results.json"
MARKDOWN_FILE = "results.md"


def score_run(run: RawRun, formula: str | None = None, score_version: str | None = None) -> dict[str, Any]:
    """The unsealed results object of one competitor's raw folder."""
    run.require_complete()
    manifest = run.manifest
    metric = get_metric(run.metric)
    scoring = manifest["config"]["scoring"]
    formula = formula or scoring["formula"]
    version = score_version or scoring["score_version"]
    if formula not in FORMULAS:
        raise ConfigError(f"unknown formula {formula!r}; use one of {FORMULAS}")
    if metric.uses_score_version and version not in metric.score_versions:
        raise ConfigError(f"unknown score version {version!r}; use one of {metric.score_versions}")
    scored: dict[int, LengthScore] = {
        length: metric.score_length(run.arrays(length), formula, version) for length in run.lengths
    }
    if not scored:
        raise DataError(
            f"{run.folder}: no length could be evaluated ({run.not_evaluated}); nothing to score. "
            "Use on_overflow: truncate or shorter lengths for this native model"
        )
    lengths = {str(length): score.entry for length, score in scored.items()}
    summary = {"samples": sum(entry["samples"] for entry in lengths.values()), **metric.summary(scored)}
    environments = manifest.get("environments", [])
    return {
        "format": RESULTS_FORMAT,
        "benchmark": "finesse",
        "metric": run.metric,
        "formula": formula,
        "score_version": version if metric.uses_score_version else None,
        "score_scale": metric.score_scale,
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
        "scored_with": {"vbert": vbert_version()},
    }


def markdown_table(results: dict[str, Any]) -> str:
    """A per-length Markdown table of one results object, with the metric's columns."""
    columns = get_metric(results["metric"]).columns()
    summary = results["summary"]
    lines = [
        f"### Finesse {results['metric'].upper()} — {results['competitor']['name']}",
        "",
        f"formula `{results['formula']}`, score version `{results['score_version']}`, "
        f"chunk space `{results['chunk_space']}`, probes `{results['probes']['content_hash'][:19]}`",
        "",
        "| L | samples | " + " | ".join(c.header for c in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for length, entry in results["lengths"].items():
        lines.append(
            f"| {length} | {entry['samples']} | " + " | ".join(c.cell(entry) for c in columns) + " |"
        )
    for length, reason in results["lengths_not_evaluated"].items():
        blanks = " |" * (len(columns) - 1)
        lines.append(f"| {length} | – | not evaluated |{blanks}  <!-- {reason} -->")
    totals = " | ".join(c.total(summary) for c in columns)
    lines.append(f"| **all** | {summary['samples']} | {totals} |")
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], output: str | Path, key: bytes | None = None) -> Path:
    """Seal (hash, optionally sign) and write ``results.json`` and ``results.md`` into ``output``."""
    folder = Path(output)
    sealed = seal(results, key)
    path = folder / RESULTS_FILE
    atomic_write_json(path, sealed)
    atomic_write_text(folder / MARKDOWN_FILE, markdown_table(sealed))
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
    if len(runs) == 1 and (Path(raw) / MANIFEST).is_file():
        return [write_results(score_run(runs[0], formula, score_version), out, key)]
    paths = [write_results(score_run(run, formula, score_version), out / run.name, key) for run in runs]
    from vbert.finesse.compare import compare_files

    atomic_write_text(out / "summary.md", compare_files(paths))
    return paths
