"""``finesse inspect``: PNG heat-maps of one sample's Top-Down and Bottom-Up similarity matrices.

Top-Down: rows are syntheses s_i, columns chunks c_j, cell cos(s_i, c_j); the memory tier
(j ≤ i) is outlined, scored rows are i = 1..L−2, and each scored row is annotated with its
quartile gap. Bottom-Up: rows are anchor chunks c_a, columns syntheses s_k; memory is k ≥ a,
scored anchors are a = 1..L−1. Rows that are not scored are shaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vbert.errors import ConfigError
from vbert.finesse.metrics import get_metric
from vbert.finesse.metrics.rss import Gaps, gaps_from_matrix, sample_score, similarity_matrix
from vbert.finesse.raw import RawRun


def select_sample(
    run: RawRun, length: int, sample: int | None = None, best: bool = False, worst: bool = False
) -> tuple[int, dict[str, np.ndarray]]:
    """Which sample to draw: an index, or the best/worst by score (default: sample 0)."""
    if sum([sample is not None, best, worst]) > 1:
        raise ConfigError("choose one of --sample K, --best or --worst")
    if not get_metric(run.metric).has_matrices:
        raise ConfigError(
            f"inspect draws Top-Down/Bottom-Up matrices, which {run.metric} runs do not record ({run.folder})"
        )
    arrays = run.arrays(length)
    n = arrays["chunks"].shape[0]
    scoring = run.manifest["config"]["scoring"]
    if best or worst:
        scores = []
        for chunks, synths in zip(arrays["chunks"], arrays["synths"], strict=True):
            gaps = gaps_from_matrix(similarity_matrix(chunks, synths), scoring["formula"])
            scores.append(sample_score(gaps.td, gaps.bu, scoring["score_version"]))
        return int(np.argmax(scores) if best else np.argmin(scores)), arrays
    index = 0 if sample is None else sample
    if not 0 <= index < n:
        raise ConfigError(f"--sample {index} is out of range: length {length} has samples 0..{n - 1}")
    return index, arrays


def _draw(
    matrix: np.ndarray,
    memory: np.ndarray,
    scored: list[int],
    gaps: tuple[float, ...],
    annotations: list[str],
    labels: tuple[str, str],
    title: str,
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = matrix.shape[0]
    size = max(5.0, 0.55 * n + 3.5)
    fig, ax = plt.subplots(figsize=(size + 3.0, size))
    image = ax.imshow(matrix, cmap="viridis", aspect="equal")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.28, label="cosine similarity")
    for i in range(n):
        for j in range(n):
            if memory[i, j]:
                ax.add_patch(
                    Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="white", linewidth=1.2)
                )
        if i not in scored:
            ax.add_patch(
                Rectangle((-0.5, i - 0.5), n, 1, facecolor="grey", alpha=0.55, hatch="//", linewidth=0)
            )
    if n <= 16:
        for i in range(n):
            for j in range(n):
                shade = image.norm(matrix[i, j])  # light text on the dark end of the colour map
                colour = "white" if shade < 0.5 else "black"
                ax.text(j, i, f"{matrix[i, j]:.3f}", ha="center", va="center", fontsize=7, color=colour)
    for row, gap, note in zip(scored, gaps, annotations, strict=True):
        ax.text(n - 0.3, row, f"gap {gap:+.4f}\n{note}", va="center", ha="left", fontsize=7, clip_on=False)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel(labels[1])
    ax.set_ylabel(labels[0])
    ax.set_title(title, fontsize=9)
    fig.text(
        0.01,
        0.01,
        "white outline = memory tier, other cells = noise; hatched rows are not scored",
        fontsize=7,
    )
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _notes(matrix: np.ndarray, rows: tuple[int, ...], memory: np.ndarray, formula: str) -> list[str]:
    q_mem, q_noise = (0.25, 0.75) if formula == "q1q3" else (0.5, 0.5)
    tag = ("Q1", "Q3") if formula == "q1q3" else ("med", "med")
    notes = []
    for row in rows:
        mem = matrix[row][memory[row]]
        noise = matrix[row][~memory[row]]
        notes.append(
            f"{tag[0]} mem {np.quantile(mem, q_mem):.3f} − {tag[1]} noise {np.quantile(noise, q_noise):.3f}"
        )
    return notes


def inspect_sample(
    run: RawRun,
    length: int,
    output_dir: str | Path,
    sample: int | None = None,
    best: bool = False,
    worst: bool = False,
) -> dict[str, Any]:
    """Write the TD and BU heat-maps of one sample; returns the PNG paths and the sample's scores."""
    index, arrays = select_sample(run, length, sample, best, worst)
    scoring = run.manifest["config"]["scoring"]
    formula, version = scoring["formula"], scoring["score_version"]
    sim = similarity_matrix(arrays["chunks"][index], arrays["synths"][index])
    gaps: Gaps = gaps_from_matrix(sim, formula)
    score = sample_score(gaps.td, gaps.bu, version)
    n = sim.shape[0]
    rows_idx, cols_idx = np.indices((n, n))
    td_memory = cols_idx <= rows_idx
    bu_matrix = sim.T  # B[a, k] = cos(c_a, s_k)
    bu_memory = cols_idx >= rows_idx
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{run.name}_L{length}_s{index}"
    head = (
        f"{run.name} · L={length} · sample {index} · {formula} · TD {gaps.td:+.4f} · BU {gaps.bu:+.4f} · "
        f"score ({version}) {score:+.2f}"
    )
    td_path, bu_path = out / f"{stem}_td.png", out / f"{stem}_bu.png"
    _draw(
        sim, td_memory, list(gaps.td_rows), gaps.td_gaps, _notes(sim, gaps.td_rows, td_memory, formula),
        ("synthesis s_i", "chunk c_j"), "Top-Down: cos(s_i, c_j), memory j ≤ i\n" + head, td_path,
    )  # fmt: skip
    _draw(
        bu_matrix, bu_memory, list(gaps.bu_anchors), gaps.bu_gaps,
        _notes(bu_matrix, gaps.bu_anchors, bu_memory, formula),
        ("anchor chunk c_a", "synthesis s_k"), "Bottom-Up: cos(c_a, s_k), memory k ≥ a\n" + head, bu_path,
    )  # fmt: skip
    return {
        "files": [td_path, bu_path],
        "sample": index,
        "td": gaps.td,
        "bu": gaps.bu,
        "score": score,
        "td_gaps": list(gaps.td_gaps),
        "bu_gaps": list(gaps.bu_gaps),
    }
