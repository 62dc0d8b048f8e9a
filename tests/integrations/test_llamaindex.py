"""VbertEmbedding in a real LlamaIndex VectorStoreIndex, built and queried offline (no LLM)."""

from __future__ import annotations

import asyncio
import importlib
import sys

import numpy as np
import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.schema import MetadataMode

from vbert.integrations.llamaindex import VbertEmbedding

TOPICS = ["volcano lava eruption", "violin orchestra concert", "glacier ice melting"]


def long_document(topic: str, n: int = 150) -> str:
    filler = " ".join(f"filler{i}" for i in range(n))
    return f"{filler} {topic} {topic} {topic} {filler}"


@pytest.fixture
def lexical(fake_embedder, tmp_path) -> VbertEmbedding:
    """The conftest's bag-of-words embedder: retrieval that a test can predict."""
    return VbertEmbedding(fake_embedder, "mean", cache=tmp_path / "cache.sqlite")


def documents() -> list[Document]:
    return [Document(text=long_document(t), metadata={"topic": t}) for t in TOPICS]


def test_whole_documents_index_and_retriever(lexical):
    docs = documents()
    assert all(len(lexical.encoder.chunk(d.text)) > 3 for d in docs)
    index = VectorStoreIndex(nodes=docs, embed_model=lexical)  # one node (and one vector) per document
    retriever = index.as_retriever(similarity_top_k=1)
    for topic in TOPICS:
        (hit,) = retriever.retrieve(topic)
        assert hit.node.metadata["topic"] == topic
    stored = index.vector_store.get(docs[0].id_)
    expected = lexical.encoder.encode([docs[0].get_content(metadata_mode=MetadataMode.EMBED)])[0]
    np.testing.assert_allclose(np.array(stored), expected, atol=1e-6)


def test_from_documents_with_llamaindex_splitter(tiny_embedder, tmp_path):
    embed_model = VbertEmbedding(tiny_embedder, "mean", cache=tmp_path / "cache.sqlite")
    index = VectorStoreIndex.from_documents(documents(), embed_model=embed_model)
    hits = index.as_retriever(similarity_top_k=2).retrieve("hello world")
    assert len(hits) == 2 and all(hit.score is not None for hit in hits)
    assert len(embed_model.encoder.cache) > 0


def test_query_and_async_paths(tiny_embedder):
    model = VbertEmbedding(tiny_embedder, "mean", cache=False)
    assert model.model_name == "vbert/tiny+mean-pool"
    query = np.array(model.get_query_embedding("hello world"))
    np.testing.assert_allclose(query, tiny_embedder.encode_queries(["hello world"])[0], atol=1e-5)
    text = np.array(model.get_text_embedding("hello world"))
    np.testing.assert_allclose(text, tiny_embedder.encode(["hello world"])[0], atol=1e-5)
    batch = asyncio.run(model.aget_text_embedding_batch(["hello world", "the text"]))
    np.testing.assert_allclose(batch[0], text, atol=1e-5)
    np.testing.assert_allclose(asyncio.run(model.aget_query_embedding("hello world")), query, atol=1e-5)


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_index.core.base.embeddings.base", None)
    monkeypatch.delitem(sys.modules, "vbert.integrations.llamaindex")
    with pytest.raises(ImportError, match=r"pip install 'vbert\[llamaindex\]'"):
        importlib.import_module("vbert.integrations.llamaindex")
