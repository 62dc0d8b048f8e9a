"""The sentence-transformers export, loaded by the real library (offline, tiny models)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("sentence_transformers")

from sentence_transformers import SentenceTransformer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from vbert import LongDocumentEncoder, MeanPoolMerger, SequenceMergerModel  # noqa: E402
from vbert.cli.main import app  # noqa: E402
from vbert.embedders import TransformersEmbedder  # noqa: E402
from vbert.errors import ConfigError, DataError  # noqa: E402
from vbert.integrations.sentence_transformers import export_sentence_transformers  # noqa: E402
from vbert.testing.tiny_models import tiny_merger as build_tiny_merger  # noqa: E402

DOCS = [
    "hello world of long text " * 60,
    "the document is long and the vector is long " * 40,
    "a query",
    "안녕하세요 こんにちは 你好 " * 30,
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def tiny_merger() -> SequenceMergerModel:
    model = build_tiny_merger(32, seed=0, num_layers=1, dropout=0.1).eval()
    torch.nn.init.normal_(model.pooler.weight, std=0.3)  # an untrained merger would be the mean
    return model


@pytest.fixture(scope="module")
def exported(tiny_embedder, tiny_merger, tmp_path_factory):
    destination = tmp_path_factory.mktemp("st") / "model"
    export_sentence_transformers(tiny_merger, destination, embedder=tiny_embedder)
    return destination


@pytest.fixture(scope="module")
def st_model(exported) -> SentenceTransformer:
    return SentenceTransformer(str(exported), trust_remote_code=True, local_files_only=True, device="cpu")


def test_folder_layout(exported, tiny_embedder):
    modules = json.loads((exported / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["0_ChunkEmbedder", "1_ChunkMerger"]
    config = json.loads((exported / "config_sentence_transformers.json").read_text())
    assert config["prompts"] == {"query": "query: ", "document": "passage: "}
    assert config["default_prompt_name"] == "document"
    assert (exported / "0_ChunkEmbedder" / "model.safetensors").is_file()
    assert (exported / "1_ChunkMerger" / "model.safetensors").is_file()


def test_refuses_an_existing_folder(exported, tiny_embedder):
    with pytest.raises(ConfigError, match="already exists"):
        export_sentence_transformers("mean", exported, embedder=tiny_embedder)


def test_documents_match_long_document_encoder(st_model, tiny_embedder, tiny_merger):
    assert len(tiny_embedder.split(DOCS[0], tiny_embedder.content_window)) > 2
    expected = LongDocumentEncoder(tiny_embedder, tiny_merger, cache=False).encode(DOCS)
    for vectors in (st_model.encode(DOCS), st_model.encode_document(DOCS, batch_size=2)):
        assert vectors.shape == expected.shape
        assert cosines(vectors, expected).min() >= 0.9999
    assert st_model.get_embedding_dimension() == tiny_embedder.dim


def test_prompt_goes_on_every_chunk(st_model, tiny_model_dir, tiny_merger):
    bare = TransformersEmbedder(tiny_model_dir, prefix="", query_prefix="", device="cpu")
    expected = LongDocumentEncoder(bare, tiny_merger, cache=False).encode(DOCS)
    vectors = st_model.encode(DOCS, prompt="")
    assert cosines(vectors, expected).min() >= 0.9999
    assert cosines(vectors, st_model.encode(DOCS)).min() < 0.9999  # the default prompt changed them


def test_queries_are_embedded_as_the_embedder_does(st_model, tiny_embedder, tiny_merger):
    short = ["hello world", "a long query"]
    assert cosines(st_model.encode_query(short), tiny_embedder.encode_queries(short)).min() >= 0.9999
    # A query longer than the window is chunked with the query prompt and merged.
    long_query = DOCS[0]
    query_embedder = TransformersEmbedder(tiny_embedder.name_or_path, prefix="query: ", device="cpu")
    chunks = query_embedder.split(long_query, query_embedder.content_window)
    expected = tiny_merger.merge(query_embedder.encode(chunks))
    assert cosines(st_model.encode_query([long_query]), expected[None]).min() >= 0.9999


def test_token_weighted_mean(tiny_embedder, tmp_path):
    destination = export_sentence_transformers("mean-weighted", tmp_path / "weighted", embedder=tiny_embedder)
    model = SentenceTransformer(str(destination), trust_remote_code=True, local_files_only=True, device="cpu")
    expected = LongDocumentEncoder(tiny_embedder, MeanPoolMerger(weighted=True), cache=False).encode(DOCS)
    assert cosines(model.encode(DOCS), expected).min() >= 0.9999
    assert json.loads((destination / "1_ChunkMerger" / "vbert_merger.json").read_text()) == {
        "baseline": "mean-weighted"
    }


def test_empty_text_is_a_clear_error(st_model):
    with pytest.raises(DataError, match="input 1 is empty"):
        st_model.encode(["fine", "  "])


def test_multi_process_pool(st_model):
    expected = st_model.encode(DOCS)
    pool = st_model.start_multi_process_pool(["cpu", "cpu"])
    try:
        vectors = st_model.encode(DOCS, pool=pool, chunk_size=1)
        queries = st_model.encode_query(DOCS[:2], pool=pool, chunk_size=1)
    finally:
        st_model.stop_multi_process_pool(pool)
    assert cosines(vectors, expected).min() >= 0.9999
    assert cosines(queries, st_model.encode_query(DOCS[:2])).min() >= 0.9999


def test_cli_export(tiny_model_dir, tmp_path):
    destination = tmp_path / "cli-export"
    result = CliRunner().invoke(
        app, ["export-st", "mean", str(destination), "--embedder", str(tiny_model_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "trust_remote_code=True" in result.output
    again = CliRunner().invoke(
        app, ["export-st", "mean", str(destination), "--embedder", str(tiny_model_dir)]
    )
    assert again.exit_code == 2 and "already exists" in again.output


@pytest.mark.integration
def test_default_embedder_and_merger(tmp_path):
    import vbert

    embedder = vbert.load_embedder()
    merger = vbert.load_merger("default")
    destination = export_sentence_transformers(merger, tmp_path / "default", embedder=embedder)
    model = SentenceTransformer(str(destination), trust_remote_code=True, local_files_only=True, device="cpu")
    docs = ["Die Hauptstadt von Deutschland ist Berlin. " * 120, "A short English note about rivers."]
    expected = LongDocumentEncoder(embedder, merger, cache=False).encode(docs)
    assert cosines(model.encode(docs), expected).min() >= 0.9999
    queries = ["capital of Germany"]
    assert cosines(model.encode_query(queries), embedder.encode_queries(queries)).min() >= 0.9999
