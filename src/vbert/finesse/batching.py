"""Batched merging and encoding helpers shared by the Finesse evaluators."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vbert.embedders.base import Embedder
from vbert.mergers import Merger


def single_merges(merger: Merger, embeddings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The merger's output on each chunk alone (the reference's "merger perspective"), shape (n, d)."""
    x = np.asarray(embeddings, dtype=np.float32)
    mask = np.ones((x.shape[0], 1), dtype=np.int64)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[:, None]
    return np.asarray(merger.merge_batch(x[:, None, :], mask, w), dtype=np.float32)


def merge_gathered(
    merger: Merger,
    pool: np.ndarray,
    index: np.ndarray,
    pool_weights: np.ndarray | None,
    batch_size: int,
) -> np.ndarray:
    """Merge the full-length sequences ``pool[index[r]]`` for every row r, ``batch_size`` rows at a time.

    Gathering per batch keeps memory at batch_size × length × d instead of the whole set.
    """
    out = []
    for start in range(0, index.shape[0], batch_size):
        rows = index[start : start + batch_size]
        x = pool[rows]
        mask = np.ones(rows.shape, dtype=np.int64)
        w = None if pool_weights is None else np.asarray(pool_weights, dtype=np.float64)[rows]
        out.append(np.asarray(merger.merge_batch(x, mask, w), dtype=np.float32))
    return np.concatenate(out, axis=0)


def truncate_to_window(embedder: Embedder, texts: Sequence[str]) -> tuple[list[str], int]:
    """Cut every text longer than the embedder's content window to its first window of tokens.

    Returns the texts and how many were cut.
    """
    window = embedder.content_window
    out, cut = [], 0
    for text in texts:
        if embedder.count_tokens(text) > window:
            out.append(embedder.split(text, window)[0])
            cut += 1
        else:
            out.append(text)
    return out, cut


def unit(x: np.ndarray) -> np.ndarray:
    """Rows L2-normalised in float64."""
    y = np.asarray(x, dtype=np.float64)
    return y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-12)
