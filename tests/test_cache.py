import multiprocessing
import sqlite3

import numpy as np
import pytest

from vbert.cache import ChunkCache


def test_round_trip_and_fingerprint_isolation(tmp_path):
    cache = ChunkCache(tmp_path / "c.sqlite")
    vectors = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    cache.put_many("fp-a", ["one", "two"], vectors)
    found = cache.get_many("fp-a", ["two", "one", "three"])
    assert len(found) == 2
    assert len(cache.get_many("fp-b", ["one"])) == 0
    cache.close()
    reopened = ChunkCache(tmp_path / "c.sqlite")
    assert len(reopened) == 2


def _writer(path: str, worker: int) -> None:
    cache = ChunkCache(path)
    for i in range(20):
        cache.put_many("fp", [f"w{worker}-{i}"], np.full((1, 4), worker, np.float32))
    cache.close()


def test_two_processes_write_at_once(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ChunkCache(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)  # each child imports torch through vbert; slow on a loaded machine
        assert p.exitcode == 0
    assert len(ChunkCache(path)) == 40


def test_corrupt_file_is_moved_aside_and_rebuilt(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.warns(RuntimeWarning, match="unreadable"):
        cache = ChunkCache(path)
    assert len(cache) == 0
    assert (tmp_path / "c.sqlite.corrupt").exists()


def test_damaged_row_is_never_returned(tmp_path):
    cache = ChunkCache(tmp_path / "c.sqlite")
    cache.put_many("fp", ["a"], np.ones((1, 4), np.float32))
    cache.close()
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:
        conn.execute("UPDATE chunks SET vector = ?", (np.zeros(4, np.float32).tobytes(),))
    cache = ChunkCache(tmp_path / "c.sqlite")
    with pytest.warns(RuntimeWarning, match="damaged"):
        assert cache.get_many("fp", ["a"]) == {}
    assert len(cache) == 0
