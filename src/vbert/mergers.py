"""Mergers: anything that turns a sequence of chunk embeddings into one vector.

Trained models (:class:`vbert.SequenceMergerModel`) and the training-free baselines here
share one small interface, so they are interchangeable in :class:`vbert.LongDocumentEncoder`,
in the Finesse benchmark and in the retrieval evaluation:

* ``merge(embeddings, weights=None) -> (d,)`` unit vector, for one sequence of shape (n, d);
* ``merge_batch(embeddings, mask, weights=None) -> (b, d)`` unit vectors, for a padded
  batch (b, n, d) with ``mask`` (b, n) of 1 = real chunk, 0 = padding.

``weights`` are optional per-chunk token counts; only the token-weighted mean uses them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol, runtime_checkable

import numpy as np

from vbert.errors import DataError
from vbert.registry import Registry
from vbert.validation import check_batch, check_merged, check_sequence, check_weights, unit_rows


@runtime_checkable
class Merger(Protocol):
    name: str
    fingerprint: str

    def merge(self, embeddings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray: ...

    def merge_batch(
        self, embeddings: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray: ...


class MeanPoolMerger:
    """Average the chunk embeddings, then L2-normalise: the strongest training-free baseline.

    With ``weighted=True`` each chunk counts in proportion to its token count (pass
    ``weights``), so a short trailing chunk does not weigh as much as a full window.
    """

    def __init__(self, weighted: bool = False) -> None:
        self.weighted = weighted
        self.name = "mean-pool-weighted" if weighted else "mean-pool"
        self.fingerprint = hashlib.sha256(self.name.encode()).hexdigest()[:16]

    def merge(self, embeddings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x = check_sequence(embeddings)
        mask = np.ones(x.shape[0], dtype=np.float32)
        w = None if weights is None else np.asarray(weights, dtype=np.float32)[None]
        return self.merge_batch(x[None], mask[None], w)[0]

    def merge_batch(
        self, embeddings: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        x, m = check_batch(embeddings, mask)
        if self.weighted:
            m = m * check_weights(weights, m)
        pooled = (x.astype(np.float64) * m[..., None]).sum(axis=1) / m.sum(axis=1, keepdims=True)
        return unit_rows(pooled)


class TruncationBaseline:
    """Keep only the first window: the vector of the first chunk.

    When chunks are cut at the embedder's full window (the default in
    :class:`vbert.LongDocumentEncoder`), this is exactly what embedding a truncated
    document gives.
    """

    name = "truncation"
    fingerprint = hashlib.sha256(b"truncation").hexdigest()[:16]

    def merge(self, embeddings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return unit_rows(check_sequence(embeddings)[0])

    def merge_batch(
        self, embeddings: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        x, _ = check_batch(embeddings, mask)
        return unit_rows(x[:, 0])


@dataclass(frozen=True)
class MergerEntry:
    """A named merger: how to build it, and whether it is trained (a model) or a baseline."""

    factory: Callable[[], Merger]
    description: str
    trained: bool = False


#: Every named merger. Loaders, Finesse configs, the CLI's help, the demo and the lab read it;
#: ``load_merger`` also takes folders, hub ids and ``module:factory`` specs.
MERGERS: Registry[MergerEntry] = Registry("merger", builtins=("vbert.mergers", "vbert.loading"))
MERGERS.register("mean", MergerEntry(MeanPoolMerger, "average of the chunk vectors"))
MERGERS.register(
    "mean-weighted", MergerEntry(partial(MeanPoolMerger, weighted=True), "token-count-weighted average")
)
MERGERS.register("truncation", MergerEntry(TruncationBaseline, "first chunk only (a truncated document)"))


def baseline_names() -> list[str]:
    """Names of the training-free mergers, in registration order."""
    return [name for name, entry in MERGERS.items() if not entry.trained]


#: Chunk positions (rows × longest) per ``merge_batch`` call in :func:`merge_sequences`.
MERGE_POSITIONS = 2048


def length_buckets(
    lengths: Sequence[int], max_rows: int, max_positions: int = MERGE_POSITIONS
) -> list[list[int]]:
    """Indices of ``lengths`` in length order, cut into batches of at most ``max_rows`` rows and at
    most ``max_positions`` padded positions (rows × longest; a longer sequence gets a batch alone)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    buckets: list[list[int]] = []
    for i in order:
        if buckets and len(buckets[-1]) < max_rows and (len(buckets[-1]) + 1) * lengths[i] <= max_positions:
            buckets[-1].append(i)
        else:
            buckets.append([i])
    return buckets


def merge_sequences(
    merger: Merger,
    sequences: Sequence[np.ndarray],
    weights: Sequence[np.ndarray] | None = None,
    batch_size: int = 64,
    max_positions: int = MERGE_POSITIONS,
) -> np.ndarray:
    """Merge sequences of different lengths: the one batched fast path of the package.

    Sequences are sorted by length and cut into right-padded ``merge_batch`` calls of at most
    ``batch_size`` rows and ``max_positions`` padded chunk positions (:func:`length_buckets`), so
    padding stays small and memory bounded; a trained merger also skips the padding that is left
    (``merge_batch`` runs packed). Rows come back in input order as an (n, d) float32 array equal
    to one ``merge`` per sequence. A merger that gives NaN, infinity or a zero vector (e.g. a
    model fed huge values) raises :class:`~vbert.errors.DataError` instead of returning it.
    """
    if not len(sequences):
        raise DataError("no sequences to merge")
    sequences = [check_sequence(sequence) for sequence in sequences]
    dim = sequences[0].shape[-1]
    out = np.zeros((len(sequences), dim), dtype=np.float32)
    for rows in length_buckets([len(s) for s in sequences], batch_size, max_positions):
        longest = max(len(sequences[i]) for i in rows)
        batch = np.zeros((len(rows), longest, dim), dtype=np.float32)
        mask = np.zeros((len(rows), longest), dtype=np.float32)
        batch_weights = None if weights is None else np.zeros((len(rows), longest), dtype=np.float32)
        for r, i in enumerate(rows):
            n = len(sequences[i])
            batch[r, :n] = sequences[i]
            mask[r, :n] = 1
            if batch_weights is not None:
                batch_weights[r, :n] = weights[i]
        out[rows] = merger.merge_batch(batch, mask, batch_weights)
    return check_merged(out, str(getattr(merger, "name", type(merger).__name__)), sequences)


def prefix_merges(merger: Merger, embeddings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """s_i = merge(e_0..e_i) for every prefix i = 0..n-1, through :func:`merge_sequences`; (n, d) float32."""
    x = check_sequence(embeddings)
    prefixes = [x[: i + 1] for i in range(x.shape[0])]
    if weights is None:
        return merge_sequences(merger, prefixes)
    w = np.asarray(weights, dtype=np.float64)
    return merge_sequences(merger, prefixes, [w[: i + 1] for i in range(x.shape[0])])
