"""Ranking metrics with bootstrap confidence intervals (one relevant document per query)."""

from __future__ import annotations

import numpy as np


def ranks_of_targets(queries: np.ndarray, documents: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based rank of each query's target document by cosine (inputs are unit vectors).

    Ties count against the target (a tie with another document ranks it below), so a method
    that gives every document the same vector cannot score by luck.
    """
    scores = queries @ documents.T
    target_scores = scores[np.arange(len(targets)), targets]
    return (scores >= target_scores[:, None]).sum(axis=1)


def recall_at(ranks: np.ndarray, k: int) -> np.ndarray:
    return (ranks <= k).astype(np.float64)


def ndcg_at(ranks: np.ndarray, k: int = 10) -> np.ndarray:
    """nDCG@k with a single relevant document: 1 / log2(rank + 1) within the top k, else 0."""
    return np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)


def bootstrap_ci(
    values: np.ndarray, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its percentile-bootstrap confidence interval."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1 - level) / 2
    return float(values.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def paired_bootstrap_ci(
    a: np.ndarray, b: np.ndarray, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean difference a − b over the same queries, with its paired bootstrap interval."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same shape, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, resamples, level, seed)
