import hashlib
import multiprocessing
import os
import shutil
import sqlite3
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from vbert.cache import ChunkCache, DocumentChunks, text_key
from vbert.errors import ResourceError
from vbert.long_document import LongDocumentEncoder
from vbert.mergers import MeanPoolMerger


def test_round_trip_and_fingerprint_isolation(tmp_path):
    cache = ChunkCache(tmp_path / "c.sqlite")
    vectors = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    cache.put_many("fp-a", ["one", "two"], vectors)
    found = cache.get_many("fp-a", ["two", "one", "three"])
    assert set(found) == {text_key("one"), text_key("two")}
    np.testing.assert_array_equal(found[text_key("one")], vectors[0])
    np.testing.assert_array_equal(found[text_key("two")], vectors[1])
    assert len(cache.get_many("fp-b", ["one"])) == 0
    cache.close()
    reopened = ChunkCache(tmp_path / "c.sqlite")
    assert len(reopened) == 2
    np.testing.assert_array_equal(reopened.get_many("fp-a", ["two"])[text_key("two")], vectors[1])


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
    with pytest.warns(RuntimeWarning, match="corrupt"):
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


def _filled_cache(path, rows=200, dim=384):
    vectors = np.random.default_rng(1).standard_normal((rows, dim)).astype(np.float32)
    texts = [f"chunk {i}" for i in range(rows)]
    with ChunkCache(path) as cache:
        cache.put_many("fp", texts, vectors)
    return texts, vectors


