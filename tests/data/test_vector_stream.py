import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from vbert import LongDocumentEncoder, MeanPoolMerger
from vbert.data.vector_stream import VectorStream, embed_to_file, merge_to_file, work_folder
from vbert.errors import DataError

DOCUMENTS = [(f"doc-{i}", " ".join(f"w{(i * 7 + j) % 53}" for j in range(5 + i % 40))) for i in range(23)]


class Interrupted(Exception):
    pass


def stopping_after(documents, n):
    for i, document in enumerate(documents):
        if i == n:
            raise Interrupted
        yield document


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_merge_to_file_equals_encode_and_writes_batches(fake_embedder, tmp_path, suffix):
    encoder = LongDocumentEncoder(fake_embedder, MeanPoolMerger(), chunk_tokens=10, cache=False)
    output = tmp_path / f"vectors{suffix}"
    assert merge_to_file(encoder, iter(DOCUMENTS), output, {"job": 1}, documents_per_batch=5) == 23
    expected = encoder.encode([text for _, text in DOCUMENTS])
    ids = [doc_id for doc_id, _ in DOCUMENTS]
    if suffix == ".npy":
        np.testing.assert_array_equal(np.load(output), expected)
        saved = json.loads(output.with_suffix(".ids.json").read_text())
        assert saved["ids"] == ids and saved["merger"] == MeanPoolMerger().fingerprint
    else:
        parquet = pq.ParquetFile(output)
        assert parquet.metadata.num_row_groups == 5  # one per batch
        table = parquet.read()
        assert table["id"].to_pylist() == ids
        np.testing.assert_array_equal(np.stack(table["embedding"].to_numpy(zero_copy_only=False)), expected)
    assert not work_folder(output).exists()


def test_an_interrupted_run_keeps_finished_batches_and_resumes(fake_embedder, tmp_path):
    encoder = LongDocumentEncoder(fake_embedder, MeanPoolMerger(), chunk_tokens=10, cache=False)
    output = tmp_path / "vectors.npy"
    with pytest.raises(Interrupted):
        merge_to_file(encoder, stopping_after(DOCUMENTS, 12), output, {"job": 1}, documents_per_batch=5)
    assert not output.exists()
    assert VectorStream(output, {"job": 1}).documents_done == 10  # two finished batches of 5
    # A crash while the next batch was written: its vectors without the record that commits them.
    (work_folder(output) / "batch-000002.npy").write_bytes(b"partial")
    calls = fake_embedder.calls
    merge_to_file(encoder, iter(DOCUMENTS), output, {"job": 1}, documents_per_batch=5)
    assert fake_embedder.calls - calls == 3  # only the 13 documents not finished were embedded
    np.testing.assert_array_equal(np.load(output), encoder.encode([text for _, text in DOCUMENTS]))


def test_another_job_or_changed_inputs_are_not_mixed_in(fake_embedder, tmp_path, capsys):
    encoder = LongDocumentEncoder(fake_embedder, MeanPoolMerger(), chunk_tokens=10, cache=False)
    output = tmp_path / "vectors.npy"
    with pytest.raises(Interrupted):
        merge_to_file(encoder, stopping_after(DOCUMENTS, 7), output, {"job": 1}, documents_per_batch=5)
    renamed = [("other", DOCUMENTS[0][1]), *DOCUMENTS[1:]]
    with pytest.raises(DataError, match="inputs changed"):
        merge_to_file(encoder, iter(renamed), output, {"job": 1}, documents_per_batch=5)
    assert merge_to_file(encoder, iter(renamed), output, {"job": 2}, documents_per_batch=5) == 23
    assert "discarding" in capsys.readouterr().err
    assert json.loads(output.with_suffix(".ids.json").read_text())["ids"][0] == "other"


def test_embed_to_file_writes_one_row_per_chunk(fake_embedder, tmp_path):
    output = tmp_path / "chunks.parquet"
    rows = embed_to_file(
        fake_embedder, iter(DOCUMENTS), output, {"job": 1}, chunk_tokens=10, documents_per_batch=4
    )
    table = pq.read_table(output)
    chunks = [c for _, text in DOCUMENTS for c in fake_embedder.split(text, 10)]
    assert rows == len(chunks) == table.num_rows
    assert table["chunk_index"].to_pylist()[:2] == [0, 0]  # doc-0 has 5 words: one chunk
    np.testing.assert_array_equal(
        np.stack(table["embedding"].to_numpy(zero_copy_only=False)), fake_embedder.encode(chunks)
    )


SLOW_JOB = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from vbert.data.vector_stream import merge_to_file
    from vbert.long_document import LongDocumentEncoder
    from vbert.mergers import MeanPoolMerger

    class Embedder:
        name, fingerprint, dim, max_tokens, content_window = "e", "e", 4, 12, 10
        def encode(self, texts, batch_size=32):
            time.sleep(0.05)
            return np.ones((len(texts), 4), np.float32) + np.arange(len(texts))[:, None]
        def count_tokens(self, text):
            return len(text.split())
        def split(self, text, n):
            return [text]

    documents = ((f"d{i}", f"text {i}") for i in range(400))
    encoder = LongDocumentEncoder(Embedder(), MeanPoolMerger(), cache=False)
    merge_to_file(encoder, documents, sys.argv[1], {"job": 1}, documents_per_batch=2)
    """
)


def test_kill_9_keeps_finished_batches(tmp_path):
    output = tmp_path / "vectors.npy"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    job = subprocess.Popen([sys.executable, "-c", SLOW_JOB, str(output)], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(list(work_folder(output).glob("batch-*.json"))) < 3:
            assert time.monotonic() < deadline and job.poll() is None
            time.sleep(0.05)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait()
    done = VectorStream(output, {"job": 1}).documents_done
    assert done >= 6 and not output.exists()
    subprocess.run(
        [sys.executable, "-c", SLOW_JOB.replace("range(400)", "range(40)"), str(output)], env=env, check=True
    )
    assert np.load(output).shape == (40, 4)
    assert json.loads(output.with_suffix(".ids.json").read_text())["ids"] == [f"d{i}" for i in range(40)]
