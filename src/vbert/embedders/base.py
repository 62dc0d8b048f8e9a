"""The small protocol every base text embedder implements.

An embedder turns texts into L2-normalised float32 vectors: documents with ``encode``, search
queries with ``encode_queries`` (E5 models put different prefixes in front of each). Everything else in vbert
(chunking, the chunk cache, Finesse, dataset builders) talks to embedders only through
this protocol, so users can plug in their own model without editing the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """What vbert needs from a base embedder.

    Attributes:
        name: human-readable name (``"multilingual-e5-small"``).
        dim: output dimension.
        max_tokens: the model's window in tokens, special tokens and prefix included.
        content_window: the most content tokens one text may have so that, with the
            prefix and special tokens added, it still fits in ``max_tokens``.
        fingerprint: stable id of weights + tokenizer + prefix + pooling; a cache key
            that is recorded in every result.
    """

    name: str
    dim: int
    max_tokens: int
    content_window: int
    fingerprint: str

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed documents (passages) as a float32 array of shape (n, dim), each row unit-norm."""
        ...

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed search queries like :meth:`encode` (models without a query prefix return the same)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of content tokens of ``text`` (no special tokens, no prefix)."""
        ...

    def split(self, text: str, max_tokens: int) -> list[str]:
        """Cut ``text`` on token boundaries into pieces of at most ``max_tokens`` content tokens.

        Each piece re-tokenises to at most ``max_tokens`` tokens; concatenated, the pieces
        cover the whole text with no overlap. Embedders with a fast tokenizer get this from
        :func:`vbert.embedders.splitting.split_on_tokens`.
        """
        ...


def describe_embedder(embedder: Embedder) -> dict[str, object]:
    """The protocol's attributes as plain JSON values: what results and manifests record."""
    return {
        "name": str(embedder.name),
        "fingerprint": str(embedder.fingerprint),
        "dim": int(embedder.dim),
        "max_tokens": int(embedder.max_tokens),
        "content_window": int(embedder.content_window),
    }
