"""Distillation fidelity: how close a merger's vector is to the embedder's own vector of the text.

For a text that fits the base embedder's window, the best a merger of its chunk vectors can do
is reproduce the embedder's vector of the whole text (the "teacher"). Fidelity is the cosine
between the two, on held-out pairs built by ``vbert data n-to-1`` (inputs: the chunk vectors of
a window; target: the vector of the window's text). Truncation is left out: for texts inside the
window it *is* the teacher.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vbert.evaluation.metrics import bootstrap_ci, paired_bootstrap_ci
from vbert.mergers import Merger, merge_sequences

# Chunk-count bands reported separately (inclusive bounds).
LENGTH_BANDS = ((2, 4), (5, 7), (8, 10), (11, 64))


def _summary(values: np.ndarray, seed: int) -> dict[str, float]:
    mean, low, high = bootstrap_ci(values, seed=seed)
    return {"mean": mean, "ci95": [low, high], "n": int(values.size)}


def distillation_fidelity(
    pairs: Sequence[Mapping[str, Any]],
    mergers: Mapping[str, Merger],
    baseline: str | None = "mean",
    seed: int = 0,
) -> dict[str, Any]:
    """Cosine of each merger's output to the pair's target, with bootstrap 95% intervals.

    Args:
        pairs: rows of :func:`vbert.data.datasets.load_pairs` (``inputs``, ``target`` and, for
            token-weighted mean pooling, ``input_tokens``).
        mergers: name → merger; every merger sees the same pairs.
        baseline: name of the merger the others are compared with (paired differences); None
            skips the comparison.
        seed: bootstrap seed.

    Returns a JSON-ready dict: per merger the overall mean cosine, per length band, and the
    paired difference to the baseline.
    """
    if not pairs:
        raise ValueError("no pairs to evaluate; check the dataset split")
    if baseline is not None and baseline not in mergers:
        raise ValueError(f"baseline {baseline!r} is not among the mergers {sorted(mergers)}")
    sequences = [np.asarray(row["inputs"], dtype=np.float32) for row in pairs]
    targets = np.stack([np.asarray(row["target"], dtype=np.float32) for row in pairs])
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    weights = None
    if all("input_tokens" in row for row in pairs):
        weights = [np.asarray(row["input_tokens"], dtype=np.float32) for row in pairs]
    lengths = np.array([len(s) for s in sequences])
    cosines: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name, merger in mergers.items():
        started = time.perf_counter()
        merged = merge_sequences(merger, sequences, weights=weights, batch_size=64)
        seconds[name] = time.perf_counter() - started
        merged /= np.linalg.norm(merged, axis=1, keepdims=True)
        cosines[name] = (merged * targets).sum(axis=1)
    report: dict[str, Any] = {"pairs": len(pairs), "baseline": baseline, "methods": {}}
    for name, values in cosines.items():
        entry: dict[str, Any] = {"cosine": _summary(values, seed), "seconds": seconds[name], "by_length": {}}
        for low, high in LENGTH_BANDS:
            selected = (lengths >= low) & (lengths <= high)
            if selected.any():
                entry["by_length"][f"{low}-{high}"] = _summary(values[selected], seed)
        if baseline is not None and name != baseline:
            diff, diff_low, diff_high = paired_bootstrap_ci(values, cosines[baseline], seed=seed)
            entry["minus_baseline"] = {"mean": diff, "ci95": [diff_low, diff_high]}
        report["methods"][name] = entry
    return report


def format_fidelity_markdown(report: Mapping[str, Any]) -> str:
    """A Markdown table of a :func:`distillation_fidelity` report."""
    bands = [f"{low}-{high}" for low, high in LENGTH_BANDS]
    present = [b for b in bands if any(b in m["by_length"] for m in report["methods"].values())]
    baseline = report.get("baseline")
    header = ["method", "cosine [95% CI]", *[f"{b} chunks" for b in present]]
    if baseline:
        header.append(f"minus {baseline} [95% CI]")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, method in report["methods"].items():
        overall = method["cosine"]
        cells = [name, f"{overall['mean']:.4f} [{overall['ci95'][0]:.4f}, {overall['ci95'][1]:.4f}]"]
        cells += [
            f"{method['by_length'][b]['mean']:.4f}" if b in method["by_length"] else "" for b in present
        ]
        if baseline:
            diff = method.get("minus_baseline")
            cells.append(
                f"{diff['mean']:+.4f} [{diff['ci95'][0]:+.4f}, {diff['ci95'][1]:+.4f}]" if diff else "—"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
