"""#16 defect 3: a ``.npy`` output and its ``.ids.json`` are written as one unit (both or neither)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import assert_one_line_error, run, write_jsonl

from vbert.errors import DataError


def _snapshot(output: Path) -> tuple[bytes, bytes]:
    return output.read_bytes(), output.with_suffix(".ids.json").read_bytes()


def test_lone_surrogate_id_is_an_input_error_and_the_old_pair_survives(tmp_path, tiny_model_dir, three_docs):
    output = tmp_path / "out.npy"
    first = run("merge", three_docs, "-o", output, "--merger", "mean", "--embedder", tiny_model_dir)
    assert first.exit_code == 0, first.output
    before = _snapshot(output)
    assert json.loads(before[1])["ids"] == ["a", "b", "c"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a\\ud800b", "text": "some text here"}\n', encoding="utf-8")
    result = run("merge", bad, "-o", output, "--merger", "mean", "--embedder", tiny_model_dir)

    assert_one_line_error(result, 3, "surrogate")
    assert _snapshot(output) == before


def test_lone_surrogate_text_is_an_input_error(tmp_path, tiny_model_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "broken \\udc80 text"}\n', encoding="utf-8")
    result = run("embed", bad, "-o", tmp_path / "out.npy", "--embedder", tiny_model_dir)
    assert_one_line_error(result, 3, "bad.jsonl:1", "surrogate")
    assert not (tmp_path / "out.npy").exists()


def test_a_failure_while_writing_the_ids_leaves_the_old_vectors(tmp_path, monkeypatch):
    from vbert.data import vectors as vector_files
    from vbert.data.vectors import write_vectors

    output = tmp_path / "out.npy"
    write_vectors(output, ["a", "b", "c"], np.eye(3, 4), {"merger": "old"})
    before = _snapshot(output)

    real_save = np.save

    def save_then_fill_the_disk(handle, array, allow_pickle):
        real_save(handle, array, allow_pickle=allow_pickle)
        monkeypatch.setattr(Path, "write_bytes", _disk_full)

    monkeypatch.setattr(vector_files.np, "save", save_then_fill_the_disk)
    with pytest.raises(OSError, match="No space"):
        write_vectors(output, ["d"], np.ones((1, 4)), {"merger": "new"})

    assert _snapshot(output) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ids.json", "out.npy"]  # no temporaries left


def _disk_full(self, data):
    raise OSError(28, "No space left on device")


def test_ids_that_do_not_match_the_rows_write_nothing(tmp_path):
    from vbert.data.vectors import write_vectors

    with pytest.raises(DataError, match="one row per id"):
        write_vectors(tmp_path / "out.npy", ["a", "b"], np.ones((3, 4)))
    assert list(tmp_path.iterdir()) == []


def test_parquet_output_holds_ids_rows_and_provenance(tmp_path, tiny_model_dir):
    import pyarrow.parquet as pq

    docs = write_jsonl(tmp_path / "d.jsonl", [{"id": 7, "text": "seven"}, {"id": "x", "text": "ex text"}])
    result = run(
        "merge", docs, "-o", tmp_path / "out.parquet", "--merger", "mean", "--embedder", tiny_model_dir
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("id").to_pylist() == ["7", "x"]
    vectors = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    provenance = json.loads(table.schema.metadata[b"vbert"])
    assert set(provenance) == {"embedder", "merger"}
