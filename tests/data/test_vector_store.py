"""Builders and the evaluation share one persistent chunk-vector store: no text is embedded twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from vbert.cache import ChunkCache
from vbert.data.datasets import CommonOptions, build_article_sequences, build_n_to_one
from vbert.data.datasets.toy import ToyEmbedder, toy_articles
from vbert.long_document import LongDocumentEncoder
from vbert.mergers import MeanPoolMerger


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class CountingEmbedder(ToyEmbedder):
    def __init__(self) -> None:
        super().__init__(dim=16, max_tokens=96)
        self.counts: Counter[str] = Counter()

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.counts.update(texts)
        return super().encode(texts, batch_size)


def _vectors(folder) -> np.ndarray:
    table = pq.read_table(sorted((folder / "data").glob("train-*.parquet"))[0])
    return np.asarray(table.column("embeddings").combine_chunks().flatten().flatten(), dtype=np.float32)


def test_second_build_embeds_nothing_and_writes_the_same_bytes(tmp_path):
    articles = toy_articles(6, min_words=40, max_words=120)
    embedder = CountingEmbedder()
    with ChunkCache(tmp_path / "store.sqlite") as store:
        options = CommonOptions(articles_per_shard=3, store=store)
        first = build_article_sequences(
            articles, embedder, tmp_path / "a", chunk_tokens=12, min_tokens=0, options=options
        )
        embedded = sum(embedder.counts.values())
        assert first.texts_embedded == embedded > 0 and first.texts_reused == 0
        second = build_article_sequences(
            articles, embedder, tmp_path / "b", chunk_tokens=12, min_tokens=0, options=options
        )
    assert second.texts_embedded == 0 and second.texts_reused == embedded
    assert sum(embedder.counts.values()) == embedded
    assert np.array_equal(_vectors(tmp_path / "a"), _vectors(tmp_path / "b"))
    assert (tmp_path / "a/data/train-00000.parquet").read_bytes() == (
        tmp_path / "b/data/train-00000.parquet"
    ).read_bytes()


def test_evaluation_vectors_feed_a_later_build(tmp_path):
    """Chunks an evaluation embedded (LongDocumentEncoder) are reused by a dataset build at the same chunking."""
    articles = toy_articles(4, min_words=60, max_words=120)
    embedder = CountingEmbedder()
    with ChunkCache(tmp_path / "store.sqlite") as store:
        encoder = LongDocumentEncoder(embedder, MeanPoolMerger(), chunk_tokens=12, cache=store)
        encoder.encode([a.text for a in articles])
        before = sum(embedder.counts.values())
        result = build_article_sequences(
            articles,
            embedder,
            tmp_path / "seq",
            chunk_tokens=12,
            min_tokens=0,
            options=CommonOptions(store=store),
        )
    assert result.texts_reused > 0
    assert sum(embedder.counts.values()) - before == result.texts_embedded < result.texts_reused


def test_n_to_one_targets_are_stored_too(tmp_path):
    articles = toy_articles(3, min_words=60, max_words=100)
    embedder = CountingEmbedder()
    with ChunkCache(tmp_path / "store.sqlite") as store:
        options = CommonOptions(store=store)
        build_n_to_one(articles, embedder, tmp_path / "a", max_chunks=4, chunk_tokens=10, options=options)
        again = build_n_to_one(
            articles, embedder, tmp_path / "b", max_chunks=4, chunk_tokens=10, options=options
        )
    assert again.texts_embedded == 0 and again.texts_reused > 0
