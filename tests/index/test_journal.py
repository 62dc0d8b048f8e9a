"""kill -9 at several points of a write; the next run repairs the index with nothing lost and no duplicates."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.index_corpus import make_document
from tests.fixtures.index_crash_worker import open_index
from vbert.index import read_path

WORKER = Path(__file__).resolve().parents[1] / "fixtures" / "index_crash_worker.py"


def change(corpus: Path) -> None:
    """Edit one file, rename one, delete one, add two: every kind of write."""
    (corpus / "doc2.md").write_text(make_document(2).replace(".", " edited here.", 1))
    (corpus / "doc3.md").rename(corpus / "doc3-renamed.md")
    (corpus / "doc4.md").unlink()
    for seed in (70, 71):
        (corpus / f"new{seed}.md").write_text(make_document(seed))


def state(index):
    rows = index.store.document_rows()
    return sorted(r.id for r in rows), index.store.document_vectors([r.id for r in rows])


@pytest.mark.parametrize(
    ("target", "when", "call"),
    [
        ("vbert.cache:ChunkCache.put_many", "after", 1),
        pytest.param("vbert.index.store:VectorStore.add_chunks", "after", 2, marks=pytest.mark.slow),
        ("vbert.index.store:VectorStore.upsert_documents", "after", 1),
        pytest.param("vbert.index.store:VectorStore.delete_documents", "before", 1, marks=pytest.mark.slow),
        ("vbert.index.store:VectorStore.compact", "before", 1),
    ],
)
def test_killed_write_is_repaired_by_the_next_run(tmp_path, corpus, target, when, call):
    folder = tmp_path / "idx"
    sources = [str(corpus.resolve())]
    open_index(folder).sync(read_path(corpus), sources)
    shutil.copytree(folder, tmp_path / "clean")
    change(corpus)
    clean = open_index(tmp_path / "clean")
    embedded_by_a_clean_run = clean.sync(read_path(corpus), sources).chunks_embedded
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path.cwd() / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(
        [sys.executable, str(WORKER), str(folder), str(corpus), target, when, str(call)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == -9, run.stderr[-2000:]
    assert (folder / "journal.json").exists()

    index = open_index(folder)
    report = index.sync(read_path(corpus), sources)
    assert report.repaired
    reference = open_index(tmp_path / "reference")
    reference.sync(read_path(corpus), sources)
    ids, vectors = state(index)
    expected_ids, expected = state(reference)
    assert ids == expected_ids and len(ids) == len(index) == 7  # no duplicates, nothing missing
    assert all(np.allclose(vectors[i], expected[i], atol=1e-6) for i in ids)
    assert index.store.chunk_keys() == {k for r in index.store.document_rows() for k in r.chunk_keys}
    assert not (folder / "journal.json").exists()
    # Chunks embedded before the kill were kept in the cache: nothing is embedded twice.
    embedded_before_kill = int(run.stdout.split("embedded=")[1])
    assert embedded_before_kill + report.chunks_embedded == embedded_by_a_clean_run
    assert index.sync(read_path(corpus), sources).unchanged == 7
