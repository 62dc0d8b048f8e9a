"""``finesse compare``: several ``results.json`` side by side, one row per length.

Results are only comparable when they share the metric, the formula, the score version and
the probe set (same texts); otherwise the comparison is refused unless explicitly allowed,
and the mismatch is printed above the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vbert.errors import DataError
from vbert.files import read_json
from vbert.finesse.metrics import get_metric
from vbert.finesse.storage import reading_results

COMPARABLE_FIELDS = ("metric", "formula", "score_version")


class IncomparableResultsError(DataError):
    """The results were made with different metrics, formulas, score versions or probe sets."""


def unique_labels(names: Sequence[str]) -> list[str]:
    """``names`` with repeats told apart: ``x``, ``x (2)``, ``x (3)``, …"""
    labels: list[str] = []
    for base in names:
        label, n = base, 2
        while label in labels:
            label, n = f"{base} ({n})", n + 1
        labels.append(label)
    return labels


def mismatches(results: Sequence[dict[str, Any]]) -> list[str]:
    """Human-readable reasons why ``results`` are not directly comparable (empty if they are)."""
    problems = []
    for field in COMPARABLE_FIELDS:
        values = sorted({str(r.get(field)) for r in results})
        if len(values) > 1:
            problems.append(f"different {field}: {', '.join(values)}")
    hashes = sorted({str(r["probes"]["content_hash"]) for r in results})
    if len(hashes) > 1:
        problems.append(f"different probe sets (texts): {', '.join(h[:19] for h in hashes)}")
    return problems


def compare(results: Sequence[dict[str, Any]], allow_mismatch: bool = False) -> str:
    """A Markdown table of mean score per length (columns = competitors), overall and latency rows."""
    with reading_results("a results file"):
        return _compare(results, allow_mismatch)


def _compare(results: Sequence[dict[str, Any]], allow_mismatch: bool) -> str:
    if not results:
        raise DataError("give at least one results.json to compare")
    problems = mismatches(results)
    if problems and not allow_mismatch:
        raise IncomparableResultsError(
            "these results are not comparable: "
            + "; ".join(problems)
            + " (pass --allow-mismatch to compare anyway)"
        )
    labels = unique_labels([str(r["competitor"]["name"]) for r in results])
    lengths = sorted(
        {int(length) for r in results for length in (*r["lengths"], *r["lengths_not_evaluated"])}
    )
    metric = results[0]["metric"]
    lines = [f"## Finesse {metric.upper()} comparison", ""]
    if problems:
        lines += [f"> **Warning:** {'; '.join(problems)}", ""]
    else:
        first = results[0]
        lines += [
            f"formula `{first['formula']}`, score version `{first['score_version']}`, "
            f"probes `{first['probes']['content_hash'][:19]}`",
            "",
        ]
    lines += ["| L | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for length in lengths:
        cells = []
        for r in results:
            entry = r["lengths"].get(str(length))
            if entry is not None:
                cells.append(f"{entry['mean_score']:.3f}")
            elif str(length) in r["lengths_not_evaluated"]:
                cells.append("not evaluated")
            else:
                cells.append("–")
        lines.append(f"| {length} | " + " | ".join(cells) + " |")
    best = max(r["summary"]["mean_score"] for r in results)
    overall = [
        (
            f"**{r['summary']['mean_score']:.3f}**"
            if r["summary"]["mean_score"] == best
            else f"{r['summary']['mean_score']:.3f}"
        )
        for r in results
    ]
    lines.append("| **overall** | " + " | ".join(overall) + " |")
    for title, cells in get_metric(metric).comparison_rows([r["summary"] for r in results]):
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    partial = [label for label, r in zip(labels, results, strict=True) if r["lengths_not_evaluated"]]
    if partial:
        lines += ["", f"Overall means of {', '.join(partial)} cover only the lengths they could evaluate."]
    return "\n".join(lines) + "\n"


def compare_files(paths: Sequence[str | Path], allow_mismatch: bool = False) -> str:
    """:func:`compare` over ``results.json`` files."""
    loaded = [read_json(p, "results file") for p in paths]
    with reading_results(", ".join(map(str, paths))):
        return _compare(loaded, allow_mismatch)
