"""Persistent chunk-embedding cache: a SQLite file keyed by (embedder fingerprint, chunk sha256).

Re-encoding a document whose chunks were seen before then costs only the merge. SQLite in
WAL mode makes the file safe for several processes at once. Each row carries a checksum of
its vector, so a damaged row is never returned as a wrong vector; a damaged file is moved
aside and rebuilt with a warning.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vbert.files import vbert_home

SCHEMA_VERSION = 1


def default_cache_path() -> Path:
    """``$VBERT_HOME/chunk-cache.sqlite`` (``~/.cache/vbert`` when ``VBERT_HOME`` is unset)."""
    return vbert_home() / "chunk-cache.sqlite"


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ChunkCache:
    """Chunk vectors by (embedder fingerprint, sha256 of the chunk text)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = self._open_or_rebuild()

    def _open_or_rebuild(self) -> sqlite3.Connection:
        try:
            return self._open()
        except sqlite3.DatabaseError as err:
            broken = self.path.with_name(self.path.name + ".corrupt")
            warnings.warn(
                f"chunk cache {self.path} is unreadable ({err}); moved it to {broken} and starting an empty cache",
                RuntimeWarning,
                stacklevel=3,
            )
            for suffix in ("-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            os.replace(self.path, broken)
            return self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS chunks (fingerprint TEXT NOT NULL, key TEXT NOT NULL, "
                "dim INTEGER NOT NULL, vector BLOB NOT NULL, checksum TEXT NOT NULL, PRIMARY KEY (fingerprint, key))"
            )
            conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            (version,) = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            if int(version) != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {version}, expected {SCHEMA_VERSION}")
            conn.execute("PRAGMA quick_check").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def get_many(self, fingerprint: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for ``texts``, keyed by text sha256; damaged rows are dropped and recomputed."""
        keys = sorted({text_key(t) for t in texts})
        found: dict[str, np.ndarray] = {}
        damaged: list[str] = []
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = self._conn.execute(
                f"SELECT key, dim, vector, checksum FROM chunks WHERE fingerprint = ? AND key IN ({','.join('?' * len(part))})",
                (fingerprint, *part),
            ).fetchall()
            for key, dim, blob, checksum in rows:
                if hashlib.sha256(blob).hexdigest()[:16] != checksum or len(blob) != 4 * dim:
                    damaged.append(key)
                    continue
                found[key] = np.frombuffer(blob, dtype=np.float32).copy()
        if damaged:
            warnings.warn(
                f"{len(damaged)} damaged chunk-cache rows dropped; they will be re-embedded",
                RuntimeWarning,
                stacklevel=2,
            )
            self._conn.executemany(
                "DELETE FROM chunks WHERE fingerprint = ? AND key = ?", [(fingerprint, k) for k in damaged]
            )
        return found

    def put_many(self, fingerprint: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = []
        for text, vector in zip(texts, vectors, strict=True):
            blob = vector.tobytes()
            rows.append(
                (fingerprint, text_key(text), vector.shape[0], blob, hashlib.sha256(blob).hexdigest()[:16])
            )
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ChunkCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
