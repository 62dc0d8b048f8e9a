"""``vbert.Index``: a folder that keeps long documents searchable as they change.

Adding or re-indexing a document chunks it with content-defined boundaries, embeds only the
chunks the chunk cache has not seen, merges the chunk vectors into one document vector, and
commits the document's row (content hash, chunk keys, token counts, spans, timestamps, vector).
An unchanged document costs one hash; a renamed one reuses its row's chunks and vector; an
edited one re-embeds only its new chunks; text indexed before is not chunked again (its layout
comes from the chunk cache through :mod:`vbert.chunk_layouts`, as for LongDocumentEncoder).
See :mod:`vbert.index.journal` (the crash-safe write protocol) and :mod:`vbert.index.store`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vbert.cache import ChunkCache, DocumentChunks, text_key
from vbert.chunk_layouts import embed_documents
from vbert.embedders.base import Embedder
from vbert.errors import ConfigError, DataError
from vbert.files import atomic_write_json, read_json
from vbert.index import journal
from vbert.index.chunking import Chunk, ChunkingSpec, chunk_text
from vbert.index.sources import Document, as_documents
from vbert.index.store import DocumentRow, VectorStore
from vbert.mergers import Merger, merge_sequences

SCHEMA_VERSION = 1
SETTINGS = "index.json"
RERANKERS = ("maxsim",)


@dataclass
class IndexReport:
    """What one write did: documents per outcome, chunks embedded now vs taken from the cache."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    documents: int = 0
    repaired: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SearchHit:
    """One ranked document with its best-matching chunk (``chunk_index`` of ``chunks``, chars ``[start, end)``)."""

    id: str
    title: str
    score: float
    document_score: float
    chunk_score: float
    chunk_index: int
    chunks: int
    start: int
    end: int
    snippet: str

    def to_dict(self) -> dict:
        return asdict(self)


def _normalised(documents: Iterable[Document | tuple | dict]) -> Iterable[Document]:
    """Checked documents; a list stays a list (so progress knows the total), a stream stays a stream."""
    checked = as_documents(documents)
    return list(checked) if isinstance(documents, Sequence) else checked


def content_hash(document: Document) -> str:
    return text_key(document.title + "\x00" + document.text)


