"""SRS arrangements, per-position scores and the Position Bias Index, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from vbert.finesse.metrics.srs import (
    arrangements,
    crafted_index,
    native_texts,
    position_bias_index,
    position_scores,
)


def test_arrangements_cover_every_p_and_insertion_position():
    keys = arrangements(5)
    # p = 2: positions 0..3; p = 3: 0..2; p = 4: 0..1
    assert keys.tolist() == [[2, 0], [2, 1], [2, 2], [2, 3], [3, 0], [3, 1], [3, 2], [4, 0], [4, 1]]


def test_crafted_sequences_insert_the_probe_forward_and_reversed():
    length, groups = 5, 2
    index = crafted_index(length, groups)
    keys = arrangements(length)
    assert index.shape == (len(keys) * 2 * groups, length)
    # probe chunks are 0..3; group 0 context = 4..6, group 1 context = 7..9
    row = lambda k, reverse, g: index[(k * 2 + reverse) * groups + g].tolist()  # noqa: E731
    assert row(0, 0, 0) == [0, 1, 4, 5, 6]  # p = 2 at pos 0, forward, group 0 cut to L − p = 3
    assert row(0, 1, 0) == [1, 0, 4, 5, 6]
    assert row(3, 0, 1) == [7, 8, 9, 0, 1]  # p = 2 at pos 3, group 1
    assert row(4, 1, 0) == [2, 1, 0, 4, 5]  # p = 3 at pos 0, reversed, group cut to 2
    assert row(8, 0, 1) == [7, 0, 1, 2, 3]  # p = 4 at pos 1
    for r in index:
        assert len(set(r.tolist())) == length


def test_native_texts_join_with_one_space():
    texts = ["a", "b", "c", "x", "y", "z", "u"]  # L = 4, probes a b c, groups (x y) and (z u)
    probe_texts, crafted = native_texts(texts, 4, 2)
    assert probe_texts == ["a b", "a b c"]
    assert crafted[:4] == ["a b x y", "a b z u", "b a x y", "b a z u"]


def test_position_scores_q1q3_and_q2q2():
    pos = np.array([[0.9, 0.8, 0.7, 0.6]])  # Q1 = 0.675, median 0.75
    neg = np.array([[0.5, 0.6, 0.7, 0.8]])  # Q3 = 0.725, median 0.65
    assert position_scores(pos, neg, "q1q3")[0] == pytest.approx((0.675 - 0.725) * 1000)
    assert position_scores(pos, neg, "q2q2")[0] == pytest.approx((0.75 - 0.65) * 1000)


def test_position_bias_index_by_hand():
    scores = {
        4: [{"2": [1.0, 3.0, 5.0], "3": [100.0, -100.0]}, {"2": [3.0, 3.0, 3.0], "3": [0.0, 0.0]}],
        6: [{"2": [0.0, 2.0, 0.0, 2.0, 0.0], "3": [1.0, 1.0, 1.0, 1.0], "4": [50.0, 0.0, 0.0]}],
    }
    # L = 4: p ≤ 2 → p = 2 pooled (1, 3, 5, 3, 3, 3): population std = sqrt(8/6)
    # L = 6: p ≤ 3 → p = 2 (0, 2, 0, 2, 0): std = sqrt(0.96); p = 3: std 0.  p = 4 is excluded.
    expected = (np.sqrt(8 / 6) + np.sqrt(0.96) + 0.0) / 3
    assert position_bias_index(scores) == pytest.approx(expected)
    assert position_bias_index({3: [{}]}) == 0.0
