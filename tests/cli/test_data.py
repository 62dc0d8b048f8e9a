"""``vbert data``: the sub-commands build, resume and validate, and fail with clear messages."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from vbert.cli.data import app
from vbert.data.datasets import load_pairs, load_sequences
from vbert.testing.toy import toy_articles

runner = CliRunner()


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def own_vector_store(tmp_path, monkeypatch):
    """The builds' default chunk-vector store lives under VBERT_HOME: keep it in the test's folder."""
    monkeypatch.setenv("VBERT_HOME", str(tmp_path / "home"))


@pytest.fixture
def text_folder(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    for article in toy_articles(6, min_words=40, max_words=200):
        (folder / f"{article.id.replace(':', '_')}.txt").write_text(article.text, encoding="utf-8")
    return folder


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_articles_build_then_resume(tmp_path, text_folder):
    out = tmp_path / "seq"
    common = ["--out", str(out), "--corpus", "files", "--corpus-dir", str(text_folder), "--embedder", "toy"]
    first = invoke(
        "articles", *common, "--chunk-tokens", "16", "--articles-per-shard", "4", "--min-tokens", "0"
    )
    assert first.exit_code == 0, first.output
    assert "built 2 shard(s), reused 0" in first.output and "6 articles" in first.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["corpus"]["name"] == "files" and manifest["params"]["chunk_tokens"] == 16
    assert manifest["split_spec"].startswith("vbert.data.splits.split_of(seed=0")
    again = invoke(
        "articles", *common, "--chunk-tokens", "16", "--articles-per-shard", "4", "--min-tokens", "0"
    )
    assert "built 0 shard(s), reused 2" in again.output
    changed = runner.invoke(
        app, ["articles", *common, "--chunk-tokens", "20", "--articles-per-shard", "4", "--min-tokens", "0"]
    )
    assert changed.exit_code == 2 and "other parameters" in changed.output
    split = sorted(manifest["splits"])[0]
    row = load_sequences(out, split=split, cache_dir=tmp_path / "hf")[0]
    assert row["inputs"].shape == (row["length"], 384)


def test_n_to_1_and_atomic_build_and_validate(tmp_path, text_folder):
    corpus = ["--corpus", "files", "--corpus-dir", str(text_folder), "--embedder", "toy", "--splits", "none"]
    pairs = invoke(
        "n-to-1", "--out", str(tmp_path / "pairs"), *corpus, "--max-chunks", "4", "--chunk-tokens", "12"
    )
    assert pairs.exit_code == 0, pairs.output
    row = load_pairs(tmp_path / "pairs", cache_dir=tmp_path / "hf")[0]
    assert 2 <= row["length"] <= 4 and row["target"].shape == (384,)
    atomic = invoke("n-to-1", "--atomic", "--out", str(tmp_path / "atomic"), *corpus, "--window-tokens", "32")
    assert atomic.exit_code == 0, atomic.output
    assert json.loads((tmp_path / "atomic" / "manifest.json").read_text())["kind"] == "atomic"
    ok = invoke("validate", str(tmp_path / "atomic"))
    assert ok.exit_code == 0 and "ok: every file matches the manifest" in ok.output
    shard = next((tmp_path / "atomic" / "data").glob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-10])
    bad = runner.invoke(app, ["validate", str(tmp_path / "atomic"), "--json"])
    assert bad.exit_code == 1 and "truncated" in bad.output


def test_clear_errors(tmp_path, text_folder):
    too_long = runner.invoke(
        app,
        ["n-to-1", "--out", str(tmp_path / "x"), "--corpus", "files", "--corpus-dir", str(text_folder),
         "--embedder", "toy", "--chunk-tokens", "60"],
    )  # fmt: skip
    assert too_long.exit_code == 2 and "--chunk-tokens" in too_long.output
    no_dir = runner.invoke(
        app, ["articles", "--out", str(tmp_path / "y"), "--corpus", "files", "--embedder", "toy"]
    )
    assert no_dir.exit_code == 2 and "--corpus-dir" in no_dir.output
    missing = runner.invoke(
        app,
        [
            "articles",
            "--out",
            str(tmp_path / "z"),
            "--corpus",
            str(tmp_path / "nowhere"),
            "--embedder",
            "toy",
        ],
    )
    assert missing.exit_code == 2 and "unknown corpus" in missing.output
    fractions = runner.invoke(
        app,
        ["articles", "--out", str(tmp_path / "w"), "--corpus", "files", "--corpus-dir", str(text_folder),
         "--embedder", "toy", "--splits", "0.5,0.1"],
    )  # fmt: skip
    assert fractions.exit_code == 2 and "--splits" in fractions.output
    not_built = runner.invoke(app, ["validate", str(tmp_path)])
    assert not_built.exit_code == 4 and "no manifest.json" in not_built.output


def test_a_second_build_reuses_the_stores_vectors(tmp_path, text_folder):
    corpus = ["--corpus", "files", "--corpus-dir", str(text_folder), "--embedder", "toy", "--min-tokens", "0"]
    first = invoke("articles", "--out", str(tmp_path / "a"), *corpus)
    assert "from the store" not in first.output
    second = invoke("articles", "--out", str(tmp_path / "b"), *corpus)
    assert "embedding 0 texts" in second.output and "reused from the store" in second.output
    unstored = invoke("articles", "--out", str(tmp_path / "c"), *corpus, "--no-store")
    assert "from the store" not in unstored.output and "embedding 0 texts" not in unstored.output


def test_query_documents_build_leaves_excluded_ids_out_and_reuses_the_store(tmp_path):
    from tests.data.test_query_documents import topic_documents
    from vbert.data.query_documents import read_query_documents

    rows = [{"id": a.id, "lang": a.lang, "text": a.text} for a in topic_documents(4, lines=60)]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    (tmp_path / "exclude.txt").write_text("# distractors\ndoc2-en\n", encoding="utf-8")
    common = [
        "query-documents", "--corpus", "files", "--corpus-dir", str(corpus), "--embedder", "toy",
        "--split", "all", "--min-tokens", "100", "--exclude", str(tmp_path / "exclude.txt"), "--dtype", "float32",
    ]  # fmt: skip
    first = invoke(*common, "--out", str(tmp_path / "qd"))
    assert first.exit_code == 0, first.output
    assert "7 documents" in first.output and "1 excluded documents left out" in first.output
    stored = read_query_documents(tmp_path / "qd")
    assert len(stored.ids) == 7 and "doc2-en" not in stored.ids and stored.documents[0].shape[1] == 384
    assert stored.sidecar["embedder"]["dim"] == 384 and stored.sidecar["exclude"]["ids"] == 1
    assert sum(len(q) for q in stored.queries) == stored.sidecar["queries"] > 0
    again = invoke(*common, "--out", str(tmp_path / "again.parquet"))
    assert "embedded 0 chunks and 0 queries" in again.output, again.output
    missing = runner.invoke(
        app, [*common[:-4], "--exclude", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "x")]
    )
    assert missing.exit_code != 0 and "nope.txt" in missing.output
