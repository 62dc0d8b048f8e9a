"""Batches of training data: right-padded tensors, in length buckets or at random, in a resumable order.

:class:`BatchPlan` groups rows of similar length (bucketing), or draws them at random, in an
order that is a pure function of (seed, epoch), so a run can resume mid-epoch from a single
integer position; :func:`batch_loader` turns a stretch of that plan into a DataLoader.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch

from vbert.errors import ConfigError

from .data import TrainingDataset

Collate = Callable[..., dict[str, torch.Tensor]]
Batching = Literal["length-buckets", "random"]


def truncate_lengths(lengths: np.ndarray, max_length: int | None) -> np.ndarray:
    """Row lengths after cutting every sequence to its first ``max_length`` chunks."""
    return lengths if max_length is None else np.minimum(lengths, max_length)


def pad_batch(
    items: Sequence[dict[str, np.ndarray]], max_length: int | None = None
) -> dict[str, torch.Tensor]:
    """Right-pad rows into ``inputs`` (B, N, d), ``attention_mask`` (B, N) and, for pairs, ``target``.

    ``max_length`` keeps the first chunks of longer sequences (only for sequences: cutting
    a pair's inputs would no longer match its target).
    """
    rows = [item["inputs"] if max_length is None else item["inputs"][:max_length] for item in items]
    n = max(row.shape[0] for row in rows)
    inputs = np.zeros((len(rows), n, rows[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(rows), n), dtype=np.int64)
    for i, row in enumerate(rows):
        inputs[i, : row.shape[0]] = row
        mask[i, : row.shape[0]] = 1
    batch = {"inputs": torch.from_numpy(inputs), "attention_mask": torch.from_numpy(mask)}
    if "target" in items[0]:
        batch["target"] = torch.from_numpy(np.stack([item["target"] for item in items]).astype(np.float32))
    return batch


def bucketed_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, bucket_batches: int = 50
) -> list[np.ndarray]:
    """One epoch's batches of row indices, grouped by length; a pure function of (seed, epoch).

    Rows are shuffled, cut into buckets of ``bucket_batches * batch_size`` rows, each bucket
    sorted by length and cut into batches (little padding), and the batches shuffled (no
    length order across the epoch). The last batch may be smaller.
    """
    _check_batch_size(batch_size)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    bucket = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), bucket):
        rows = order[start : start + bucket]
        rows = rows[np.argsort(-lengths[rows], kind="stable")]
        batches.extend(rows[i : i + batch_size] for i in range(0, len(rows), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def random_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """One epoch's batches of row indices, lengths mixed; a pure function of (seed, epoch).

    A permutation of all rows cut into batches: more padding than :func:`bucketed_batches`, but
    the rows beside a row are any rows, which in-batch negatives need. The last batch may be smaller.
    """
    _check_batch_size(batch_size)
    order = np.random.default_rng([seed, epoch]).permutation(len(lengths))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


EPOCH_BATCHES: dict[str, Callable[[np.ndarray, int, int, int], list[np.ndarray]]] = {
    "length-buckets": bucketed_batches,
    "random": random_batches,
}
"""Each :data:`Batching` name's epoch of batches, as a function of (lengths, batch_size, seed, epoch)."""


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")


class BatchPlan:
    """The endless, deterministic stream of one process's batches, addressed by position.

    Position ``p`` (micro-batches already consumed by this process) maps to epoch
    ``p // batches_per_epoch`` and to batch ``rank + world_size * (p % batches_per_epoch)``
    of that epoch's batches (:data:`EPOCH_BATCHES` of ``batching``); every process gets the same
    number of batches per epoch (the few left over are dropped), so processes never wait on each other.
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        batching: Batching = "length-buckets",
    ) -> None:
        if batching not in EPOCH_BATCHES:
            raise ConfigError(f"unknown batching {batching!r}; choose one of {sorted(EPOCH_BATCHES)}")
        self.epoch_batches = EPOCH_BATCHES[batching]
        self.lengths = lengths
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        total = -(-len(lengths) // batch_size)
        self.batches_per_epoch = total // world_size
        if self.batches_per_epoch == 0:
            raise ConfigError(
                f"{len(lengths)} rows make {total} batches of {batch_size}, fewer than the {world_size} processes: "
                "use a smaller batch_size or more data"
            )
        self._epoch_cache: tuple[int, list[np.ndarray]] | None = None

    def epoch_of(self, position: int) -> int:
        return position // self.batches_per_epoch

    def indices(self, position: int) -> np.ndarray:
        """Row indices of the batch at ``position``."""
        epoch = self.epoch_of(position)
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            self._epoch_cache = (epoch, self.epoch_batches(self.lengths, self.batch_size, self.seed, epoch))
        return self._epoch_cache[1][self.rank + self.world_size * (position % self.batches_per_epoch)]


class _PlannedBatches(torch.utils.data.Sampler[list[int]]):
    def __init__(self, plan: BatchPlan, start: int, stop: int) -> None:
        self.plan, self.start, self.stop = plan, start, stop

    def __iter__(self):
        for position in range(self.start, self.stop):
            yield self.plan.indices(position).tolist()

    def __len__(self) -> int:
        return self.stop - self.start


def batch_loader(
    dataset: TrainingDataset,
    plan: BatchPlan,
    start: int,
    stop: int,
    max_length: int | None = None,
    num_workers: int = 0,
    collate: Collate | None = None,
) -> torch.utils.data.DataLoader:
    """A DataLoader over the planned batches ``start .. stop - 1`` (positions), each made by
    ``collate(items, max_length)`` (:func:`pad_batch` by default)."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=_PlannedBatches(plan, start, stop),
        collate_fn=functools.partial(collate or pad_batch, max_length=max_length),
        num_workers=num_workers,
        generator=torch.Generator(),  # worker seeds must not draw from (and shift) the global generator
    )
