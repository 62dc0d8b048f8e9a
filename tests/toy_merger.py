"""A toy merger in one short file, as docs/architecture.md ("Adding a merger, an objective, a Finesse metric")
shows.

Max pooling: each dimension keeps its largest value over the real chunks. Importing this file
registers it as ``max``; ``load_merger`` also takes the spec ``tests.toy_merger:MaxPoolMerger``.
"""

from __future__ import annotations

import numpy as np

from vbert.mergers import MERGERS, MergerEntry
from vbert.validation import check_batch, check_sequence, unit_rows


class MaxPoolMerger:
    name = "max-pool"
    fingerprint = "max-pool-v1"

    def merge(self, embeddings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x = check_sequence(embeddings)  # (n, d)
        return self.merge_batch(x[None], np.ones((1, len(x)), dtype=np.float32))[0]

    def merge_batch(
        self, embeddings: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        x, m = check_batch(embeddings, mask)  # (b, n, d), (b, n)
        return unit_rows(np.where(m[..., None] > 0, x, -np.inf).max(axis=1))  # (b, d)


MERGERS.register("max", MergerEntry(MaxPoolMerger, "element-wise maximum of the chunk vectors"))
