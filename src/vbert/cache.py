"""Persistent chunk-embedding cache: a SQLite file keyed by (embedder fingerprint, chunk sha256).

Two tables: ``chunks`` holds the vectors; ``documents`` remembers, per document content hash
and chunking rule, the keys and token counts of the document's chunks, so a document seen
before is re-encoded by one lookup and one merge, without cutting it into chunks again.
SQLite in WAL mode makes the file safe for several processes at once. The cache never throws away good
data:

* each row carries a checksum of its vector, so a damaged row is dropped and re-embedded, never
  returned as a wrong vector;
* a file that SQLite reports as corrupt, or that fails ``PRAGMA quick_check``, is moved aside
  (with its ``-wal``/``-shm`` files) to ``<name>.corrupt`` and rebuilt, with a warning;
* a file locked by another process is waited for (with a message), then a
  :class:`~vbert.errors.ResourceError` is raised; nothing is moved or deleted;
* a read-only file (permissions, immutable file, read-only mount) is used read-only: lookups
  work, new chunks are embedded but not stored, with one warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from vbert.errors import ResourceError
from vbert.files import vbert_home

SCHEMA_VERSION = 1
_COLUMNS = {"chunks": ("fingerprint", "key", "dim", "vector", "checksum"), "meta": ("name", "value")}
_DOCUMENT_COLUMNS = ("fingerprint", "chunking", "content_hash", "chunk_keys", "chunk_tokens", "checksum")
#: Seconds to wait for another process's lock before giving up (the first few silently).
DEFAULT_TIMEOUT = 60.0
_SILENT_WAIT = 5.0
_POLL = 0.25
_SIDE_FILES = ("-wal", "-shm")
# SQLite primary result codes (the low byte of extended codes).
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_READONLY_CODES = {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN}
_CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
# A damaged header can also surface as a generic SQLITE_ERROR with one of these messages.
_CORRUPT_MESSAGES = ("unsupported file format", "malformed")

# Autocommit (transactions are explicit), and locks are waited for by busy_timeout and _patiently.
_CONNECT = {"timeout": 0, "uri": True, "isolation_level": None, "check_same_thread": False}
T = TypeVar("T")


def default_cache_path() -> Path:
    """``$VBERT_HOME/chunk-cache.sqlite`` (``~/.cache/vbert`` when ``VBERT_HOME`` is unset)."""
    return vbert_home() / "chunk-cache.sqlite"


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checksum(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class DocumentChunks:
    """What a document was cut into: its chunks' keys (sha256 of the text) and token counts, in order."""

    keys: tuple[str, ...]
    tokens: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.tokens) or not self.keys:
            raise ValueError("a document has at least one chunk, with one token count per chunk key")

    def _columns(self) -> tuple[str, str]:
        return "".join(self.keys), ",".join(map(str, self.tokens))


def _document_checksum(keys: str, tokens: str) -> str:
    return _checksum(f"{keys}|{tokens}".encode())


class _Corrupt(sqlite3.DatabaseError):
    """The file opened but its content is not a healthy cache (quick_check, schema)."""