def snippet_of(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


#: Token-weighted mean pooling: the best single-vector method on the validation split's retrieval
#: (docs/results.md, "The shipped merger"; the shipped merger is level with it). Indexes record theirs.
NEW_INDEX_MERGER = "mean-weighted"


class Index:
    """A searchable index of long documents in ``folder`` (created on first use).

    Args:
        folder: the index folder: ``index.json`` (settings), ``chunk-cache.sqlite``, ``lance/``.
        embedder: an embedder or a name for :func:`vbert.load_embedder`; default: the one the
            index was built with (``"default"`` for a new index).
        merger: a merger or a name for :func:`vbert.load_merger`; default: the index's, and
            :data:`NEW_INDEX_MERGER` for a new index.
        chunk_tokens: largest chunk, in content tokens (default: the embedder's window).
        batch_size: chunks per embedder forward pass.
        documents_per_commit: documents written to the document table per atomic commit.

    An index refuses an embedder, merger or chunking rule other than the one it was built
    with (:class:`vbert.errors.ConfigError`): its vectors would not be comparable.
    """

    def __init__(
        self,
        folder: str | Path,
        embedder: Embedder | str | None = None,
        merger: Merger | str | None = None,
        chunk_tokens: int | None = None,
        batch_size: int = 32,
        documents_per_commit: int = 64,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        settings_path = self.folder / SETTINGS
        saved = read_json(settings_path, "index settings") if settings_path.exists() else None
        if saved is not None and saved.get("schema_version") != SCHEMA_VERSION:
            raise ConfigError(
                f"{settings_path} has schema version {saved.get('schema_version')}; this vbert reads "
                f"version {SCHEMA_VERSION}: rebuild the index in a new folder"
            )
        self.embedder = self._load_embedder(embedder, saved)
        self.merger = self._load_merger(merger, saved)
        from vbert.long_document import check_compatible

        check_compatible(self.embedder, self.merger)
        if chunk_tokens is None and saved is not None:
            chunk_tokens = saved["chunking"]["max_tokens"]
        self.spec = ChunkingSpec.for_embedder(self.embedder, chunk_tokens)
        settings = {
            "schema_version": SCHEMA_VERSION,
            "embedder": {"name": self.embedder_name, "fingerprint": self.embedder.fingerprint},
            "merger": {"name": self.merger_name, "fingerprint": self.merger.fingerprint},
            "chunking": {**asdict(self.spec), "fingerprint": self.spec.fingerprint},
            "dim": self.embedder.dim,
        }
        if saved is None:
            atomic_write_json(settings_path, settings)
        else:
            for part in ("embedder", "merger", "chunking"):
                if saved[part]["fingerprint"] != settings[part]["fingerprint"]:
                    raise ConfigError(
                        f"the index {self.folder} was built with {part} {saved[part].get('name')!r} "
                        f"({saved[part]['fingerprint']}), not {settings[part].get('name')!r} "
                        f"({settings[part]['fingerprint']}): use the same {part} or a new index folder"
                    )
        self.batch_size = batch_size
        self.documents_per_commit = documents_per_commit
        self.cache = ChunkCache(self.folder / "chunk-cache.sqlite")
        self.store = VectorStore(self.folder / "lance", self.embedder.dim)

    def _load_embedder(self, embedder: Embedder | str | None, saved: dict | None) -> Embedder:
        if embedder is None or isinstance(embedder, str):
            from vbert.embedders import load_embedder

            self.embedder_name = embedder or (saved["embedder"]["name"] if saved else "default")
            return load_embedder(self.embedder_name)
        self.embedder_name = embedder.name
        return embedder

    def _load_merger(self, merger: Merger | str | None, saved: dict | None) -> Merger:
        if merger is None or isinstance(merger, str):
            from vbert.loading import load_merger, load_recorded_merger

            if merger is None and saved:
                recorded = saved["merger"]
                self.merger_name, loaded = load_recorded_merger(recorded["name"], recorded["fingerprint"])
                return loaded
            self.merger_name = merger or NEW_INDEX_MERGER
            return load_merger(self.merger_name)
        self.merger_name = merger.name
        return merger

    # -- reading ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.store.documents.count_rows()

    def ids(self) -> list[str]:
        return sorted(row.id for row in self.store.document_rows())

    def chunking(self, text: str) -> list[Chunk]:
        """The chunks this index cuts ``text`` into."""
        return chunk_text(self.embedder, text, self.spec)

    def search(self, query: str, k: int = 10, rerank: str | None = None) -> list[SearchHit]:
        """The ``k`` best documents for ``query``, each with its best-matching chunk as a snippet.

        Documents are ranked by the dot product of the query with their merged vector;
        ``rerank="maxsim"`` re-ranks the top ``max(4k, 50)`` by their best chunk instead.
        """
        if not isinstance(query, str) or not query.strip():
            raise DataError("the query is empty: type what you are looking for")
        encode = getattr(self.embedder, "encode_queries", self.embedder.encode)
        return self.search_vector(encode([query])[0], k, rerank)

    def search_vector(self, query: np.ndarray, k: int = 10, rerank: str | None = None) -> list[SearchHit]:
        """:meth:`search` for an already embedded query (a unit vector of the embedder's dimension)."""
        if rerank is not None and rerank not in RERANKERS:
            raise ConfigError(f"unknown re-ranker {rerank!r}; choose one of {', '.join(RERANKERS)}")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.embedder.dim:
            raise DataError(
                f"the query vector has {query.shape[0]} dimensions, the index {self.embedder.dim}"
            )
        candidates = self.store.search_documents(query, k if rerank is None else max(4 * k, 50))
        chunks = self.store.chunk_rows([key for row, _ in candidates for key in row["chunk_keys"]])
        hits = []
        for row, document_score in candidates:
            keys = row["chunk_keys"]
            scores = [float(chunks[key][1] @ query) if key in chunks else -np.inf for key in keys]
            best = int(np.argmax(scores))
            text = chunks[keys[best]][0] if keys[best] in chunks else ""
            hits.append(
                SearchHit(
                    id=row["id"],
                    title=row["title"],
                    score=scores[best] if rerank == "maxsim" else document_score,
                    document_score=document_score,
                    chunk_score=scores[best],
                    chunk_index=best,
                    chunks=len(keys),
                    start=row["chunk_starts"][best],
                    end=row["chunk_ends"][best],
                    snippet=snippet_of(text),
                )
            )
        hits.sort(key=lambda hit: -hit.score)
        return hits[:k]

    # -- writing ---------------------------------------------------------------------------------
    def to_embed(self, documents: Iterable[Document]) -> list[Document]:
        """The documents a write would chunk and embed: new content, neither indexed under its id nor renamed."""
        indexed = {row.content_hash for row in self.store.document_rows()}
        return [doc for doc in documents if content_hash(doc) not in indexed]

    def embed_on_ray(
        self,
        documents: Sequence[Document],
        workers: int = 1,
        address: str | None = None,
        documents_per_shard: int = 64,
        show_progress: bool = False,
    ):
        """Embed the new chunks of ``documents`` on Ray into ``shards/`` and load them into the chunk cache.

        A following :meth:`sync` (or :meth:`update`) then only merges and writes. The embedder must
        be loadable by name on every worker (the index's ``embedder_name``). Returns the
        :class:`vbert.index.ray_engine.ShardRun`; shards of a killed run are reused.
        """
        from vbert.index.ray_engine import embed_on_ray
        from vbert.index.shards import ChunkRule

        todo = self.to_embed(documents)
        run = embed_on_ray(
            [(doc.id, doc.text) for doc in todo],
            self.folder / "shards",
            self.embedder,
            self.embedder_name,
            ChunkRule("content-defined", self.spec.max_tokens),
            workers=workers,
            address=address,
            documents_per_shard=documents_per_shard,
            batch_size=self.batch_size,
            known=frozenset(self.store.chunk_keys()),
            show_progress=show_progress,
        )
        self.import_shards(run.folder)
        return run

    def import_shards(self, folder: str | Path) -> int:
        """Put the chunk vectors of a shard folder (:mod:`vbert.index.ray_engine`) into the chunk cache.

        A later write then finds those chunks cached and only merges. Returns the chunks imported.
        """
        from vbert.index.shards import read_chunk_vectors, read_manifest

        manifest = read_manifest(folder)
        if manifest["embedder"] != self.embedder.fingerprint:
            raise ConfigError(
                f"the shards in {folder} were embedded by {manifest['embedder']}, the index uses "
                f"{self.embedder.fingerprint}"
            )
        table, vectors = read_chunk_vectors(folder)
        self.cache.put_many(self.embedder.fingerprint, table["text"].to_pylist(), vectors)
        return len(table)

    def add(self, documents: Iterable[Document | tuple | dict], show_progress: bool = False) -> IndexReport:
        """Add new documents; an id already in the index is an error (use :meth:`update`)."""
        docs = list(as_documents(documents))
        present = set(self.ids()) & {doc.id for doc in docs}
        if present:
            raise DataError(
                f"{len(present)} documents are already in the index (e.g. {sorted(present)[0]!r}); "
                "use update() to replace them"
            )
        return self._write(docs, remove_sources=(), show_progress=show_progress)

    def update(
        self, documents: Iterable[Document | tuple | dict], show_progress: bool = False
    ) -> IndexReport:
        """Add new documents and re-index changed ones; unchanged ones cost one hash."""
        return self._write(_normalised(documents), remove_sources=(), show_progress=show_progress)

    def sync(
        self,
        documents: Iterable[Document | tuple | dict],
        sources: Iterable[str],
        show_progress: bool = False,
    ) -> IndexReport:
        """:meth:`update`, then remove the documents of ``sources`` that ``documents`` no longer has."""
        return self._write(_normalised(documents), remove_sources=set(sources), show_progress=show_progress)

    def remove(self, ids: Iterable[str]) -> IndexReport:
        """Remove documents by id; ids not in the index are ignored (the report counts what was removed)."""
        wanted = set(ids)
        with journal.writer_lock(self.folder):
            report = IndexReport(repaired=self._repair_if_interrupted())
            journal.begin(self.folder, "remove", documents=len(wanted))
            present = wanted & {row.id for row in self.store.document_rows()}
            self.store.delete_documents(present)
            report.removed = len(present)
            self._finish(report)
        return report

    def repair(self) -> None:
        """Make the tables consistent: no chunk row without a document, no document without its chunks."""
        with journal.writer_lock(self.folder):
            self._repair()
            journal.finish(self.folder)

    def _repair_if_interrupted(self) -> bool:
        if journal.interrupted_write(self.folder) is None:
            return False
        self._repair()
        return True

    def _repair(self) -> None:
        rows = self.store.document_rows()
        stored = self.store.chunk_keys()
        broken = [row.id for row in rows if not set(row.chunk_keys) <= stored]
        self.store.delete_documents(broken)
        referenced = {key for row in rows if row.id not in broken for key in row.chunk_keys}
        self.store.delete_chunks(stored - referenced)

    def _finish(self, report: IndexReport) -> None:
        referenced = {key for row in self.store.document_rows() for key in row.chunk_keys}
        self.store.delete_chunks(self.store.chunk_keys() - referenced)
        self.store.compact()
        report.documents = len(self)
        journal.finish(self.folder)

    def _write(
        self, documents: Iterable[Document], remove_sources: set[str] | tuple, show_progress: bool
    ) -> IndexReport:
        with journal.writer_lock(self.folder):
            report = IndexReport(repaired=self._repair_if_interrupted())
            journal.begin(self.folder, "write", remove_sources=sorted(remove_sources))
            existing = {row.id: row for row in self.store.document_rows()}
            by_hash = {row.content_hash: row for row in existing.values()}
            seen: set[str] = set()
            pending: list[tuple[Document, str, DocumentRow | None]] = []
            total = len(documents) if isinstance(documents, Sequence) else None
            bar = tqdm(total=total, desc="indexing", unit="doc", disable=not show_progress)
            for doc in documents:
                seen.add(doc.id)
                digest = content_hash(doc)
                old = existing.get(doc.id)
                if old is not None and old.content_hash == digest:
                    report.unchanged += 1
                    bar.update(1)
                    continue
                pending.append((doc, digest, old))
                if len(pending) == self.documents_per_commit:
                    self._commit(pending, by_hash, report)
                    bar.update(len(pending))
                    bar.set_postfix(embedded=report.chunks_embedded, reused=report.chunks_reused)
                    pending = []
            self._commit(pending, by_hash, report)
            bar.update(len(pending))
            bar.close()
            gone = [i for i, row in existing.items() if row.source in remove_sources and i not in seen]
            self.store.delete_documents(gone)
            report.removed = len(gone)
            self._finish(report)
        return report

    def _commit(
        self,
        pending: Sequence[tuple[Document, str, DocumentRow | None]],
        by_hash: dict[str, DocumentRow],
        report: IndexReport,
    ) -> None:
        """Chunk, embed what is new, merge, and commit one batch of documents."""
        if not pending:
            return
        now = journal.utc_now()
        rows = []
        fresh: list[tuple[DocumentRow, Document]] = []
        copies = [by_hash[digest].id for _, digest, _ in pending if digest in by_hash]
        copied_vectors = self.store.document_vectors(copies)
        for doc, digest, old in pending:
            row = DocumentRow(
                id=doc.id,
                source=doc.source,
                title=doc.title,
                content_hash=digest,
                chunk_keys=[],
                chunk_tokens=[],
                chunk_starts=[],
                chunk_ends=[],
                added_at=old.added_at if old else now,
                updated_at=now,
            )
            twin = by_hash.get(digest)
            if twin is not None and twin.id in copied_vectors:  # renamed or duplicated: nothing to compute
                for name in ("chunk_keys", "chunk_tokens", "chunk_starts", "chunk_ends"):
                    setattr(row, name, getattr(twin, name))
                row.vector = copied_vectors[twin.id]
                report.chunks_reused += len(row.chunk_keys)
            else:
                fresh.append((row, doc))
            rows.append(row)
            if old is None:
                report.added += 1
            else:
                report.updated += 1
        if fresh:
            self._embed_and_merge(fresh, report)
        self.store.upsert_documents(rows)  # the commit point of this batch
        for _, _, old in pending:  # an updated document's old content is no longer in the index
            if old is not None and by_hash.get(old.content_hash) is old:
                del by_hash[old.content_hash]
        for row in rows:
            by_hash[row.content_hash] = row

    @property
    def layout_rule(self) -> str:
        """The chunking rule's name in the chunk cache's document table (:mod:`vbert.chunk_layouts`)."""
        return f"index-{self.spec.fingerprint}"

    def _layout(self, document: Document) -> tuple[DocumentChunks, list[str]]:
        chunks = self.chunking(document.text)
        if not chunks:
            raise DataError(
                f"document {document.id!r} is empty or whitespace-only: there is nothing to index"
            )
        layout = DocumentChunks(
            tuple(c.key for c in chunks),
            tuple(c.tokens for c in chunks),
            tuple(c.start for c in chunks),
            tuple(c.end for c in chunks),
        )
        return layout, [c.text for c in chunks]

    def _embed_and_merge(self, fresh: list[tuple[DocumentRow, Document]], report: IndexReport) -> None:
        """Lay out (by recorded layout, else chunking), embed what is new, and merge ``fresh``."""
        done = embed_documents(
            [doc.text for _, doc in fresh],
            self.embedder,
            self.layout_rule,
            lambda i, _: self._layout(fresh[i][1]),
            self.cache,
            self.batch_size,
            # The chunk table may still hold what a deleted cache lost.
            stored=lambda keys: {
                key: vector for key, (_, vector) in self.store.chunk_rows(keys, False).items()
            },
            need_texts=True,
        )
        for (row, _), layout in zip(fresh, done.layouts, strict=True):
            row.chunk_keys, row.chunk_tokens = list(layout.keys), list(layout.tokens)
            row.chunk_starts, row.chunk_ends = list(layout.starts or ()), list(layout.ends or ())
        report.chunks_embedded += done.embedded
        report.chunks_reused += sum(len(layout.keys) for layout in done.layouts) - done.embedded
        keys = sorted(done.texts)
        self.store.add_chunks(keys, [done.texts[k] for k in keys], np.stack([done.vectors[k] for k in keys]))
        weights = [np.asarray(row.chunk_tokens, dtype=np.float32) for row, _ in fresh]
        merged = merge_sequences(
            self.merger, done.sequences(), weights if getattr(self.merger, "weighted", False) else None
        )
        for (row, _), vector in zip(fresh, merged, strict=True):
            row.vector = vector

    def close(self) -> None:
        self.cache.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
