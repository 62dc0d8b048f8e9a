"""Paired statistics over queries grouped in clusters (the queries of one document are not independent).

Every method is scored on the same queries, so differences are paired: each bootstrap resample
draws clusters (documents) with replacement, and every method's mean is taken over that same
resample. Intervals are 95% percentile intervals.
"""

from __future__ import annotations

import numpy as np


def cluster_resample_means(
    values: np.ndarray, clusters: np.ndarray, resamples: int = 2000, seed: int = 0
) -> np.ndarray:
    """Bootstrap means of ``values`` (m methods, q queries), resampling whole clusters.

    Returns (resamples, m): row r holds each method's mean over resample r; the same clusters are
    drawn for every method, so differences between columns are paired.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be (methods, queries), got shape {values.shape}")
    clusters = np.asarray(clusters)
    if clusters.shape != (values.shape[1],):
        raise ValueError(f"need one cluster id per query: {clusters.shape} vs {values.shape[1]} queries")
    _, cluster_index = np.unique(clusters, return_inverse=True)
    n_clusters = int(cluster_index.max()) + 1 if cluster_index.size else 0
    if n_clusters < 2:
        raise ValueError(f"a cluster bootstrap needs at least 2 clusters, got {n_clusters}")
    sums = np.zeros((values.shape[0], n_clusters))
    np.add.at(sums.T, cluster_index, values.T)  # (m, n_clusters): per-cluster sums
    sizes = np.bincount(cluster_index, minlength=n_clusters).astype(np.float64)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=resamples)
    return (counts @ sums.T) / (counts @ sizes)[:, None]


def interval(samples: np.ndarray, point: float, level: float = 0.95) -> dict[str, float | None]:
    """Point estimate with the percentile interval of its bootstrap ``samples`` (NaNs ignored).

    Undefined values (no finite sample, or an undefined point) come out as None: JSON has no NaN.
    """
    tail = (1 - level) / 2
    finite = samples[np.isfinite(samples)]
    low, high = np.quantile(finite, [tail, 1 - tail]) if finite.size else (np.nan, np.nan)
    values = {"mean": point, "ci_low": low, "ci_high": high, "half_width": (high - low) / 2}
    return {k: float(v) if np.isfinite(v) else None for k, v in values.items()}


def paired_report(
    per_query: dict[str, np.ndarray],
    clusters: np.ndarray,
    baseline: str,
    reference: str | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, dict]:
    """Per method: its mean, Δ vs ``baseline`` and, with ``reference``, the share of the gap recovered.

    The gap share is (method − baseline) / (reference − baseline), computed on each resample's
    means (a ratio of means, not a mean of ratios); it is undefined (None) when the reference does
    not beat the baseline.
    """
    names = list(per_query)
    for required in (baseline, reference):
        if required is not None and required not in per_query:
            raise ValueError(f"{required!r} is not among the scored methods {names}")
    matrix = np.stack([np.asarray(per_query[n], dtype=np.float64) for n in names])
    boot = cluster_resample_means(matrix, clusters, resamples, seed)
    point = matrix.mean(axis=1)
    b = names.index(baseline)
    report: dict[str, dict] = {}
    for i, name in enumerate(names):
        entry = {"score": interval(boot[:, i], point[i])}
        if i != b:
            entry["delta_vs_" + baseline] = interval(boot[:, i] - boot[:, b], point[i] - point[b])
        if reference is not None and name not in (baseline, reference):
            r = names.index(reference)
            with np.errstate(divide="ignore", invalid="ignore"):
                gap = boot[:, r] - boot[:, b]
                share = np.where(gap > 0, (boot[:, i] - boot[:, b]) / gap, np.nan)
                full_gap = point[r] - point[b]
                share_point = (point[i] - point[b]) / full_gap if full_gap > 0 else np.nan
            entry["gap_recovered"] = interval(share, share_point)
        report[name] = entry
    return report