def test_a_locked_cache_is_waited_for_then_a_clear_error_and_nothing_is_moved(tmp_path):
    path = tmp_path / "c.sqlite"
    texts, vectors = _filled_cache(path)
    before = sorted(p.name for p in tmp_path.iterdir())
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for as long as it likes
    try:
        cache = ChunkCache(path, timeout=1.0)
        found = cache.get_many("fp", texts[:3])  # WAL readers are not blocked by a writer
        np.testing.assert_array_equal(found[text_key(texts[0])], vectors[0])
        started = time.monotonic()
        with (
            pytest.warns(RuntimeWarning, match="locked by another process; waiting"),
            pytest.raises(ResourceError, match="stayed locked .* Nothing was changed"),
        ):
            cache.put_many("fp", ["new chunk"], vectors[:1])
        assert 1.0 <= time.monotonic() - started < 10
        cache.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not list(tmp_path.glob("*.corrupt*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    with ChunkCache(path) as cache:
        assert len(cache) == len(texts)


def test_a_cache_locked_in_rollback_mode_cannot_even_be_read_and_is_left_alone(tmp_path):
    path = tmp_path / "c.sqlite"
    with sqlite3.connect(path, isolation_level=None) as conn:  # a plain rollback-journal database
        conn.execute("CREATE TABLE t (x)")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with (
            pytest.warns(RuntimeWarning, match="waiting"),
            pytest.raises(ResourceError, match="stayed locked"),
        ):
            ChunkCache(path, timeout=0.5)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert path.exists() and not list(tmp_path.glob("*.corrupt*"))


def test_garbage_inside_the_file_is_detected_quarantined_and_rebuilt(tmp_path, fake_embedder):
    path = tmp_path / "c.sqlite"
    documents = [" ".join(f"w{i}x{j}" for j in range(150)) for i in range(40)]
    with ChunkCache(path) as cache:
        expected = LongDocumentEncoder(fake_embedder, MeanPoolMerger(), chunk_tokens=8, cache=cache).encode(
            documents
        )
    assert path.stat().st_size > 200_000
    with open(path, "r+b") as handle:  # 4 KiB of garbage in the middle of the file
        handle.seek(100_000)
        handle.write(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.warns(RuntimeWarning, match="is corrupt .*moved it to"):
        cache = ChunkCache(path)
    assert (tmp_path / "c.sqlite.corrupt").exists()
    assert len(cache) == 0
    again = LongDocumentEncoder(fake_embedder, MeanPoolMerger(), chunk_tokens=8, cache=cache).encode(
        documents
    )
    np.testing.assert_array_equal(again, expected)
    assert len(cache) > 0
    cache.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ChunkCache(path).close()  # the rebuilt file is healthy


def _use_read_only_cache(folder: str, texts: list[str], report) -> None:
    if os.geteuid() == 0:
        os.setuid(65534)  # root ignores file permissions; check as an ordinary user
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = ChunkCache(os.path.join(folder, "c.sqlite"))
        found = cache.get_many("fp", texts[:5] + ["not cached"])
        cache.put_many("fp", ["new one"], np.ones((1, 384), np.float32))
        cache.put_many("fp", ["new two"], np.ones((1, 384), np.float32))
        report.put((cache.read_only, sorted(found), len(cache), [str(w.message) for w in caught]))


def test_a_read_only_cache_is_used_read_only(tmp_path):
    folder = tempfile.mkdtemp(prefix="vbert-ro-")  # outside pytest's private 0700 folders
    try:
        texts, _ = _filled_cache(os.path.join(folder, "c.sqlite"))
        os.chmod(os.path.join(folder, "c.sqlite"), 0o444)
        os.chmod(folder, 0o555)
        context = multiprocessing.get_context("fork")
        report = context.Queue()
        child = context.Process(target=_use_read_only_cache, args=(folder, texts, report))
        child.start()
        read_only, found, count, messages = report.get(timeout=120)
        child.join(60)
        assert child.exitcode == 0
        assert read_only
        assert found == sorted(text_key(t) for t in texts[:5])
        assert count == len(texts)
        assert len(messages) == 1 and "read-only" in messages[0] and "without being stored" in messages[0]
        assert sorted(os.listdir(folder)) == ["c.sqlite"]
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder)


def test_fuzzed_cache_files_never_give_a_wrong_vector(tmp_path):
    """Damage anywhere in the file: the cache opens (quarantining if needed) and returns only true vectors."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    texts, vectors = _filled_cache(tmp_path / "good.sqlite", rows=60, dim=32)
    original = (tmp_path / "good.sqlite").read_bytes()
    truth = {text_key(t): v for t, v in zip(texts, vectors, strict=True)}

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(offset=st.integers(0, len(original) - 1), patch=st.binary(min_size=1, max_size=64))
    def check(offset, patch) -> None:
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        data = bytearray(original)
        data[offset : offset + len(patch)] = patch
        (folder / "c.sqlite").write_bytes(bytes(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            with ChunkCache(folder / "c.sqlite") as cache:
                found = cache.get_many("fp", texts)
                for key, vector in found.items():
                    np.testing.assert_array_equal(vector, truth[key])
                cache.put_many("fp", texts[:2], vectors[:2])  # still writable after any recovery
        shutil.rmtree(folder)

    check()


def test_document_table_round_trip_and_older_files_gain_it(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)  # a cache written before the documents table existed
    conn.execute(
        "CREATE TABLE chunks (fingerprint TEXT NOT NULL, key TEXT NOT NULL, dim INTEGER NOT NULL, "
        "vector BLOB NOT NULL, checksum TEXT NOT NULL, PRIMARY KEY (fingerprint, key))"
    )
    conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.commit()
    conn.close()
    cache = ChunkCache(path)
    record = DocumentChunks((text_key("a"), text_key("b")), (7, 3))
    cache.put_documents("fp", "split-v1:50", {"hash-1": record})
    assert cache.get_documents("fp", "split-v1:50", ["hash-1", "hash-2"]) == {"hash-1": record}
    assert cache.get_documents("fp", "split-v1:40", ["hash-1"]) == {}
    assert cache.get_documents("other", "split-v1:50", ["hash-1"]) == {}
    vectors = np.eye(2, 4, dtype=np.float32)
    cache.put_many("fp", ["a", "b"], vectors)
    found = cache.get_vectors("fp", record.keys)
    np.testing.assert_array_equal(np.stack([found[k] for k in record.keys]), vectors)
    with pytest.raises(ValueError, match="one token count"):
        DocumentChunks((text_key("a"),), (1, 2))


def _old_file_with_documents(path: Path) -> None:
    """A cache written by a vbert with the documents table but before the spans table existed."""
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE chunks (fingerprint TEXT NOT NULL, key TEXT NOT NULL, dim INTEGER NOT NULL, "
        "vector BLOB NOT NULL, checksum TEXT NOT NULL, PRIMARY KEY (fingerprint, key))"
    )
    conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute(
        "CREATE TABLE documents (fingerprint TEXT NOT NULL, chunking TEXT NOT NULL, "
        "content_hash TEXT NOT NULL, chunk_keys TEXT NOT NULL, chunk_tokens TEXT NOT NULL, checksum TEXT NOT NULL, "
        "PRIMARY KEY (fingerprint, chunking, content_hash))"
    )
    keys, tokens = text_key("a") + text_key("b"), "7,3"
    checksum = hashlib.sha256(f"{keys}|{tokens}".encode()).hexdigest()[:16]
    conn.execute("INSERT INTO documents VALUES ('fp', 'rule', 'hash-1', ?, ?, ?)", (keys, tokens, checksum))
    conn.commit()
    conn.close()


def test_document_spans_round_trip_and_are_dropped_when_damaged(tmp_path):
    path = tmp_path / "old.sqlite"
    _old_file_with_documents(path)
    old_columns = sqlite3.connect(path).execute("PRAGMA table_info(documents)").fetchall()
    cache = ChunkCache(path)
    plain = DocumentChunks((text_key("a"), text_key("b")), (7, 3))
    assert cache.get_documents("fp", "rule", ["hash-1"]) == {"hash-1": plain}  # an old row: no spans
    spanned = DocumentChunks(plain.keys, plain.tokens, (0, 2), (1, 3))
    cache.put_documents("fp", "rule", {"hash-1": spanned, "hash-2": plain})
    assert cache.get_documents("fp", "rule", ["hash-1", "hash-2"]) == {"hash-1": spanned, "hash-2": plain}
    # The documents table keeps its columns (a vbert that predates the spans table still opens the file).
    assert sqlite3.connect(path).execute("PRAGMA table_info(documents)").fetchall() == old_columns
    # Damaged spans lose only the spans; the layout stays, and recording it again replaces them.
    cache._conn.execute("UPDATE document_spans SET chunk_ends = '1,4' WHERE content_hash = 'hash-1'")
    assert cache.get_documents("fp", "rule", ["hash-1"]) == {"hash-1": plain}
    cache.put_documents("fp", "rule", {"hash-1": spanned})
    assert cache.get_documents("fp", "rule", ["hash-1"]) == {"hash-1": spanned}
    # Recording a layout without spans removes the old spans.
    cache.put_documents("fp", "rule", {"hash-1": plain})
    assert cache.get_documents("fp", "rule", ["hash-1"]) == {"hash-1": plain}
    with pytest.raises(ValueError, match="spans"):
        DocumentChunks(plain.keys, plain.tokens, (0,), (1,))
    with pytest.raises(ValueError, match="spans"):
        DocumentChunks(plain.keys, plain.tokens, (0, 2), None)


def test_a_read_only_cache_without_the_spans_table_reads_layouts(tmp_path, monkeypatch):
    path = tmp_path / "old.sqlite"
    _old_file_with_documents(path)
    monkeypatch.setattr(ChunkCache, "_writable", lambda self: False)
    with pytest.warns(RuntimeWarning, match="read-only"):
        cache = ChunkCache(path)
    assert cache.read_only
    expected = DocumentChunks((text_key("a"), text_key("b")), (7, 3))
    assert cache.get_documents("fp", "rule", ["hash-1"]) == {"hash-1": expected}
    cache.put_documents("fp", "rule", {"hash-2": expected})  # read-only: stores nothing
    assert cache.get_documents("fp", "rule", ["hash-2"]) == {}
