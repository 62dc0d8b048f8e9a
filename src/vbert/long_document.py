"""Long documents: text → chunks → chunk embeddings (cached) → merger → one vector."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vbert.cache import ChunkCache, DocumentChunks, text_key
from vbert.chunk_layouts import embed_chunk_texts, embed_documents, open_cache
from vbert.embedders.base import Embedder
from vbert.errors import ConfigError, DataError
from vbert.mergers import Merger, merge_sequences

#: Version of the chunking rule (``embedder.split`` at ``chunk_tokens``) in the cache's document table.
CHUNKING_VERSION = "split-v1"


class LongDocumentEncoder:
    """Embed documents of any length with a base embedder and a merger.

    Each document is split on token boundaries into chunks of at most ``chunk_tokens``
    content tokens (default: the embedder's whole window), the chunks are embedded (through
    the persistent chunk cache, so a chunk seen before is never embedded again), and the
    merger turns each document's chunk sequence into one unit vector. The cache also records,
    per document content hash, the keys and token counts of its chunks, so a document seen
    before is not cut again: its vectors come from one lookup, and it costs one merge (the
    mechanism of :mod:`vbert.chunk_layouts`, which :class:`vbert.Index` shares).

    Args:
        embedder: any object with the :class:`vbert.embedders.base.Embedder` protocol.
        merger: a :class:`vbert.SequenceMergerModel`, a baseline (:class:`vbert.MeanPoolMerger`,
            :class:`vbert.TruncationBaseline`) or a path/name for :func:`vbert.load_merger`.
        chunk_tokens: content tokens per chunk; at most ``embedder.content_window``.
        cache: a :class:`ChunkCache`, a path to its SQLite file, ``None`` for the default
            location, or ``False`` to disable caching.
        batch_size: chunks per embedder forward pass.

    A merger whose dimension differs from the embedder's is refused. A merger trained for
    another embedder (its config records ``embedder_fingerprint``) gets a warning.
    """

    def __init__(
        self,
        embedder: Embedder,
        merger: Merger | str | Path = "default",
        chunk_tokens: int | None = None,
        cache: ChunkCache | str | Path | None | bool = None,
        batch_size: int = 32,
    ) -> None:
        if isinstance(merger, str | Path):
            from vbert.loading import load_merger

            merger = load_merger(merger)
        self.embedder = embedder
        self.merger = merger
        self.chunk_tokens = chunk_tokens or embedder.content_window
        if not 1 <= self.chunk_tokens <= embedder.content_window:
            raise ConfigError(
                f"chunk_tokens={self.chunk_tokens} must be between 1 and the embedder's content window "
                f"({embedder.content_window} tokens)"
            )
        self.cache = open_cache(cache)
        self.batch_size = batch_size
        check_compatible(embedder, merger)

    def chunk(self, text: str) -> list[str]:
        """The chunks of one document; an empty or whitespace-only document is an error."""
        if not isinstance(text, str):
            raise TypeError(f"documents must be str, got {type(text).__name__}")
        if not text.strip():
            raise DataError(
                "the document is empty or whitespace-only: there is nothing to embed; drop it first"
            )
        return self.embedder.split(text, self.chunk_tokens)

    def embed_chunks(self, chunks: Sequence[str]) -> np.ndarray:
        """Embeddings (n, d) of ``chunks``, reading and filling the cache."""
        vectors, _ = embed_chunk_texts(
            self.embedder, self.cache, {text_key(c): c for c in chunks}, self.batch_size
        )
        return np.stack([vectors[text_key(c)] for c in chunks]).astype(np.float32)

    @property
    def chunking(self) -> str:
        """The chunking rule's name in the cache's document table."""
        return f"{CHUNKING_VERSION}:{self.chunk_tokens}"

    def iter_chunk_embeddings(
        self, documents: Iterable[str], documents_per_batch: int = 64
    ) -> Iterator[tuple[DocumentChunks, np.ndarray]]:
        """Yield ``(chunks, embeddings)`` per document, in order: the chunk keys and token counts, and
        the (n, d) chunk vectors. Documents the cache has seen are not cut again; the chunks of the
        others are embedded together, a batch at a time."""
        iterator = iter(documents)
        offset = 0
        while batch := list(itertools.islice(iterator, documents_per_batch)):
            yield from self._embed_batch(batch, offset)
            offset += len(batch)

    def _embed_batch(self, batch: list[str], offset: int) -> list[tuple[DocumentChunks, np.ndarray]]:
        for i, doc in enumerate(batch):
            if not isinstance(doc, str) or not doc or doc.isspace():
                self._layout(offset + i, doc)  # raises the error that names the document
        done = embed_documents(
            batch,
            self.embedder,
            self.chunking,
            lambda i, doc: self._layout(offset + i, doc),
            self.cache,
            self.batch_size,
        )
        return list(zip(done.layouts, done.sequences(), strict=True))

    def _layout(self, position: int, text: str) -> tuple[DocumentChunks, list[str]]:
        """Cut one document: its layout (no spans: ``split`` may re-space the text) and chunk texts."""
        try:
            texts = self.chunk(text)
        except (ValueError, TypeError) as err:
            raise type(err)(f"document {position}: {err}") from err
        tokens = tuple(max(self.embedder.count_tokens(t), 1) for t in texts)
        return DocumentChunks(tuple(map(text_key, texts)), tokens), texts

    def iter_encode(self, documents: Iterable[str], documents_per_batch: int = 64) -> Iterator[np.ndarray]:
        """Yield one unit vector per document, in order, in bounded memory."""
        pending = self.iter_chunk_embeddings(documents, documents_per_batch)
        weighted = getattr(self.merger, "weighted", False)
        while group := list(itertools.islice(pending, documents_per_batch)):
            sequences = [vectors for _, vectors in group]
            weights = (
                [np.asarray(chunks.tokens, dtype=np.float32) for chunks, _ in group] if weighted else None
            )
            yield from merge_sequences(self.merger, sequences, weights)

    def chunk_weights(self, chunked: list[list[str]]) -> list[np.ndarray] | None:
        """Per-chunk token counts when the merger uses them (token-weighted mean), else None."""
        if not getattr(self.merger, "weighted", False):
            return None
        return [np.array([max(self.embedder.count_tokens(c), 1) for c in chunks]) for chunks in chunked]

    def encode(
        self, documents: Iterable[str], documents_per_batch: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Embed ``documents`` as an (n, d) float32 array of unit vectors."""
        total = len(documents) if isinstance(documents, Sequence) else None
        rows = list(
            tqdm(
                self.iter_encode(documents, documents_per_batch),
                total=total,
                desc="documents",
                unit="doc",
                disable=not show_progress,
            )
        )
        if not rows:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.stack(rows)


def check_compatible(embedder: Embedder, merger: Merger) -> None:
    """Refuse a merger of another dimension; warn about one trained for another embedder."""
    config = getattr(merger, "config", None)
    if config is None:
        return
    d_model = getattr(config, "d_model", None)
    if d_model is not None and d_model != embedder.dim:
        raise ConfigError(
            f"merger {merger.name!r} expects {d_model}-d chunk embeddings but embedder {embedder.name!r} gives "
            f"{embedder.dim}-d: use a merger trained for this embedder"
        )
    trained_for = getattr(config, "embedder_fingerprint", None)
    if trained_for and trained_for != embedder.fingerprint:
        warnings.warn(
            f"merger {merger.name!r} was trained on embedder fingerprint {trained_for}, but {embedder.name!r} has "
            f"{embedder.fingerprint}; results may be degraded. Retrain or use the matching embedder.",
            UserWarning,
            stacklevel=3,
        )
