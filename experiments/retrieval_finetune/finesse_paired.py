"""Paired Δ vs a baseline (mean pooling) of Finesse scores per length band (the same probes for all).

Reads ``results/<competitor>/results.json`` of one or more Finesse runs and bootstraps the per-sample
score differences (:func:`vbert.evaluation.paired.paired_report`, one cluster per sample).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vbert.evaluation.paired import paired_report
from vbert.files import atomic_write_json

BANDS = ((4, 8), (9, 16), (30, 32), (46, 48), (60, 64), (96, 100), (124, 128))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="Finesse output folders, or their results/")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--baseline", default="mean", help="competitor every other one is compared with")
    args = parser.parse_args()
    scores: dict[str, dict[int, list[float]]] = {}
    for run in args.runs:
        folder = run / "results" if (run / "results").is_dir() else run  # a `finesse run` output or a copy
        for path in sorted(folder.glob("*/results.json")):
            result = json.loads(path.read_text())
            for length, entry in result["lengths"].items():
                scores.setdefault(path.parent.name, {})[int(length)] = entry["scores"]
    report = {"runs": [str(r) for r in args.runs], "baseline": args.baseline, "bands": {}}
    for low, high in BANDS:
        lengths = [n for n in sorted(scores[args.baseline]) if low <= n <= high]
        if not lengths:
            continue
        per_sample = {  # the competitors scored at every length of the band
            name: np.concatenate([by_length[n] for n in lengths])
            for name, by_length in scores.items()
            if all(n in by_length for n in lengths)
        }
        clusters = np.arange(len(per_sample[args.baseline]))
        stats = paired_report(per_sample, clusters, args.baseline)
        report["bands"][f"{low}-{high}"] = {"samples": len(clusters), "methods": stats}
        for name, entry in stats.items():
            delta = entry.get("delta_vs_" + args.baseline)
            text = f"L {low}-{high} ({len(clusters)} samples) {name:16} {entry['score']['mean']:7.2f}"
            if delta:
                text += f"  Δ {delta['mean']:+6.2f} [{delta['ci_low']:+6.2f}, {delta['ci_high']:+6.2f}]"
            print(text)
    atomic_write_json(args.output, report)


if __name__ == "__main__":
    main()
