"""Embedding for dataset builds: what the manifest records about the embedder, and a meter that
embeds each distinct text once (or takes it from the chunk-vector store), in batches of similar
length, and counts the time spent."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from vbert.cache import ChunkCache, text_key
from vbert.data.errors import DatasetError
from vbert.embedders.base import Embedder, describe_embedder

Row = TypeVar("Row")


def embedder_record(embedder: Embedder) -> dict[str, Any]:
    """What the manifest records about the embedder.

    ``prefix`` is the document prefix the embedder adds (``"passage: "`` for e5); the protocol
    does not require the attribute, so it is recorded as null for embedders that lack it.
    """
    for attr in ("name", "dim", "max_tokens", "content_window", "fingerprint"):
        if not hasattr(embedder, attr):
            raise TypeError(
                f"{type(embedder).__name__} has no attribute {attr!r}: dataset builders need an object "
                "implementing vbert.embedders.base.Embedder"
            )
    prefix = getattr(embedder, "prefix", None)
    return describe_embedder(embedder) | {"prefix": prefix if isinstance(prefix, str) else None}


class EmbeddingMeter:
    """Embeds texts in batches of similar length and counts the time spent in the embedder.

    With a ``store``, texts already in it are not embedded again, and new vectors are saved to it.
    """

    def __init__(self, embedder: Embedder, batch_size: int, store: ChunkCache | None = None) -> None:
        self.embedder = embedder
        self.batch_size = batch_size
        self.store = store
        self.seconds = 0.0
        self.texts = 0
        self.reused = 0

    def embed(self, texts: Sequence[str], lengths: Sequence[int]) -> np.ndarray:
        """float32 (len(texts), dim) vectors of ``texts``; each distinct text is embedded once.

        Texts are sent longest first (padding stays small, and an out-of-memory error shows on the
        first batch rather than the last); ``lengths`` are their token counts.
        """
        if len(texts) != len(lengths):
            raise ValueError(f"got {len(texts)} texts but {len(lengths)} lengths")
        dim = int(self.embedder.dim)
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        position: dict[str, int] = {}
        unique_lengths: list[int] = []
        for text, length in zip(texts, lengths, strict=True):
            if text not in position:
                position[text] = len(position)
                unique_lengths.append(int(length))
        unique = list(position)
        by_unique = np.empty((len(unique), dim), dtype=np.float32)
        stored = self._from_store(unique, dim)
        for i, vector in stored.items():
            by_unique[i] = vector
        order = sorted(
            (i for i in range(len(unique)) if i not in stored), key=lambda i: (-unique_lengths[i], i)
        )
        if order:
            batch = [unique[i] for i in order]
            started = time.perf_counter()
            vectors = self.embedder.encode(batch, batch_size=self.batch_size)
            self.seconds += time.perf_counter() - started
            self.texts += len(order)
            vectors = np.asarray(vectors)
            if vectors.shape != (len(order), dim):
                raise DatasetError(
                    f"embedder {self.embedder.name!r} returned an array of shape {vectors.shape} for "
                    f"{len(order)} texts; the Embedder protocol requires ({len(order)}, {dim})"
                )
            if not np.isfinite(vectors).all():
                raise DatasetError(
                    f"embedder {self.embedder.name!r} returned NaN or inf values; check the model"
                )
            by_unique[order] = vectors
            if self.store is not None:
                self.store.put_many(self.embedder.fingerprint, batch, vectors)
        return by_unique[[position[t] for t in texts]]

    def _from_store(self, unique: list[str], dim: int) -> dict[int, np.ndarray]:
        """Vectors the store already holds for these texts, by position in ``unique``."""
        if self.store is None:
            return {}
        found = self.store.get_many(self.embedder.fingerprint, unique)
        stored = {}
        for i, text in enumerate(unique):
            vector = found.get(text_key(text))
            if vector is not None and vector.shape == (dim,):
                stored[i] = vector
        self.reused += len(stored)
        return stored


def fitting_targets(
    embedder: Embedder, rows: list[Row], texts: Sequence[str]
) -> tuple[list[Row], list[int], int]:
    """The rows whose target text (``texts``, one per row) fits the embedder's content window, the
    token counts of those texts, and how many rows were dropped for not fitting."""
    counts = [embedder.count_tokens(text) for text in texts]
    fitting = [i for i, n in enumerate(counts) if n <= embedder.content_window]
    return [rows[i] for i in fitting], [counts[i] for i in fitting], len(rows) - len(fitting)
