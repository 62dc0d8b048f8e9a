"""The vector store behind :class:`vbert.Index`: two LanceDB tables, and nothing else knows LanceDB.

Why LanceDB: it is embedded (a folder, no server), stores vectors next to ordinary columns
(the document table needs chunk keys, token counts and timestamps beside each vector), makes
every write one atomic commit of a new table version (a killed writer leaves the previous
version readable — the basis of the index's repair protocol), and searches 10,000 vectors by
brute force in milliseconds, with ANN indexes available when a table grows. sqlite-vec was the
other candidate, but it is a loadable SQLite extension and this project's Python is built
without ``sqlite3.Connection.enable_load_extension``, so it cannot be used here.

Tables (both keyed, every write an idempotent merge or delete):

* ``documents``: one row per document — ``id``, ``source`` (the indexed root it came from),
  ``title``, ``content_hash``, ``chunk_keys``, ``chunk_tokens``, ``chunk_starts``/``chunk_ends``
  (character spans), ``added_at``/``updated_at`` (ISO 8601 UTC) and ``vector`` (the merged one).
  This table is the source of truth.
* ``chunks``: one row per distinct chunk — ``key`` (sha256 of the text), ``text``, ``vector``.
  Derived data: rebuilt from the chunk cache and pruned of rows no document references.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from vbert.errors import ConfigError

os.environ.setdefault("LANCE_LOG", "error")  # Lance's Rust logger warns on every table creation

DOCUMENTS = "documents"
#: Old table versions stay this long after a write, for searches that started before it.
KEEP_VERSIONS = timedelta(minutes=10)
CHUNKS = "chunks"


@dataclass
class DocumentRow:
    """One row of the document table (the vector travels separately as ``vector``)."""

    id: str
    source: str
    title: str
    content_hash: str
    chunk_keys: list[str]
    chunk_tokens: list[int]
    chunk_starts: list[int]
    chunk_ends: list[int]
    added_at: str
    updated_at: str
    vector: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))


def _quote(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _vectors(vectors: np.ndarray, dim: int) -> pa.FixedSizeListArray:
    flat = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim)


class VectorStore:
    """Document and chunk tables of one index folder."""

    def __init__(self, folder: str | Path, dim: int) -> None:
        try:
            import lancedb
        except ImportError as err:
            raise ConfigError("the search index needs LanceDB: pip install 'vbert[index]'") from err

        self.dim = dim
        self._db = lancedb.connect(str(folder))
        vector = pa.list_(pa.float32(), dim)
        self.document_schema = pa.schema(
            [
                ("id", pa.string()),
                ("source", pa.string()),
                ("title", pa.string()),
                ("content_hash", pa.string()),
                ("chunk_keys", pa.list_(pa.string())),
                ("chunk_tokens", pa.list_(pa.int32())),
                ("chunk_starts", pa.list_(pa.int64())),
                ("chunk_ends", pa.list_(pa.int64())),
                ("added_at", pa.string()),
                ("updated_at", pa.string()),
                ("vector", vector),
            ]
        )
        self.chunk_schema = pa.schema([("key", pa.string()), ("text", pa.string()), ("vector", vector)])
        existing = set(self._db.list_tables().tables)
        self.documents = (
            self._db.open_table(DOCUMENTS)
            if DOCUMENTS in existing
            else self._db.create_table(DOCUMENTS, schema=self.document_schema)
        )
        self.chunks = (
            self._db.open_table(CHUNKS)
            if CHUNKS in existing
            else self._db.create_table(CHUNKS, schema=self.chunk_schema)
        )

    # -- documents -------------------------------------------------------------------------------
    def upsert_documents(self, rows: Sequence[DocumentRow]) -> None:
        """Insert or replace ``rows`` by id in one atomic commit."""
        if not rows:
            return
        columns = {name: [getattr(r, name) for r in rows] for name in self.document_schema.names[:-1]}
        columns["vector"] = _vectors(np.stack([r.vector for r in rows]), self.dim)
        table = pa.table(columns, schema=self.document_schema)
        self.documents.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(
            table
        )

    def delete_documents(self, ids: Iterable[str]) -> None:
        ids = sorted(set(ids))
        for start in range(0, len(ids), 500):
            self.documents.delete(f"id IN ({_quote(ids[start : start + 500])})")

    def document_rows(self, with_vectors: bool = False) -> list[DocumentRow]:
        """Every document row (without vectors unless asked)."""
        names = self.document_schema.names if with_vectors else self.document_schema.names[:-1]
        table = self.documents.search().select(names).limit(None).to_arrow()
        rows = []
        for record in table.to_pylist():
            vector = record.pop("vector", None)
            row = DocumentRow(**record)
            if vector is not None:
                row.vector = np.asarray(vector, dtype=np.float32)
            rows.append(row)
        return rows

    def document_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), 500):
            part = self.documents.search().where(f"id IN ({_quote(ids[start : start + 500])})")
            for record in part.select(["id", "vector"]).limit(None).to_arrow().to_pylist():
                found[record["id"]] = np.asarray(record["vector"], dtype=np.float32)
        return found

    def search_documents(self, query: np.ndarray, k: int) -> list[tuple[dict, float]]:
        """The ``k`` documents whose vectors have the highest dot product with ``query`` (unit vectors)."""
        columns = [n for n in self.document_schema.names if n != "vector"] + ["_distance"]
        hits = self.documents.search(np.asarray(query, np.float32)).metric("dot").select(columns).limit(k)
        return [(row, 1.0 - row.pop("_distance")) for row in hits.to_arrow().to_pylist()]

    # -- chunks ----------------------------------------------------------------------------------
    def add_chunks(self, keys: Sequence[str], texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store chunk rows whose keys are not stored yet (one atomic, idempotent commit)."""
        if not len(keys):
            return
        table = pa.table(
            {"key": list(keys), "text": list(texts), "vector": _vectors(vectors, self.dim)},
            schema=self.chunk_schema,
        )
        self.chunks.merge_insert("key").when_not_matched_insert_all().execute(table)

    def chunk_rows(self, keys: Sequence[str], with_text: bool = True) -> dict[str, tuple[str, np.ndarray]]:
        """``key -> (text, vector)`` for the stored chunks among ``keys``."""
        found: dict[str, tuple[str, np.ndarray]] = {}
        unique = sorted(set(keys))
        columns = ["key", "text", "vector"] if with_text else ["key", "vector"]
        for start in range(0, len(unique), 500):
            query = self.chunks.search().where(f"key IN ({_quote(unique[start : start + 500])})")
            table = query.select(columns).limit(None).to_arrow()
            vectors = table["vector"].combine_chunks().flatten().to_numpy().reshape(-1, self.dim)
            texts = table["text"].to_pylist() if with_text else [""] * len(table)
            for key, text, vector in zip(table["key"].to_pylist(), texts, vectors, strict=True):
                found[key] = (text, vector)
        return found

    def chunk_keys(self) -> set[str]:
        return set(self.chunks.search().select(["key"]).limit(None).to_arrow()["key"].to_pylist())

    def delete_chunks(self, keys: Iterable[str]) -> None:
        keys = sorted(set(keys))
        for start in range(0, len(keys), 500):
            self.chunks.delete(f"key IN ({_quote(keys[start : start + 500])})")

    # -- upkeep ----------------------------------------------------------------------------------
    def compact(self) -> None:
        """Merge small fragments and drop table versions older than the current one."""
        for table in (self.documents, self.chunks):
            table.optimize(cleanup_older_than=KEEP_VERSIONS)

    def create_key_index(self) -> None:
        """A B-tree on chunk keys, so snippet lookups stay fast as the chunk table grows."""
        if not any("key" in index.columns for index in self.chunks.list_indices()):
            self.chunks.create_scalar_index("key", replace=True)
