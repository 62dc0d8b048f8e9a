"""Batches: right padding, length buckets or random batches, the resumable plan and its loader."""

from __future__ import annotations

import numpy as np
import pytest

from vbert.train.batches import BatchPlan, batch_loader, bucketed_batches, pad_batch, random_batches
from vbert.train.synthetic import synthetic_dataset


def test_pad_batch_right_pads_and_truncates():
    rows = [np.ones((3, 2), np.float32), 2 * np.ones((5, 2), np.float32)]
    batch = pad_batch([{"inputs": r, "target": np.zeros(2, np.float32)} for r in rows])
    assert batch["inputs"].shape == (2, 5, 2) and batch["target"].shape == (2, 2)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert (batch["inputs"][0, 3:] == 0).all()
    assert pad_batch([{"inputs": r} for r in rows], max_length=4)["attention_mask"].shape == (2, 4)


def test_bucketed_batches_cover_every_row_once_with_little_padding():
    lengths = np.random.default_rng(0).integers(1, 200, size=1000)
    batches = bucketed_batches(lengths, batch_size=16, seed=0, epoch=0, bucket_batches=8)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert sum(len(b) == 16 for b in batches) >= len(batches) - 8
    padding = sum(lengths[b].max() * len(b) - lengths[b].sum() for b in batches)
    random_padding = sum(
        lengths[b].max() * len(b) - lengths[b].sum() for b in np.array_split(np.arange(1000), len(batches))
    )
    assert padding < 0.2 * random_padding
    assert [b.tolist() for b in batches] == [b.tolist() for b in bucketed_batches(lengths, 16, 0, 0, 8)]
    assert [b.tolist() for b in batches] != [b.tolist() for b in bucketed_batches(lengths, 16, 0, 1, 8)]


def test_batch_plan_positions_epochs_and_ranks():
    lengths = np.random.default_rng(0).integers(1, 50, size=100)
    plan = BatchPlan(lengths, batch_size=8, seed=1)
    assert plan.batches_per_epoch == 13
    epoch0 = bucketed_batches(lengths, 8, 1, 0)
    epoch1 = bucketed_batches(lengths, 8, 1, 1)
    assert plan.indices(0).tolist() == epoch0[0].tolist()
    assert plan.indices(14).tolist() == epoch1[1].tolist() and plan.epoch_of(14) == 1

    ranks = [BatchPlan(lengths, 8, seed=1, rank=r, world_size=2) for r in range(2)]
    assert ranks[0].batches_per_epoch == ranks[1].batches_per_epoch == 6
    seen = [set(np.concatenate([p.indices(i) for i in range(6)]).tolist()) for p in ranks]
    assert not seen[0] & seen[1]
    with pytest.raises(ValueError, match="fewer than the 2 processes"):
        BatchPlan(lengths[:5], 8, seed=0, world_size=2)


def test_batch_loader_resumes_at_any_position():
    dataset = synthetic_dataset("synthetic:articles?n=40&dim=4&min_len=1&max_len=9")
    plan = BatchPlan(dataset.lengths, 6, seed=2)
    whole = [b["inputs"] for b in batch_loader(dataset, plan, 0, 12)]
    tail = [b["inputs"] for b in batch_loader(dataset, plan, 5, 12)]
    assert len(whole) == 12 and all(np.array_equal(a, b) for a, b in zip(whole[5:], tail, strict=True))


def test_random_batches_cover_every_row_once_per_epoch_and_mix_lengths():
    lengths = np.concatenate([np.full(100, 2), np.full(100, 300)])  # two very different length groups
    epochs = [random_batches(lengths, 32, seed=4, epoch=e) for e in range(3)]
    for batches in epochs:
        assert sorted(np.concatenate(batches).tolist()) == list(range(200))
        assert [len(b) for b in batches] == [32] * 6 + [8]
        assert all(set(lengths[b]) == {2, 300} for b in batches[:6])
    assert [b.tolist() for b in epochs[0]] == [b.tolist() for b in random_batches(lengths, 32, 4, 0)]
    assert [b.tolist() for b in epochs[0]] != [b.tolist() for b in epochs[1]]
    assert [b.tolist() for b in epochs[0]] != [b.tolist() for b in random_batches(lengths, 32, 5, 0)]
    # the default puts the two groups in separate batches (only the batch across the boundary mixes them)
    bucketed = bucketed_batches(lengths, 32, seed=4, epoch=0)
    assert sum(set(lengths[b]) == {2, 300} for b in bucketed) <= 1
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        random_batches(lengths, 0, 4, 0)


def test_batch_plan_with_random_batching_keeps_positions_and_ranks():
    lengths = np.random.default_rng(0).integers(1, 50, size=100)
    plan = BatchPlan(lengths, 8, seed=1, batching="random")
    assert plan.batches_per_epoch == 13
    assert plan.indices(14).tolist() == random_batches(lengths, 8, 1, 1)[1].tolist()
    ranks = [BatchPlan(lengths, 8, seed=1, rank=r, world_size=2, batching="random") for r in range(2)]
    seen = [set(np.concatenate([p.indices(i) for i in range(6)]).tolist()) for p in ranks]
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 96
    with pytest.raises(ValueError, match="unknown batching 'sorted'"):
        BatchPlan(lengths, 8, seed=1, batching="sorted")

    dataset = synthetic_dataset("synthetic:articles?n=40&dim=4&min_len=1&max_len=9")
    plan = BatchPlan(dataset.lengths, 6, seed=2, batching="random")
    whole = [b["inputs"] for b in batch_loader(dataset, plan, 0, 12)]
    tail = [b["inputs"] for b in batch_loader(dataset, plan, 5, 12)]
    assert all(np.array_equal(a, b) for a, b in zip(whole[5:], tail, strict=True))
