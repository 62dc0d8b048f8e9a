"""The write protocol of an index folder: one writer at a time, and a journal that marks a write in progress.

A write (add / update / remove / sync) runs in this order, each step one atomic commit:

1. take the folder's writer lock (``flock``; the kernel drops it when the process dies);
2. if ``journal.json`` exists, the previous writer died mid-write: repair first (below);
3. write ``journal.json`` (what is about to happen);
4. per batch of documents: chunk vectors into the chunk cache (SQLite, committed), then into
   the chunk table, then the documents' rows into the document table — that last commit is
   the moment the batch is in the index;
5. delete removed documents, prune chunk rows no document references, compact;
6. remove ``journal.json``.

A kill at any point leaves the document table at its last commit: every row in it is whole
(chunks were stored before it), documents not yet committed are simply re-done by the next
run (their chunk vectors come from the cache, so nothing embedded is lost), and upserts by id
never duplicate. Repair removes chunk rows left without a document and drops document rows
whose chunk rows are missing (the next sync re-adds them).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from vbert.errors import ResourceError
from vbert.files import atomic_write_json, read_json

JOURNAL = "journal.json"
LOCK = "writer.lock"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def writer_lock(folder: Path, wait: bool = True) -> Iterator[None]:
    """Hold the index folder's writer lock; a second writer waits (or fails with ``wait=False``)."""
    with open(folder / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as err:
            raise ResourceError(f"another process is writing to the index {folder}; try again later") from err
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def interrupted_write(folder: Path) -> dict | None:
    """The journal of a write that did not finish, or ``None``."""
    path = folder / JOURNAL
    if not path.exists():
        return None
    try:
        return read_json(path, "index journal")
    except (ValueError, OSError):  # a torn journal still means "a write was interrupted"
        return {"operation": "unknown"}


def begin(folder: Path, operation: str, **details: object) -> None:
    atomic_write_json(
        folder / JOURNAL, {"operation": operation, "pid": os.getpid(), "started": utc_now(), **details}
    )


def finish(folder: Path) -> None:
    (folder / JOURNAL).unlink(missing_ok=True)