def _error_kind(err: sqlite3.Error) -> str:
    """``"busy"``, ``"readonly"``, ``"corrupt"`` or ``"other"`` for an sqlite3 error."""
    if isinstance(err, _Corrupt):
        return "corrupt"
    code = getattr(err, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in _BUSY_CODES:
        return "busy"
    if primary in _READONLY_CODES:
        return "readonly"
    if primary in _CORRUPT_CODES or any(text in str(err) for text in _CORRUPT_MESSAGES):
        return "corrupt"
    return "other"


def _decode_text(data: bytes) -> str:
    # Damaged bytes in a TEXT column must not raise; such a row then fails its checks.
    return data.decode("utf-8", errors="replace")


class ChunkCache:
    """Chunk vectors by (embedder fingerprint, sha256 of the chunk text).

    Args:
        path: the SQLite file (default :func:`default_cache_path`).
        timeout: seconds to wait for a lock held by another process before raising
            :class:`~vbert.errors.ResourceError`.

    ``read_only`` tells whether new vectors are stored.
    """

    def __init__(self, path: str | Path | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.timeout = timeout
        self.read_only = False
        if self._writable():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        else:
            self._become_read_only("no write permission")
        self._conn = self._open_or_rebuild()

    # -- opening -----------------------------------------------------------------------------
    def _writable(self) -> bool:
        folder = self.path.parent
        if self.path.exists():
            # WAL mode creates -wal/-shm beside the file, so the folder must be writable too.
            return os.access(self.path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK)
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        return existing is None or os.access(existing, os.W_OK | os.X_OK)

    def _open_or_rebuild(self) -> sqlite3.Connection:
        try:
            return self._patiently("open", self._open)
        except sqlite3.DatabaseError as err:
            kind = _error_kind(err)
            if kind == "readonly" and not self.read_only:
                self._become_read_only(err)
            elif kind == "corrupt" and not self.read_only:
                self._quarantine(err)
            else:
                raise ResourceError(f"cannot open the chunk cache {self.path}: {err}") from err
        try:
            return self._patiently("open", self._open)
        except sqlite3.DatabaseError as err:
            raise ResourceError(f"cannot open the chunk cache {self.path}: {err}") from err

    def _open(self) -> sqlite3.Connection:
        if self.read_only:
            conn = self._connect_read_only()
        else:
            conn = sqlite3.connect(self.path.resolve().as_uri(), **_CONNECT)
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        uri = self.path.resolve().as_uri()
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro", **_CONNECT)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as err:
            if _error_kind(err) == "busy":
                raise
            # A WAL file whose -shm cannot be created (read-only folder or mount): read it as an
            # immutable snapshot, which needs no lock files.
            return sqlite3.connect(f"{uri}?immutable=1", **_CONNECT)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.text_factory = _decode_text
        conn.execute(f"PRAGMA busy_timeout = {int(min(_POLL, self.timeout) * 1000)}")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not self.read_only:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if not {"chunks", "meta", "documents"} <= tables:
                self._create_schema(conn)
                tables |= {"chunks", "meta", "documents"}
        if {"chunks", "meta"} <= tables:
            present = {**_COLUMNS, **({"documents": _DOCUMENT_COLUMNS} if "documents" in tables else {})}
            for table, expected in present.items():
                columns = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))
                if columns != expected:
                    raise _Corrupt(f"table {table} has columns {columns}, expected {expected}")
            row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            if row is None or row[0] != str(SCHEMA_VERSION):
                raise _Corrupt(f"schema version {row and row[0]}, expected {SCHEMA_VERSION}")
        elif tables - {"documents"}:
            raise _Corrupt(f"it holds tables {sorted(tables)}, not a vbert chunk cache")
        problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            found = " ".join(" ".join(map(str, problems[:3])).split())
            raise _Corrupt(f"PRAGMA quick_check: {found}")

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS chunks (fingerprint TEXT NOT NULL, key TEXT NOT NULL, "
                "dim INTEGER NOT NULL, vector BLOB NOT NULL, checksum TEXT NOT NULL, PRIMARY KEY (fingerprint, key))"
            )
            conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            # Added after schema version 1 without changing its meaning: older files gain it on open.
            conn.execute(
                "CREATE TABLE IF NOT EXISTS documents (fingerprint TEXT NOT NULL, chunking TEXT NOT NULL, "
                "content_hash TEXT NOT NULL, chunk_keys TEXT NOT NULL, chunk_tokens TEXT NOT NULL, "
                "checksum TEXT NOT NULL, PRIMARY KEY (fingerprint, chunking, content_hash))"
            )
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    # -- failure handling --------------------------------------------------------------------
    def _patiently(self, action: str, work: Callable[[], T]) -> T:
        """Run ``work``, retrying while another process holds the lock, up to ``timeout`` seconds."""
        started = time.monotonic()
        announced = False
        while True:
            try:
                try:
                    return work()
                except UnicodeDecodeError as err:  # sqlite3 decoding a damaged schema or error message
                    raise _Corrupt(f"damaged text in the database ({err})") from err
            except sqlite3.DatabaseError as err:
                if _error_kind(err) != "busy":
                    raise
                waited = time.monotonic() - started
                if waited >= self.timeout:
                    raise ResourceError(
                        f"the chunk cache {self.path} stayed locked by another process for {waited:.0f} s "
                        f"({action}); wait for that process to finish, or use another cache file or none "
                        "(--cache / --no-cache in the CLI, cache= in the API). Nothing was changed."
                    ) from err
                if not announced and waited >= min(_SILENT_WAIT, self.timeout / 2):
                    announced = True
                    warnings.warn(
                        f"the chunk cache {self.path} is locked by another process; waiting up to "
                        f"{self.timeout:.0f} s",
                        RuntimeWarning,
                        stacklevel=4,
                    )
                time.sleep(min(_POLL / 5, max(self.timeout - waited, 0.0)))

    def _become_read_only(self, err: BaseException | str) -> None:
        self.read_only = True
        warnings.warn(
            f"the chunk cache {self.path} is read-only ({err}); cached chunks are used, but new chunk "
            "vectors are embedded without being stored",
            RuntimeWarning,
            stacklevel=4,
        )

    def _quarantine(self, err: BaseException) -> None:
        broken = self.path.with_name(self.path.name + ".corrupt")
        warnings.warn(
            f"chunk cache {self.path} is corrupt ({err}); moved it to {broken} and starting an empty cache",
            RuntimeWarning,
            stacklevel=4,
        )
        for suffix in ("", *_SIDE_FILES):
            source = Path(str(self.path) + suffix)
            if source.exists():
                os.replace(source, Path(str(broken) + suffix))

    def _recover(self, err: sqlite3.DatabaseError) -> None:
        """After a corruption error during use: quarantine and reopen, or re-raise."""
        if _error_kind(err) != "corrupt" or self.read_only:
            raise ResourceError(f"the chunk cache {self.path} failed: {err}") from err
        self._conn.close()
        self._quarantine(err)
        self._conn = self._patiently("open", self._open)

    # -- use ---------------------------------------------------------------------------------
    def get_many(self, fingerprint: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for ``texts``, keyed by text sha256; damaged rows are dropped and recomputed."""
        try:
            return self._patiently("lookup", lambda: self._get_many(fingerprint, texts))
        except sqlite3.DatabaseError as err:
            self._recover(err)
            return {}

    def get_vectors(self, fingerprint: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """:meth:`get_many` by chunk key (sha256 of the text) instead of text."""
        unique = sorted(set(keys))
        try:
            return self._patiently("lookup", lambda: self._get_keys(fingerprint, unique))
        except sqlite3.DatabaseError as err:
            self._recover(err)
            return {}

    def _get_many(self, fingerprint: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self._get_keys(fingerprint, sorted({text_key(t) for t in texts}))

    def _get_keys(self, fingerprint: str, keys: list[str]) -> dict[str, np.ndarray]:
        if not self._has_table():
            return {}
        wanted = set(keys)
        found: dict[str, np.ndarray] = {}
        damaged: list[str] = []
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = self._conn.execute(
                f"SELECT key, dim, vector, checksum FROM chunks WHERE fingerprint = ? AND key IN ({','.join('?' * len(part))})",
                (fingerprint, *part),
            ).fetchall()
            for key, dim, blob, checksum in rows:
                if (
                    key not in wanted
                    or not isinstance(blob, bytes)
                    or _checksum(blob) != checksum
                    or len(blob) != 4 * dim
                ):
                    damaged.append(key)
                    continue
                found[key] = np.frombuffer(blob, dtype=np.float32).copy()
        if damaged:
            warnings.warn(
                f"{len(damaged)} damaged chunk-cache rows dropped; they will be re-embedded",
                RuntimeWarning,
                stacklevel=3,
            )
            if not self.read_only:
                self._conn.executemany(
                    "DELETE FROM chunks WHERE fingerprint = ? AND key = ?",
                    [(fingerprint, k) for k in damaged],
                )
        return found

    def put_many(self, fingerprint: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors for ``texts``; a read-only cache stores nothing."""
        if self.read_only:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = []
        for text, vector in zip(texts, vectors, strict=True):
            blob = vector.tobytes()
            rows.append((fingerprint, text_key(text), vector.shape[0], blob, _checksum(blob)))
        try:
            self._patiently("store", lambda: self._put_rows(rows))
        except sqlite3.DatabaseError as err:
            if _error_kind(err) == "readonly":
                self._become_read_only(err)
                return
            self._recover(err)
            try:
                self._patiently("store", lambda: self._put_rows(rows))
            except sqlite3.DatabaseError as again:
                raise ResourceError(f"the chunk cache {self.path} failed: {again}") from again

    def _put_rows(self, rows: list[tuple]) -> None:
        self._write("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?)", rows)

    # -- documents -----------------------------------------------------------------------------
    def get_documents(
        self, fingerprint: str, chunking: str, content_hashes: Iterable[str]
    ) -> dict[str, DocumentChunks]:
        """The recorded chunks of documents by content hash, for one embedder and chunking rule.

        ``chunking`` names the rule that cut the documents (e.g. ``"split-v1:512"``): a document
        cut another way has other chunks. Damaged rows are dropped (the document is cut again).
        """
        unique = sorted(set(content_hashes))
        try:
            return self._patiently("lookup", lambda: self._get_documents(fingerprint, chunking, unique))
        except sqlite3.DatabaseError as err:
            self._recover(err)
            return {}

    def _get_documents(self, fingerprint: str, chunking: str, hashes: list[str]) -> dict[str, DocumentChunks]:
        if not self._has_table("documents"):
            return {}
        found: dict[str, DocumentChunks] = {}
        damaged: list[str] = []
        for start in range(0, len(hashes), 500):
            part = hashes[start : start + 500]
            rows = self._conn.execute(
                "SELECT content_hash, chunk_keys, chunk_tokens, checksum FROM documents WHERE fingerprint = ? "
                f"AND chunking = ? AND content_hash IN ({','.join('?' * len(part))})",
                (fingerprint, chunking, *part),
            ).fetchall()
            for content_hash, keys, tokens, checksum in rows:
                try:
                    if _document_checksum(keys, tokens) != checksum or len(keys) % 64:
                        raise ValueError(checksum)
                    found[content_hash] = DocumentChunks(
                        tuple(keys[i : i + 64] for i in range(0, len(keys), 64)),
                        tuple(int(t) for t in tokens.split(",")),
                    )
                except (ValueError, TypeError):
                    damaged.append(content_hash)
        if damaged and not self.read_only:
            self._conn.executemany(
                "DELETE FROM documents WHERE fingerprint = ? AND chunking = ? AND content_hash = ?",
                [(fingerprint, chunking, h) for h in damaged],
            )
        return found

    def put_documents(self, fingerprint: str, chunking: str, documents: Mapping[str, DocumentChunks]) -> None:
        """Record documents' chunks by content hash (see :meth:`get_documents`); read-only: nothing."""
        if self.read_only or not documents:
            return
        rows = []
        for content_hash, chunks in documents.items():
            keys, tokens = chunks._columns()
            rows.append((fingerprint, chunking, content_hash, keys, tokens, _document_checksum(keys, tokens)))
        sql = "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?)"
        try:
            self._patiently("store", lambda: self._write(sql, rows))
        except sqlite3.DatabaseError as err:
            if _error_kind(err) == "readonly":
                self._become_read_only(err)
                return
            raise ResourceError(f"the chunk cache {self.path} failed: {err}") from err

    def _write(self, sql: str, rows: list[tuple]) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(sql, rows)
            self._conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise

    def _has_table(self, name: str = "chunks") -> bool:
        # A read-only cache may be a file that was never written (no tables yet), or written by
        # a vbert without the documents table.
        return not self.read_only or bool(
            self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone()
        )

    def __len__(self) -> int:
        if not self._has_table():
            return 0
        return self._patiently(
            "count", lambda: self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        )

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ChunkCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
