"""``vbert embed``, ``merge``, ``info`` and ``export-hub`` end to end, checked against the library."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run, write_jsonl

from vbert import LongDocumentEncoder, load_embedder, load_merger

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
