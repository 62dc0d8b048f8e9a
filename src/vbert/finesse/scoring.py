"""Robust Separation Score (RSS): Top-Down, Bottom-Up and the per-sample FINESSE score.

For one sample of L ≥ 3 chunks with chunk vectors c_0..c_{L-1} and cumulative syntheses
s_0..s_{L-1} (s_i merges c_0..c_i), let T[i, j] = cos(s_i, c_j).

* **Top-Down** asks every synthesis whether it remembers the chunks it was built from.
  For rows i = 1..L-2 (first and last synthesis skipped), memory X_i = {T[i, j] : j ≤ i},
  noise Y_i = {T[i, j] : j > i}; the row gap is Q0.25(X_i) − Q0.75(Y_i) (``q1q3``) or
  median(X_i) − median(Y_i) (``q2q2``). TD is the mean of the row gaps.
* **Bottom-Up** asks every chunk whether it recognises the syntheses that contain it.
  For anchors a = 1..L-1 (only the first is skipped), memory = {T[k, a] : k ≥ a}, noise =
  {T[k, a] : k < a}; same gap rule; BU is the mean over anchors.
* **Score** per sample, two named versions: ``balanced`` (the published FINESSE formula)
  = ((TD + BU)/2 − |TD − BU|) × 500 and ``sum`` (the reference's later formula)
  = (TD + BU) × 500.

Quantiles interpolate linearly (numpy's default); cosines are computed in float64. There
is no normalisation: gaps are raw cosine differences in [−2, 2].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Formula = Literal["q1q3", "q2q2"]
ScoreVersion = Literal["balanced", "sum"]
FORMULAS: tuple[str, ...] = ("q1q3", "q2q2")
SCORE_VERSIONS: tuple[str, ...] = ("balanced", "sum")
SCORE_SCALE = 500.0

METADATA: dict[str, Any] = {
    "name": "rss",
    "title": "Robust Separation Score (Top-Down / Bottom-Up)",
    "description": (
        "Does a cumulative synthesis stay closer to the chunks it was built from than to the chunks "
        "that follow (Top-Down), and does each chunk stay closer to the syntheses containing it than "
        "to those before it (Bottom-Up)?"
    ),
    "main_score": "mean per-sample score over all evaluated lengths",
    "formulas": FORMULAS,
    "score_versions": SCORE_VERSIONS,
    "score_scale": SCORE_SCALE,
}


def to_numpy(x: Any, name: str = "array") -> np.ndarray:
    """Return ``x`` (numpy array, torch tensor or nested list) as a float64 numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor; avoids importing torch here
        x = x.detach().cpu().float().numpy()
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf values; check the embedder and merger outputs")
    return arr


def unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    """L2-normalise the rows of a float64 matrix, refusing zero vectors (their cosine is undefined)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name} contains an all-zero vector: its cosine similarity is undefined")
    return x / norms


def similarity_matrix(chunks: Any, synths: Any) -> np.ndarray:
    """T[i, j] = cos(s_i, c_j) in float64 for chunks and syntheses of shape (L, d)."""
    c = to_numpy(chunks, "chunks")
    s = to_numpy(synths, "synths")
    if c.ndim != 2 or s.ndim != 2:
        raise ValueError(f"chunks and synths must be 2-D (L, dim) arrays, got shapes {c.shape} and {s.shape}")
    if c.shape != s.shape:
        raise ValueError(
            f"chunks {c.shape} and synths {s.shape} must have the same shape: one synthesis per prefix"
        )
    if c.shape[0] < 3:
        raise ValueError(f"a sample needs at least 3 chunks for Top-Down and Bottom-Up, got {c.shape[0]}")
    return unit_rows(s, "synths") @ unit_rows(c, "chunks").T


def quartile_gap(memory: np.ndarray, noise: np.ndarray, formula: str) -> float:
    """Q0.25(memory) − Q0.75(noise) for ``q1q3``; median − median for ``q2q2``."""
    if formula == "q1q3":
        return float(np.quantile(memory, 0.25) - np.quantile(noise, 0.75))
    if formula == "q2q2":
        return float(np.median(memory) - np.median(noise))
    raise ValueError(f"unknown formula {formula!r}; use one of {FORMULAS}")


@dataclass(frozen=True)
class Gaps:
    """Per-row Top-Down gaps (rows 1..L-2) and per-anchor Bottom-Up gaps (anchors 1..L-1)."""

    td_rows: tuple[int, ...]
    td_gaps: tuple[float, ...]
    bu_anchors: tuple[int, ...]
    bu_gaps: tuple[float, ...]

    @property
    def td(self) -> float:
        return float(np.mean(self.td_gaps)) if self.td_gaps else 0.0

    @property
    def bu(self) -> float:
        return float(np.mean(self.bu_gaps)) if self.bu_gaps else 0.0


def gaps_from_matrix(sim: np.ndarray, formula: str = "q1q3") -> Gaps:
    """All Top-Down and Bottom-Up gaps of a similarity matrix T[i, j] = cos(s_i, c_j)."""
    n = sim.shape[0]
    td_rows = tuple(range(1, n - 1))
    td_gaps = tuple(quartile_gap(sim[i, : i + 1], sim[i, i + 1 :], formula) for i in td_rows)
    bu_anchors = tuple(range(1, n))
    bu_gaps = tuple(quartile_gap(sim[a:, a], sim[:a, a], formula) for a in bu_anchors)
    return Gaps(td_rows, td_gaps, bu_anchors, bu_gaps)


def sample_gaps(chunks: Any, synths: Any, formula: str = "q1q3") -> Gaps:
    """Top-Down and Bottom-Up gaps of one sample (chunks and synths of shape (L, d))."""
    if formula not in FORMULAS:
        raise ValueError(f"unknown formula {formula!r}; use one of {FORMULAS}")
    return gaps_from_matrix(similarity_matrix(chunks, synths), formula)


def top_down(chunks: Any, synths: Any, formula: str = "q1q3") -> float:
    """Top-Down score: mean over rows i = 1..L-2 of the memory/noise gap of synthesis s_i.

    Args:
        chunks: (L, d) chunk vectors c_j (numpy array or torch tensor), L ≥ 3.
        synths: (L, d) cumulative syntheses s_i = merge(c_0..c_i).
        formula: ``"q1q3"`` (Q0.25(memory) − Q0.75(noise)) or ``"q2q2"`` (median − median).
    """
    return sample_gaps(chunks, synths, formula).td


def bottom_up(chunks: Any, synths: Any, formula: str = "q1q3") -> float:
    """Bottom-Up score: mean over anchors a = 1..L-1 of the gap between {cos(c_a, s_k): k ≥ a}
    (memory) and {cos(c_a, s_k): k < a} (noise). Arguments as :func:`top_down`."""
    return sample_gaps(chunks, synths, formula).bu


def sample_score(td: float, bu: float, version: str = "balanced") -> float:
    """Per-sample score: ``balanced`` = ((TD+BU)/2 − |TD−BU|) × 500, ``sum`` = (TD+BU) × 500."""
    if version == "balanced":
        return ((td + bu) / 2.0 - abs(td - bu)) * SCORE_SCALE
    if version == "sum":
        return (td + bu) * SCORE_SCALE
    raise ValueError(f"unknown score version {version!r}; use one of {SCORE_VERSIONS}")
