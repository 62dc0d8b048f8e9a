"""Validation during training: distillation cosine and a quick Finesse score, next to mean pooling.

Both use the :class:`vbert.mergers.Merger` interface (numpy in, unit vectors out), so the
trained merger and the mean-pool baseline are scored by the same code on the same data;
the baseline values are computed once.

* **Distillation cosine**: mean ``cos(merge(inputs), target)`` over held-out n-to-1 pairs.
* **Quick Finesse**: the pool is the first chunk vector of every held-out probe article;
  for each length L, ``probe_samples`` samples draw L vectors of distinct articles (a fixed
  draw per (seed, L)); the cumulative syntheses ``s_i = merge(c_0..c_i)`` are scored with
  :mod:`vbert.finesse.metrics.rss` (Top-Down, Bottom-Up, per-sample score, in base chunk space).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vbert.errors import ConfigError
from vbert.finesse.metrics.rss import sample_gaps, sample_score
from vbert.mergers import MeanPoolMerger, Merger

from .batches import pad_batch
from .data import PairDataset, TrainingDataset, open_dataset
from .recipe import ValidationOptions


def distillation_cosine(merger: Merger, pairs: TrainingDataset, batch_size: int = 64) -> float:
    """Mean cosine between the merger's unit output and the (normalised) teacher target."""
    total = 0.0
    for start in range(0, len(pairs), batch_size):
        items = [pairs[i] for i in range(start, min(start + batch_size, len(pairs)))]
        batch = pad_batch(items)
        merged = merger.merge_batch(batch["inputs"].numpy(), batch["attention_mask"].numpy())
        target = batch["target"].numpy()
        target = target / np.linalg.norm(target, axis=1, keepdims=True)
        total += float((merged * target).sum())
    return total / len(pairs)


def probe_pool(probes: TrainingDataset) -> np.ndarray:
    """The first chunk vector of every probe article: (n_articles, d)."""
    return np.stack([probes[i]["inputs"][0] for i in range(len(probes))])


def probe_samples(
    pool_size: int, lengths: tuple[int, ...], samples: int, seed: int
) -> dict[int, list[np.ndarray]]:
    """For each length L, ``samples`` draws of L distinct pool indices (fixed by seed and L)."""
    if pool_size < max(lengths):
        raise ConfigError(
            f"the probe set has {pool_size} articles but probe_lengths go up to {max(lengths)}: each chunk of a "
            "sample comes from a different article; add probe articles or lower probe_lengths"
        )
    draws = {}
    for length in lengths:
        rng = np.random.default_rng([seed, length])
        draws[length] = [rng.choice(pool_size, size=length, replace=False) for _ in range(samples)]
    return draws


def quick_finesse(
    merger: Merger,
    pool: np.ndarray,
    draws: dict[int, list[np.ndarray]],
    formula: str = "q1q3",
    version: str = "balanced",
) -> dict[str, float]:
    """Mean per-sample Finesse score per length (``L4``, ...) and over all samples (``overall``)."""
    scores: dict[str, float] = {}
    every: list[float] = []
    for length, samples in draws.items():
        per_length = []
        for indices in samples:
            chunks = pool[indices]
            prefixes = np.broadcast_to(chunks, (length, length, chunks.shape[1]))
            synths = merger.merge_batch(
                np.ascontiguousarray(prefixes), np.tril(np.ones((length, length), np.int64))
            )
            gaps = sample_gaps(chunks, synths, formula)
            per_length.append(sample_score(gaps.td, gaps.bu, version))
        scores[f"L{length}"] = float(np.mean(per_length))
        every.extend(per_length)
    scores["overall"] = float(np.mean(every))
    return scores


@dataclass
class Validator:
    """Held-out data and the mean-pool baseline's scores on it, computed once."""

    options: ValidationOptions
    pairs: TrainingDataset | None = None
    pool: np.ndarray | None = None
    draws: dict[int, list[np.ndarray]] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: ValidationOptions) -> Validator:
        validator = cls(options)
        mean_pool = MeanPoolMerger()
        if options.pairs is not None:
            pairs = open_dataset(options.pairs, "pairs", options.split)
            if len(pairs) > options.max_pairs:
                keep = np.sort(
                    np.random.default_rng(options.seed).choice(len(pairs), options.max_pairs, replace=False)
                )
                items = [pairs[int(i)] for i in keep]
                subset = PairDataset.from_arrays(
                    [item["inputs"] for item in items],
                    np.stack([item["target"] for item in items]),
                    pairs.source,
                )
                subset.fingerprint = f"{pairs.fingerprint}-{options.max_pairs}of{len(pairs)}"
                pairs = subset
            validator.pairs = pairs
            validator.fingerprints["validation_pairs"] = pairs.fingerprint
            validator.baseline["distill_cos"] = distillation_cosine(mean_pool, pairs, options.batch_size)
        if options.probes is not None:
            probes = open_dataset(options.probes, "sequences", options.split)
            validator.pool = probe_pool(probes)
            validator.draws = probe_samples(
                len(validator.pool), options.probe_lengths, options.probe_samples, options.seed
            )
            validator.fingerprints["validation_probes"] = probes.fingerprint
            for key, value in validator._finesse(mean_pool).items():
                validator.baseline[f"finesse_{key}"] = value
        return validator

    @property
    def dim(self) -> int:
        return self.pairs.dim if self.pairs is not None else self.pool.shape[1]

    def _finesse(self, merger: Merger) -> dict[str, float]:
        return quick_finesse(merger, self.pool, self.draws, self.options.formula, self.options.score_version)

    def evaluate(self, merger: Merger) -> dict[str, float]:
        """The merger's scores, with the mean-pool baseline's under ``<name>_mean_pool``."""
        metrics: dict[str, float] = {}
        if self.pairs is not None:
            metrics["distill_cos"] = distillation_cosine(merger, self.pairs, self.options.batch_size)
        if self.pool is not None:
            metrics.update({f"finesse_{key}": value for key, value in self._finesse(merger).items()})
        metrics.update({f"{key}_mean_pool": value for key, value in self.baseline.items()})
        return metrics
