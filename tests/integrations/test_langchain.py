"""VbertEmbeddings against langchain's own standard test suites and a real InMemoryVectorStore."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

import vbert
from vbert.integrations.langchain import VbertEmbeddings


class TinyModel:
    """Hands the session's tiny embedder to the standard suites, which build the class from params."""

    embedder = None

    @pytest.fixture(autouse=True)
    def _tiny(self, tiny_embedder) -> None:
        type(self).embedder = tiny_embedder

    @property
    def embeddings_class(self) -> type[VbertEmbeddings]:
        return VbertEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"embedder": self.embedder, "merger": "mean", "cache": False}


class TestVbertEmbeddingsUnit(TinyModel, EmbeddingsUnitTests):
    pass


class TestVbertEmbeddingsIntegration(TinyModel, EmbeddingsIntegrationTests):
    pass


@pytest.fixture
def lexical(fake_embedder, tmp_path) -> VbertEmbeddings:
    """The conftest's bag-of-words embedder: retrieval that a test can predict."""
    return VbertEmbeddings(fake_embedder, "mean", cache=tmp_path / "cache.sqlite")


def long_document(topic: str, n: int = 150) -> str:
    filler = " ".join(f"filler{i}" for i in range(n))
    return f"{filler} {topic} {topic} {topic} {filler}"


def test_in_memory_vector_store_search_over_long_documents(lexical):
    topics = ["volcano lava eruption", "violin orchestra concert", "glacier ice melting"]
    documents = [Document(page_content=long_document(t), metadata={"topic": t}) for t in topics]
    assert all(len(lexical.encoder.chunk(d.page_content)) > 3 for d in documents)
    store = InMemoryVectorStore(lexical)
    store.add_documents(documents)
    for topic in topics:
        (hit,) = store.similarity_search(topic, k=1)
        assert hit.metadata["topic"] == topic
    stored = np.array(lexical.embed_documents([documents[0].page_content]))
    np.testing.assert_allclose(stored[0], lexical.encoder.encode([documents[0].page_content])[0], atol=1e-6)


def test_queries_use_the_query_prefix_and_long_queries_are_merged(tiny_embedder):
    embeddings = VbertEmbeddings(tiny_embedder, "mean", cache=False)
    short = np.array(embeddings.embed_query("hello world"))
    np.testing.assert_allclose(short, tiny_embedder.encode_queries(["hello world"])[0], atol=1e-5)
    assert not np.allclose(short, tiny_embedder.encode(["hello world"])[0], atol=1e-3)
    long_query = "hello world the query of the text " * 80
    chunks = embeddings.encoder.chunk(long_query)
    assert len(chunks) > 1
    expected = vbert.MeanPoolMerger().merge(tiny_embedder.encode_queries(chunks))
    np.testing.assert_allclose(np.array(embeddings.embed_query(long_query)), expected, atol=1e-5)


def test_empty_document_is_a_clear_error(lexical):
    with pytest.raises(ValueError, match="document 1: .*empty"):
        lexical.embed_documents(["fine text", "   "])


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "langchain_core.embeddings", None)
    monkeypatch.delitem(sys.modules, "vbert.integrations.langchain")
    with pytest.raises(ImportError, match=r"pip install 'vbert\[langchain\]'"):
        importlib.import_module("vbert.integrations.langchain")
