"""``vbert embed``, ``merge``, ``info`` and ``export-hub`` end to end, checked against the library."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli.cli_runner import assert_one_line_error, run, write_jsonl
from vbert import LongDocumentEncoder, load_embedder, load_merger
from vbert.errors import DataError

LONG_TEXT = " ".join(f"word{i} sentence about topic {i % 7}." for i in range(150))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "docs.jsonl", [{"id": "long", "text": LONG_TEXT}, {"id": "short", "text": "a short one"}]
    )


def _read_pair(output: Path) -> tuple[np.ndarray, dict]:
    return np.load(output, allow_pickle=False), json.loads(output.with_suffix(".ids.json").read_text())


def test_embed_writes_one_row_per_chunk_with_its_document_and_index(tmp_path, docs, tiny_model_dir):
    output = tmp_path / "chunks.npy"
    result = run("embed", docs, "-o", output, "--embedder", tiny_model_dir, "--chunk-tokens", 40)
    assert result.exit_code == 0, result.output

    vectors, meta = _read_pair(output)
    embedder = load_embedder(str(tiny_model_dir))
    chunks = embedder.split(LONG_TEXT, 40)
    assert len(chunks) > 3
    assert meta["ids"] == ["long"] * len(chunks) + ["short"]
    assert meta["chunk_index"] == [*range(len(chunks)), 0]
    assert meta["embedder"] == embedder.fingerprint
    assert vectors.dtype == np.float32 and vectors.shape == (len(chunks) + 1, embedder.dim)
    np.testing.assert_allclose(vectors, embedder.encode([*chunks, "a short one"]), atol=1e-5)
    assert f"wrote {len(chunks) + 1} vectors of dimension {embedder.dim}" in result.stdout


@pytest.mark.parametrize("merger", ["mean", "truncation", "tiny"])
def test_merge_writes_what_the_library_computes(tmp_path, docs, tiny_model_dir, tiny_merger_dir, merger):
    spec = str(tiny_merger_dir) if merger == "tiny" else merger
    output = tmp_path / "merged.npy"
    args = ("merge", docs, "-o", output, "--merger", spec, "--embedder", tiny_model_dir, "--chunk-tokens", 40)
    result = run(*args, "--no-cache")
    assert result.exit_code == 0, result.output

    vectors, meta = _read_pair(output)
    encoder = LongDocumentEncoder(
        load_embedder(str(tiny_model_dir)), load_merger(spec), chunk_tokens=40, cache=False
    )
    np.testing.assert_allclose(vectors, encoder.encode([LONG_TEXT, "a short one"]), atol=1e-5)
    assert meta["ids"] == ["long", "short"]
    assert meta["merger"] == encoder.merger.fingerprint and meta["embedder"] == encoder.embedder.fingerprint


def test_merge_reads_its_cache_and_runs_without_one(tmp_path, docs, tiny_model_dir):
    output = tmp_path / "merged.npy"
    cache = tmp_path / "cache.sqlite"
    args = ("merge", docs, "-o", output, "--merger", "mean", "--embedder", tiny_model_dir)
    assert run(*args, "--cache", cache).exit_code == 0
    first, first_vectors = output.read_bytes(), np.load(output)
    assert cache.stat().st_size > 0
    again = run(*args, "--cache", cache)  # every chunk from the cache: the same bytes
    assert again.exit_code == 0, again.output
    assert output.read_bytes() == first
    without_cache = run(*args, "--no-cache")
    assert without_cache.exit_code == 0, without_cache.output
    np.testing.assert_allclose(np.load(output), first_vectors, atol=1e-6)


def test_info_reports_what_it_loaded_and_what_it_could_not(tiny_model_dir, tiny_merger_dir):
    result = run("info", "--embedder", tiny_model_dir, "--merger", tiny_merger_dir)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    embedder = load_embedder(str(tiny_model_dir))
    assert report["embedder"] == {
        "name": embedder.name,
        "dim": embedder.dim,
        "fingerprint": embedder.fingerprint,
    }
    assert report["merger"]["fingerprint"] == load_merger(str(tiny_merger_dir)).fingerprint
    assert {"vbert", "python", "torch", "transformers", "device", "cache"} <= set(report)

    broken = run("info", "--embedder", tiny_model_dir, "--merger", "nosuchmerger")
    assert broken.exit_code == 0, broken.output
    assert json.loads(broken.stdout[broken.stdout.index("{") :])["merger"].startswith(
        "unavailable: unknown merger"
    )


def test_export_hub_writes_a_folder_plain_transformers_loads(tmp_path, tiny_merger_dir):
    from transformers import AutoModel

    destination = tmp_path / "export"
    result = run("export-hub", tiny_merger_dir, destination)
    assert result.exit_code == 0, result.output
    assert {"config.json", "model.safetensors", "modeling_vbert.py", "configuration_vbert.py"} <= {
        p.name for p in destination.iterdir()
    }
    exported = AutoModel.from_pretrained(destination, trust_remote_code=True).eval()
    original = load_merger(str(tiny_merger_dir))
    x = np.random.default_rng(0).standard_normal((2, 5, 32)).astype(np.float32)
    mask = np.ones((2, 5), np.float32)
    mask[1, 3:] = 0
    np.testing.assert_allclose(exported.merge_batch(x, mask), original.merge_batch(x, mask), atol=1e-6)


@pytest.mark.integration
def test_merge_with_the_default_embedder_and_merger(tmp_path, docs):
    output = tmp_path / "merged.npy"
    result = run("merge", docs, "-o", output, "--cache", tmp_path / "cache.sqlite")
    assert result.exit_code == 0, result.output
    vectors, meta = _read_pair(output)
    assert vectors.shape == (2, 384) and meta["ids"] == ["long", "short"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) < 0.99
    assert meta["merger"] == load_merger("default").fingerprint


# #16 defect 4: every output row's id names its document unambiguously.
def _ids(output: Path) -> list[str]:
    return json.loads(output.with_suffix(".ids.json").read_text(encoding="utf-8"))["ids"]


def test_text_files_are_named_by_their_path_relative_to_the_given_root(tmp_path, tiny_model_dir):
    root = tmp_path / "docs"
    for rel in ("a/x.txt", "b/x.txt", "x.md"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"the text of {rel}", encoding="utf-8")
    output = tmp_path / "out.npy"

    result = run("merge", root, root / "x.md", "-o", output, "--merger", "mean", "--embedder", tiny_model_dir)
    assert_one_line_error(result, 3, "'x.md'", "twice")

    result = run("merge", root, "-o", output, "--merger", "mean", "--embedder", tiny_model_dir)
    assert result.exit_code == 0, result.output
    assert _ids(output) == ["a/x.txt", "b/x.txt", "x.md"]


def test_jsonl_ids_are_kept_as_given_when_strings_or_integers(tmp_path, tiny_model_dir):
    docs = write_jsonl(
        tmp_path / "docs.jsonl",
        [
            {"id": 0, "text": "zero"},
            {"id": "0x", "text": "a string id"},
            {"id": 12, "text": "twelve", "title": "not the id"},
            {"text": "no id at all"},
        ],
    )
    output = tmp_path / "out.npy"
    result = run("embed", docs, "-o", output, "--embedder", tiny_model_dir)
    assert result.exit_code == 0, result.output
    assert _ids(output) == ["0", "0x", "12", "docs.jsonl:4"]


@pytest.mark.parametrize("bad_id", [{"x": 1}, [1], 1.5, True])
def test_other_id_types_are_an_input_error(tmp_path, tiny_model_dir, bad_id):
    docs = write_jsonl(
        tmp_path / "docs.jsonl", [{"id": "fine", "text": "one"}, {"id": bad_id, "text": "two"}]
    )
    result = run("merge", docs, "-o", tmp_path / "out.npy", "--merger", "mean", "--embedder", tiny_model_dir)
    assert_one_line_error(result, 3, "docs.jsonl:2", "'id' must be a string or an integer")
    assert not (tmp_path / "out.npy").exists()


def test_duplicate_ids_are_an_input_error_naming_both_places(tmp_path):
    from vbert.data.corpora.files import read_documents

    docs = write_jsonl(tmp_path / "docs.jsonl", [{"id": 1, "text": "one"}, {"id": "1", "text": "also one"}])
    with pytest.raises(DataError, match=r"'1' is given twice .*docs.jsonl:1 and .*docs.jsonl:2"):
        read_documents([docs])


def test_a_single_file_is_named_by_its_file_name(tmp_path):
    from vbert.data.corpora.files import read_documents

    (tmp_path / "notes.txt").write_text("some notes", encoding="utf-8")
    (tmp_path / "empty.md").write_text("  \n", encoding="utf-8")
    assert read_documents([tmp_path / "notes.txt", tmp_path / "empty.md"]) == [("notes.txt", "some notes")]


# #16 defect 3: a ``.npy`` output and its ``.ids.json`` are written as one unit (both or neither).
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
