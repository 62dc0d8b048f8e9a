"""Top-Down, Bottom-Up and the per-sample score: hand-worked cases, ties, a brute-force oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vbert.finesse.metrics.rss import bottom_up, gaps_from_matrix, sample_score, top_down

# Chunks = the standard basis, so cos(s_i, c_j) is simply s_i[j] for unit s_i.
L3_CHUNKS = np.eye(3)
L3_SYNTHS = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.48, 0.6, 0.64]])


def test_l3_q1q3_by_hand():
    # TD row 1: memory {0.6, 0.8} → Q1 = 0.6 + 0.25·0.2 = 0.65; noise {0} → Q3 = 0.
    assert top_down(L3_CHUNKS, L3_SYNTHS) == pytest.approx(0.65, abs=1e-12)
    # BU anchor 1: memory {cos(c1,s1), cos(c1,s2)} = {0.8, 0.6} → 0.65; noise {cos(c1,s0)} = {0} → 0.65
    # BU anchor 2: memory {0.64}, noise {0, 0} → 0.64.  BU = 0.645.
    assert bottom_up(L3_CHUNKS, L3_SYNTHS) == pytest.approx(0.645, abs=1e-12)


def test_l3_q2q2_by_hand():
    assert top_down(L3_CHUNKS, L3_SYNTHS, "q2q2") == pytest.approx(0.7, abs=1e-12)
    assert bottom_up(L3_CHUNKS, L3_SYNTHS, "q2q2") == pytest.approx((0.7 + 0.64) / 2, abs=1e-12)


def test_both_score_versions_by_hand():
    assert sample_score(0.65, 0.645, "balanced") == pytest.approx(((0.65 + 0.645) / 2 - 0.005) * 500)
    assert sample_score(0.65, 0.645, "balanced") == pytest.approx(321.25)
    assert sample_score(0.65, 0.645, "sum") == pytest.approx(647.5)
    assert sample_score(0.7, 0.67, "balanced") == pytest.approx(327.5)
    assert sample_score(0.7, 0.67, "sum") == pytest.approx(685.0)
    # The balanced version punishes imbalance; sum does not.
    assert sample_score(0.1, -0.1, "sum") == pytest.approx(0.0)
    assert sample_score(0.1, -0.1, "balanced") == pytest.approx(-100.0)
    with pytest.raises(ValueError, match="score version"):
        sample_score(0.1, 0.1, "old")


def test_linear_interpolation_of_the_noise_quartile():
    # L = 4, row 1: memory {0.9, 0.7} → Q1 = 0.7 + 0.25·0.2 = 0.75; noise {0.1, 0.3} → Q3 = 0.25.
    sim = np.array(
        [
            [1.0, 0.2, 0.2, 0.2],
            [0.9, 0.7, 0.1, 0.3],
            [0.8, 0.8, 0.8, 0.0],
            [0.5, 0.5, 0.5, 0.5],
        ]
    )
    gaps = gaps_from_matrix(sim, "q1q3")
    assert gaps.td_rows == (1, 2)
    assert gaps.td_gaps[0] == pytest.approx(0.75 - 0.25)
    assert gaps.td_gaps[1] == pytest.approx(0.8 - 0.0)
    # BU anchor 3 (last, kept): memory {sim[3,3]} = 0.5, noise {0.2, 0.3, 0.0} → Q3 = 0.25.
    assert gaps.bu_anchors == (1, 2, 3)
    assert gaps.bu_gaps[2] == pytest.approx(0.5 - 0.25)


def test_ties_give_zero_gaps_and_tied_quartiles_are_exact():
    same = np.tile(np.array([[0.3, -0.2, 0.9]]), (5, 1))
    assert top_down(same, same) == 0.0
    assert bottom_up(same, same) == 0.0
    assert sample_score(0.0, 0.0) == 0.0
    sim = np.full((5, 5), 0.5)
    sim[3, :4] = [0.5, 0.5, 0.5, 0.9]  # memory of row 3: Q1 of (0.5, 0.5, 0.5, 0.9) = 0.5
    sim[3, 4] = 0.2
    assert gaps_from_matrix(sim).td_gaps[2] == pytest.approx(0.3)


def test_cosines_ignore_vector_norms_and_accept_torch_tensors():
    rng = np.random.default_rng(0)
    chunks, synths = rng.standard_normal((6, 8)), rng.standard_normal((6, 8))
    expected = (top_down(chunks, synths), bottom_up(chunks, synths))
    scaled = (top_down(chunks * 3.0, synths * 0.1), bottom_up(chunks * 3.0, synths * 0.1))
    assert scaled == pytest.approx(expected, abs=1e-12)
    as_torch = (
        top_down(torch.tensor(chunks, dtype=torch.float32), torch.tensor(synths, dtype=torch.float32)),
        bottom_up(torch.tensor(chunks, dtype=torch.float32), torch.tensor(synths, dtype=torch.float32)),
    )
    assert as_torch == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("chunks", "synths", "message"),
    [
        (np.ones((2, 4)), np.ones((2, 4)), "at least 3 chunks"),
        (np.ones((4, 4)), np.ones((3, 4)), "same shape"),
        (np.ones(4), np.ones(4), "2-D"),
        (np.vstack([np.zeros(4), np.ones((3, 4))]), np.ones((4, 4)), "all-zero"),
        (np.full((3, 4), np.nan), np.ones((3, 4)), "NaN"),
    ],
)
def test_bad_inputs_are_named(chunks, synths, message):
    with pytest.raises(ValueError, match=message):
        top_down(chunks, synths)


def test_unknown_formula_is_refused():
    with pytest.raises(ValueError, match="formula"):
        top_down(L3_CHUNKS, L3_SYNTHS, "q1q1")


# --- an independent brute-force oracle: plain Python loops, own quantile (Hyndman–Fan type 7) ---


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _cos(a, b) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _brute(chunks, synths, formula):
    n = len(chunks)
    lo, hi = (0.25, 0.75) if formula == "q1q3" else (0.5, 0.5)
    td_gaps = []
    for i in range(1, n - 1):
        memory = [_cos(synths[i], chunks[j]) for j in range(n) if j <= i]
        noise = [_cos(synths[i], chunks[j]) for j in range(n) if j > i]
        td_gaps.append(_quantile(memory, lo) - _quantile(noise, hi))
    bu_gaps = []
    for a in range(1, n):
        memory = [_cos(chunks[a], synths[k]) for k in range(n) if k >= a]
        noise = [_cos(chunks[a], synths[k]) for k in range(n) if k < a]
        bu_gaps.append(_quantile(memory, lo) - _quantile(noise, hi))
    return sum(td_gaps) / len(td_gaps), sum(bu_gaps) / len(bu_gaps)


@pytest.mark.parametrize("formula", ["q1q3", "q2q2"])
def test_matches_brute_force_on_random_inputs(formula):
    rng = np.random.default_rng(1234)
    for _ in range(40):
        n = int(rng.integers(3, 14))
        dim = int(rng.integers(2, 10))
        chunks = rng.standard_normal((n, dim))
        # Cumulative means make realistic syntheses; noise keeps them from being exact means.
        synths = np.cumsum(chunks, axis=0) + 0.3 * rng.standard_normal((n, dim))
        td, bu = _brute(chunks.tolist(), synths.tolist(), formula)
        assert top_down(chunks, synths, formula) == pytest.approx(td, abs=1e-12)
        assert bottom_up(chunks, synths, formula) == pytest.approx(bu, abs=1e-12)


def test_golden_seven_chunk_example_from_the_reference_notes():
    # The reference's 7-chunk heat-map (TD row gaps 0.124 … 0.044 → TD 0.0795; BU anchor gaps
    # 0.019 … 0.063 → BU 0.0464; old score 14.9, new score 63.0). The matrix itself is only
    # published as a picture, so we rebuild a realistic one with exactly these gaps.
    td_gaps = [0.124, 0.104, 0.068, 0.058, 0.044]
    bu_gaps = [0.019, 0.033, 0.034, 0.070, 0.061, 0.063]
    sim = _matrix_with_gaps(td_gaps, bu_gaps)
    assert sim.min() > 0.6 and sim.max() < 1.0
    gaps = gaps_from_matrix(sim)
    assert gaps.td_gaps == pytest.approx(td_gaps, abs=1e-12)
    assert gaps.bu_gaps == pytest.approx(bu_gaps, abs=1e-12)
    assert gaps.td == pytest.approx(0.0796, abs=1e-4)
    assert gaps.bu == pytest.approx(0.0467, abs=1e-4)
    # With the published (unrounded-gap) TD and BU, both score versions reproduce the notes.
    assert sample_score(0.0795, 0.0464, "balanced") == pytest.approx(14.9, abs=0.05)
    assert sample_score(0.0795, 0.0464, "sum") == pytest.approx(63.0, abs=0.05)


def _matrix_with_gaps(td_gaps: list[float], bu_gaps: list[float]) -> np.ndarray:
    """A realistic 7×7 similarity matrix (cosines ≈ 0.8) whose q1q3 gaps are exactly the given ones.

    Quantiles are piecewise linear in the cells, so Newton steps with a finite-difference
    Jacobian (minimum-norm least squares, 11 equations, 49 cells) converge in a few steps.
    """
    target = np.array(td_gaps + bu_gaps)

    def residual(cells: np.ndarray) -> np.ndarray:
        gaps = gaps_from_matrix(cells.reshape(7, 7))
        return np.array(gaps.td_gaps + gaps.bu_gaps) - target

    cells = (0.8 + 0.05 * np.random.default_rng(7).random((7, 7))).ravel()
    for _ in range(50):
        r = residual(cells)
        if np.abs(r).max() < 1e-13:
            return cells.reshape(7, 7)
        eps = 1e-6
        jacobian = np.stack([(residual(cells + eps * e) - r) / eps for e in np.eye(cells.size)], axis=1)
        cells = cells + np.linalg.lstsq(jacobian, -r, rcond=None)[0]
    raise AssertionError("could not build the golden matrix")
