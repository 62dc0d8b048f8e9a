"""Validation metrics: distillation cosine and the quick Finesse score, next to mean pooling."""

from __future__ import annotations

import numpy as np
import pytest

from vbert.finesse.metrics.rss import bottom_up, sample_score, top_down
from vbert.mergers import MeanPoolMerger, TruncationBaseline
from vbert.train.data import PairDataset
from vbert.train.evaluation import Validator, distillation_cosine, probe_samples, quick_finesse
from vbert.train.recipe import ValidationOptions


def test_distillation_cosine_is_the_mean_cosine():
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((n, 6)).astype(np.float32) for n in (2, 5, 3)]
    targets = rng.standard_normal((3, 6)).astype(np.float32)
    pairs = PairDataset.from_arrays(inputs, targets)
    expected = np.mean(
        [
            np.dot(x.mean(0) / np.linalg.norm(x.mean(0)), t / np.linalg.norm(t))
            for x, t in zip(inputs, targets, strict=True)
        ]
    )
    assert distillation_cosine(MeanPoolMerger(), pairs, batch_size=2) == pytest.approx(expected, rel=1e-5)


def test_quick_finesse_matches_the_scoring_module():
    rng = np.random.default_rng(1)
    pool = rng.standard_normal((12, 8)).astype(np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    draws = probe_samples(len(pool), (4, 6), samples=3, seed=0)
    assert all(len(set(d.tolist())) == len(d) for ds in draws.values() for d in ds)
    scores = quick_finesse(MeanPoolMerger(), pool, draws)
    expected = []
    for indices in draws[4]:
        chunks = pool[indices]
        synths = np.stack([MeanPoolMerger().merge(chunks[: i + 1]) for i in range(4)])
        expected.append(sample_score(top_down(chunks, synths), bottom_up(chunks, synths)))
    assert scores["L4"] == pytest.approx(np.mean(expected), rel=1e-5)
    assert set(scores) == {"L4", "L6", "overall"}
    assert quick_finesse(TruncationBaseline(), pool, draws)["overall"] != scores["overall"]
    with pytest.raises(ValueError, match="add probe articles"):
        probe_samples(5, (4, 8), samples=2, seed=0)


def test_validator_reports_the_mean_pool_baseline_beside_the_model():
    options = ValidationOptions(
        pairs="synthetic:pairs?n=40&dim=8&seed=5",
        probes="synthetic:articles?n=20&dim=8&seed=6",
        max_pairs=16,
        probe_lengths=(4,),
        probe_samples=2,
    )
    validator = Validator.from_options(options)
    assert len(validator.pairs) == 16 and validator.dim == 8
    metrics = validator.evaluate(MeanPoolMerger())
    assert metrics["distill_cos"] == pytest.approx(metrics["distill_cos_mean_pool"])
    assert metrics["finesse_overall"] == pytest.approx(metrics["finesse_overall_mean_pool"])
    assert validator.evaluate(TruncationBaseline())["distill_cos"] < metrics["distill_cos_mean_pool"]
