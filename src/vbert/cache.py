"""Persistent chunk-embedding cache: a SQLite file keyed by (embedder fingerprint, chunk sha256).

``chunks`` holds the vectors; ``documents`` (and ``document_spans``) the chunk layout of each
document content and chunking rule, so a document seen before is re-encoded without being cut
into chunks again (:mod:`vbert.chunk_layouts`). SQLite in WAL mode makes the file safe for several
processes at once. The cache never throws away good data:

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from vbert.errors import ResourceError
from vbert.files import vbert_home

SCHEMA_VERSION = 1
_COLUMNS = {"chunks": ("fingerprint", "key", "dim", "vector", "checksum"), "meta": ("name", "value")}
_DOCUMENT_COLUMNS = ("fingerprint", "chunking", "content_hash", "chunk_keys", "chunk_tokens", "checksum")
_SPAN_COLUMNS = ("fingerprint", "chunking", "content_hash", "chunk_starts", "chunk_ends", "checksum")
_DOCUMENT_TABLES = {"documents": _DOCUMENT_COLUMNS, "document_spans": _SPAN_COLUMNS}
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
    """What a document was cut into: its chunks' keys (sha256 of the text) and token counts, in order.

    ``starts``/``ends`` are the chunks' character spans ``[start, end)`` in the document when the
    chunks are pieces of its text (the index's content-defined chunks), else ``None``.
    """

    keys: tuple[str, ...]
    tokens: tuple[int, ...]
    starts: tuple[int, ...] | None = None
    ends: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.tokens) or not self.keys:
            raise ValueError("a document has at least one chunk, with one token count per chunk key")
        starts, ends = self.starts or (), self.ends or ()
        if (self.starts is None) != (self.ends is None) or (
            self.starts is not None and not len(starts) == len(ends) == len(self.keys)
        ):
            raise ValueError("a document's chunk spans are one [start, end) per chunk key, or none")

    def _columns(self) -> tuple[str, ...]:
        """Table columns: the keys, the token counts and, with spans, the starts and the ends."""
        spans = () if self.starts is None else (self.starts, self.ends or ())
        return "".join(self.keys), *(",".join(map(str, numbers)) for numbers in (self.tokens, *spans))


def _document_checksum(*columns: str) -> str:
    # The spans' checksum covers the keys and token counts too, so spans never join another layout.
    return _checksum("|".join(columns).encode())


def _numbers(column: str) -> tuple[int, ...]:
    return tuple(int(n) for n in column.split(","))


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
            if not {"chunks", "meta", *_DOCUMENT_TABLES} <= tables:
                self._create_schema(conn)
                tables |= {"chunks", "meta", *_DOCUMENT_TABLES}
        if {"chunks", "meta"} <= tables:
            present = {**_COLUMNS, **{t: c for t, c in _DOCUMENT_TABLES.items() if t in tables}}
            for table, expected in present.items():
                columns = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))
                if columns != expected:
                    raise _Corrupt(f"table {table} has columns {columns}, expected {expected}")
            row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            if row is None or row[0] != str(SCHEMA_VERSION):
                raise _Corrupt(f"schema version {row and row[0]}, expected {SCHEMA_VERSION}")
        elif tables - set(_DOCUMENT_TABLES):
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
            # Added after schema version 1 without changing its meaning: older files gain them on open,
            # and a vbert that predates a table ignores it (spans are a table of their own for that).
            for table, columns in _DOCUMENT_TABLES.items():
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(c + ' TEXT NOT NULL' for c in columns)}, "
                    "PRIMARY KEY (fingerprint, chunking, content_hash))"
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
        return self.get_vectors(fingerprint, map(text_key, texts))

    def get_vectors(self, fingerprint: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """:meth:`get_many` by chunk key (sha256 of the text) instead of text."""
        unique = sorted(set(keys))
        try:
            return self._patiently("lookup", lambda: self._get_keys(fingerprint, unique))
        except sqlite3.DatabaseError as err:
            self._recover(err)
            return {}

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
        self._write(("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?)", rows))

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
        spans = (
            "s.chunk_starts, s.chunk_ends, s.checksum FROM documents d LEFT JOIN document_spans s "
            "USING (fingerprint, chunking, content_hash)"
            if self._has_table("document_spans")
            else "NULL, NULL, NULL FROM documents d"
        )
        found: dict[str, DocumentChunks] = {}
        damaged: list[str] = []
        for start in range(0, len(hashes), 500):
            part = hashes[start : start + 500]
            rows = self._conn.execute(
                f"SELECT d.content_hash, d.chunk_keys, d.chunk_tokens, d.checksum, {spans} WHERE "
                f"d.fingerprint = ? AND d.chunking = ? AND d.content_hash IN ({','.join('?' * len(part))})",
                (fingerprint, chunking, *part),
            ).fetchall()
            for content_hash, keys, tokens, checksum, starts, ends, spans_checksum in rows:
                try:
                    if _document_checksum(keys, tokens) != checksum or len(keys) % 64:
                        raise ValueError(checksum)
                    chunks = DocumentChunks(
                        tuple(keys[i : i + 64] for i in range(0, len(keys), 64)), _numbers(tokens)
                    )
                except (ValueError, TypeError):
                    damaged.append(content_hash)
                    continue
                found[content_hash] = chunks
                # Damaged spans lose only the spans; recording the document again replaces them.
                with contextlib.suppress(ValueError, TypeError):
                    if (
                        starts is not None
                        and _document_checksum(keys, tokens, starts, ends) == spans_checksum
                    ):
                        found[content_hash] = replace(chunks, starts=_numbers(starts), ends=_numbers(ends))
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
        names, rows, spans = [], [], []
        for content_hash, chunks in documents.items():
            names.append((fingerprint, chunking, content_hash))
            keys, tokens, *span_columns = chunks._columns()
            rows.append((*names[-1], keys, tokens, _document_checksum(keys, tokens)))
            if span_columns:
                spans.append((*names[-1], *span_columns, _document_checksum(keys, tokens, *span_columns)))
        statements = [
            ("INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?)", rows),
            ("DELETE FROM document_spans WHERE fingerprint = ? AND chunking = ? AND content_hash = ?", names),
            ("INSERT INTO document_spans VALUES (?, ?, ?, ?, ?, ?)", spans),
        ]
        try:
            self._patiently("store", lambda: self._write(*statements))
        except sqlite3.DatabaseError as err:
            if _error_kind(err) == "readonly":
                self._become_read_only(err)
                return
            raise ResourceError(f"the chunk cache {self.path} failed: {err}") from err

    def _write(self, *statements: tuple[str, list[tuple]]) -> None:
        """Run ``(sql, rows)`` statements in one transaction."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in statements:
                self._conn.executemany(sql, rows)
            self._conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise

    def _has_table(self, name: str = "chunks") -> bool:
        # A read-only cache may be a file never written (no tables), or by a vbert without some tables.
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
