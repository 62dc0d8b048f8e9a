"""Rebuild the tables of docs/results.md from the committed result files.

    python results/tables.py            # prints Markdown

Reads ``results/finesse/*/results.json`` (Finesse, 25 samples per length: the shipped merger and
the baselines), ``results/finesse-ablation/*/results.json`` (Finesse, 4 samples per length: every
ablation row and mean pooling, on their own probe set), ``results/distill.json``
(`vbert evaluate distill`) and ``results/retrieval.json`` (`vbert evaluate retrieval`). Every
interval is a 95% percentile bootstrap (1,000 resamples, seed 0); "vs mean" columns are paired
differences over the same probes, pairs or queries.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from vbert.evaluation.metrics import bootstrap_ci, paired_bootstrap_ci

ROOT = Path(__file__).parent
BANDS = ((4, 8), (9, 16), (17, 32), (33, 64))
ORDER = [
    "default",
    "distill-10to1",
    "rocket",
    "overload",
    "vbert-only",
    "rocket-no-ppe",
    "rocket-additive-pe",
    "rocket-no-residual",
    "mean",
    "mean-weighted",
    "truncation",
]


def _ordered(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def _ci(mean: float, low: float, high: float, digits: int = 1, sign: bool = False) -> str:
    f = f"{{:{'+' if sign else ''}.{digits}f}}"
    return f"{f.format(mean)} [{f.format(low)}, {f.format(high)}]"


def finesse_scores(folder: Path) -> dict[str, dict[int, np.ndarray]]:
    """competitor → length → per-sample balanced scores."""
    out = {}
    for path in sorted(folder.glob("*/results.json")):
        results = json.loads(path.read_text())
        out[path.parent.name] = {int(k): np.array(v["scores"]) for k, v in results["lengths"].items()}
    return out


def finesse_table(scores: dict[str, dict[int, np.ndarray]], reference: str = "mean") -> str:
    def band(name: str, low: int, high: int) -> np.ndarray:
        return np.concatenate([s for length, s in sorted(scores[name].items()) if low <= length <= high])

    header = ["method", *[f"L {a}–{b}" for a, b in BANDS], "overall 4–64", f"Δ vs {reference}, 4–64"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in _ordered(list(scores)):
        cells = [name]
        for low, high in BANDS:
            cells.append(_ci(*bootstrap_ci(band(name, low, high))))
        every = band(name, 4, 64)
        cells.append(_ci(*bootstrap_ci(every)))
        if name == reference:
            cells.append("—")
        else:
            cells.append(_ci(*paired_bootstrap_ci(every, band(reference, 4, 64)), sign=True))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def finesse_delta_table(scores: dict[str, dict[int, np.ndarray]], reference: str = "mean") -> str:
    """Paired difference to the reference per band, and the relative change of the band means."""
    lines = [
        "| method | " + " | ".join(f"Δ L {a}–{b} (relative)" for a, b in BANDS) + " |",
        "|" + "---|" * (len(BANDS) + 1),
    ]
    for name in _ordered(list(scores)):
        if name == reference:
            continue
        cells = [name]
        for low, high in BANDS:
            ours = np.concatenate([s for n, s in scores[name].items() if low <= n <= high])
            ref = np.concatenate([s for n, s in scores[reference].items() if low <= n <= high])
            mean, lo, hi = paired_bootstrap_ci(ours, ref)
            relative = mean / abs(ref.mean()) * 100 if ref.mean() else float("nan")
            cells.append(f"{_ci(mean, lo, hi, sign=True)} ({relative:+.0f}%)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def distill_table(report: dict) -> str:
    lines = [
        "| method | cosine to teacher [95% CI] | 2–4 chunks | 5–7 | 8–10 | Δ vs mean [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for name in _ordered(list(report["methods"])):
        method = report["methods"][name]
        c = method["cosine"]
        bands = [method["by_length"].get(b, {}).get("mean") for b in ("2-4", "5-7", "8-10")]
        diff = method.get("minus_baseline")
        lines.append(
            f"| {name} | {_ci(c['mean'], *c['ci95'], digits=4)} | "
            + " | ".join("" if v is None else f"{v:.4f}" for v in bands)
            + f" | {_ci(diff['mean'], *diff['ci95'], digits=4, sign=True) if diff else '—'} |"
        )
    return "\n".join(lines)


def retrieval_table(report: dict) -> str:
    tasks = report["tasks"]
    deep = tasks.get("deep-paragraph", {}).get("methods", {})
    cross = tasks.get("cross-lingual", {}).get("pairs", {})
    header = ["method", "deep nDCG@10", "deep R@1", *[f"{p} R@1" for p in sorted(cross)]]
    for task in ("passkey", "needle"):
        for length in sorted(tasks.get(task, {}).get("lengths", {}), key=int):
            header.append(f"{task} {length}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def pct(entry: dict) -> str:
        return _ci(entry["mean"] * 100, entry["ci_low"] * 100, entry["ci_high"] * 100)

    for name in _ordered(list(report["mergers"])):
        cells = [name]
        if name in deep:
            cells += [pct(deep[name]["ndcg@10"]), pct(deep[name]["recall@1"])]
        else:
            cells += ["", ""]
        cells += [pct(cross[p]["methods"][name]["recall@1"]) for p in sorted(cross)]
        for task in ("passkey", "needle"):
            lengths = tasks.get(task, {}).get("lengths", {})
            cells += [f"{lengths[n][name]['mean'] * 100:.0f}" for n in sorted(lengths, key=int)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    sections = []
    for folder, title in (
        ("finesse", "Finesse, 25 samples per length"),
        ("finesse-ablation", "Finesse of the ablations, 4 samples per length"),
    ):
        if (ROOT / folder).is_dir():
            scores = finesse_scores(ROOT / folder)
            sections += [f"## {title} (balanced, q1q3, base chunk space)", finesse_table(scores)]
            sections += [f"## {title}: paired difference to mean pooling", finesse_delta_table(scores)]
    for name, builder, title in (
        ("distill.json", distill_table, "## Distillation fidelity (held-out 10-to-1 pairs)"),
        ("retrieval.json", retrieval_table, "## Retrieval (held-out test split; %)"),
    ):
        if (ROOT / name).exists():
            sections += [title, builder(json.loads((ROOT / name).read_text()))]
    sys.stdout.write("\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
