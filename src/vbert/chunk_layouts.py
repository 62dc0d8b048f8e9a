"""Chunk layouts: what a document is cut into, worked out once per content and chunking rule.

A document's *layout* (:class:`vbert.cache.DocumentChunks`) is the keys (sha256 of the text) and
token counts of its chunks, in order, and their character spans when the chunks are pieces of the
document. :func:`embed_documents` is the one path from document texts to chunk vectors for both
:class:`vbert.LongDocumentEncoder` (fixed token windows) and :class:`vbert.Index` (content-defined
chunks): it looks every layout up in the chunk cache by the document's sha256 and the rule's name,
cuts (tokenises) only the documents it finds no usable layout for, embeds only the chunks the cache
lacks, and records the layouts it computed. A document seen before therefore costs one lookup and
no tokenisation. A recorded layout is trusted only after its row checksums, and its spans only when
every span's text hashes to its chunk key; anything else is cut again and recorded anew.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vbert.cache import ChunkCache, DocumentChunks, text_key
from vbert.embedders.base import Embedder

#: ``cut(position, text) -> (layout, chunk texts)``: the chunking rule applied to one document
#: (``position`` is its place in the batch, for error messages).
Cut = Callable[[int, str], tuple[DocumentChunks, list[str]]]
#: Appended to the embedder fingerprint for the cached vectors of search queries.
QUERY_NAMESPACE = ":query"
#: Vectors by chunk key from somewhere other than the cache (the index's chunk table).
VectorSource = Callable[[list[str]], Mapping[str, np.ndarray]]


@dataclass
class EmbeddedDocuments:
    """The result of :func:`embed_documents` for a batch of documents."""

    layouts: list[DocumentChunks]  # one per document, in order
    vectors: dict[str, np.ndarray]  # by chunk key: every key of every layout
    texts: dict[str, str] = field(default_factory=dict)  # by chunk key: those known (all with need_texts)
    embedded: int = 0  # chunks embedded by this call
    cut: int = 0  # documents cut (tokenised) by this call

    def sequences(self) -> list[np.ndarray]:
        """The (chunks, dim) float32 chunk vectors of each document, in order."""
        return [
            np.stack([self.vectors[k] for k in layout.keys]).astype(np.float32) for layout in self.layouts
        ]


def open_cache(cache: ChunkCache | str | Path | bool | None = None) -> ChunkCache | None:
    """What a ``cache=`` argument names: a :class:`ChunkCache` as is, a path opened, ``None`` or
    ``True`` the default file (:func:`default_cache_path`), ``False`` no cache (``None`` returned)."""
    if cache is False:
        return None
    if isinstance(cache, ChunkCache):
        return cache
    return ChunkCache(None if cache in (None, True) else cache)


def span_texts(text: str, layout: DocumentChunks) -> list[str] | None:
    """The chunk texts of ``text`` by the layout's spans; ``None`` without spans or if one misses its key."""
    if layout.starts is None or layout.ends is None:
        return None
    texts = [text[start:end] for start, end in zip(layout.starts, layout.ends, strict=True)]
    return texts if all(text_key(t) == key for t, key in zip(texts, layout.keys, strict=True)) else None


def embed_chunk_texts(
    embedder: Embedder,
    cache: ChunkCache | None,
    texts: Mapping[str, str],
    batch_size: int = 32,
    stored: VectorSource | None = None,
    queries: bool = False,
) -> tuple[dict[str, np.ndarray], int]:
    """Vectors of ``texts`` (chunk key → text) and how many were embedded now.

    Each comes from the cache, else from ``stored``, else is embedded (and cached). ``queries=True``
    embeds search queries (``encode_queries``) and caches them apart, under the fingerprint plus
    :data:`QUERY_NAMESPACE`: E5-style models embed a query and a passage of one text differently.
    """
    fingerprint = embedder.fingerprint + (QUERY_NAMESPACE if queries else "")
    found = dict(cache.get_vectors(fingerprint, texts)) if cache is not None and texts else {}
    if stored is not None and len(found) < len(texts):
        found.update(stored([key for key in texts if key not in found]))
    missing = sorted(key for key in texts if key not in found)
    if missing:
        chunk_texts = [texts[key] for key in missing]
        encode = getattr(embedder, "encode_queries", embedder.encode) if queries else embedder.encode
        new = np.asarray(encode(chunk_texts, batch_size=batch_size), dtype=np.float32)
        if cache is not None:
            cache.put_many(fingerprint, chunk_texts, new)
        found.update(zip(missing, new, strict=True))
    return found, len(missing)


def embed_documents(
    documents: Sequence[str],
    embedder: Embedder,
    rule: str,
    cut: Cut,
    cache: ChunkCache | None = None,
    batch_size: int = 32,
    stored: VectorSource | None = None,
    need_texts: bool = False,
) -> EmbeddedDocuments:
    """Layouts and chunk vectors of ``documents``, cutting and embedding only what the cache lacks.

    Args:
        documents: the texts.
        embedder: embeds the missing chunks; its fingerprint scopes the cache.
        rule: the chunking rule's name in the cache (another rule has other layouts).
        cut: the rule itself, run on the documents without a usable recorded layout.
        cache: where layouts and vectors are looked up and recorded; ``None``: cut everything.
        batch_size: chunks per embedder forward pass.
        stored: a second source of chunk vectors, asked before embedding.
        need_texts: the caller needs every chunk text (``texts``), so a layout without valid spans
            is cut again; otherwise only one whose chunk vectors are not all cached is.
    """
    fingerprint = embedder.fingerprint
    hashes = [text_key(doc) for doc in documents]
    recorded = cache.get_documents(fingerprint, rule, hashes) if cache is not None else {}
    keys = {key for layout in recorded.values() for key in layout.keys}
    vectors = dict(cache.get_vectors(fingerprint, keys)) if cache is not None and keys else {}
    layouts: dict[str, DocumentChunks] = {}
    texts: dict[str, str] = {}
    fresh: dict[str, DocumentChunks] = {}
    for position, (doc, content_hash) in enumerate(zip(documents, hashes, strict=True)):
        if content_hash in layouts:
            continue
        layout = recorded.get(content_hash)
        pieces = span_texts(doc, layout) if layout is not None else None
        if layout is None or (
            pieces is None and (need_texts or not all(key in vectors for key in layout.keys))
        ):
            layout, pieces = cut(position, doc)
            fresh[content_hash] = layout
        layouts[content_hash] = layout
        if pieces is not None:
            texts.update(zip(layout.keys, pieces, strict=True))
    new, embedded = embed_chunk_texts(
        embedder, cache, {key: text for key, text in texts.items() if key not in vectors}, batch_size, stored
    )
    vectors.update(new)
    if cache is not None:
        cache.put_documents(fingerprint, rule, fresh)
    return EmbeddedDocuments([layouts[h] for h in hashes], vectors, texts, embedded, len(fresh))
