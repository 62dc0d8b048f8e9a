"""Query-document datasets: built from the chunk-vector store, checksummed, leaving excluded ids out."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from vbert.cache import ChunkCache, text_key
from vbert.chunk_layouts import QUERY_NAMESPACE
from vbert.data.article import Article
from vbert.data.datasets.articles import chunk_article
from vbert.data.query_documents import (
    QueryDocumentPlan,
    build_query_documents,
    read_query_documents,
    write_query_documents,
)
from vbert.errors import DataError, IntegrityError
from vbert.testing import TOPICS, WordHashEmbedder

PLAN = QueryDocumentPlan(langs=("en", "de"), min_tokens=100, max_tokens=2000, query_tokens=(8, 40), seed=3)


def topic_documents(n: int, langs: tuple[str, ...] = ("en", "de"), lines: int = 8) -> list[Article]:
    """``n`` documents per language of ``lines`` lines of 15 words each, from one topic's vocabulary plus
    words of the document's own; documents of one index are translations (one group)."""
    rng = np.random.default_rng(0)
    articles = []
    for i in range(n):
        for lang in langs:
            vocab = TOPICS[i % len(TOPICS)].split() + [f"{lang}{i}w{k}" for k in range(8)]
            text = "\n".join(" ".join(rng.choice(vocab, size=15)) for _ in range(lines))
            articles.append(Article(f"doc{i}-{lang}", lang, f"doc {i}", text, "test", "CC0", f"g{i}"))
    return articles


@pytest.fixture
def embedder():
    return WordHashEmbedder(16, content_window=30, name="word-hash", fingerprint="wh-16")


def test_build_round_trip_reuses_the_store_and_leaves_excluded_ids_out(tmp_path, embedder):
    articles = topic_documents(5)
    store = ChunkCache(tmp_path / "store.sqlite")
    exclude = {"doc1-en", "doc3-de"}
    build = build_query_documents(articles, embedder, store, PLAN, exclude=exclude)
    ids = [r.id for r in build.rows]
    assert len(ids) == 8 and not exclude & set(ids) and build.excluded == 2
    assert build.chunks_embedded > 0 and build.queries_embedded > 0
    sidecar = write_query_documents(
        build.rows, tmp_path / "qd.parquet", PLAN, exclude, dtype="float32", embedder={"name": embedder.name}
    )
    assert sidecar["exclude"]["ids"] == 2 and sidecar["embedder"] == {"name": embedder.name}

    stored = read_query_documents(tmp_path / "qd.parquet")
    assert stored.ids == ids
    by_id = {a.id: a for a in articles}
    tasks = set()
    for row_id, lang, vectors, queries, row in zip(
        stored.ids, stored.langs, stored.documents, stored.queries, build.rows, strict=True
    ):
        chunks, _ = chunk_article(embedder, by_id[row_id].text, embedder.content_window)
        held = store.get_many(embedder.fingerprint, chunks)
        assert lang == by_id[row_id].lang
        np.testing.assert_array_equal(vectors, np.stack([held[text_key(c)] for c in chunks]))
        assert len(queries) == len(row.query_tasks) <= 2 * PLAN.queries_per_document
        tasks |= set(row.query_tasks)
        for query, source in zip(queries, row.query_sources, strict=True):
            # each query is a deep paragraph of its source (the document or its translation), query-embedded
            assert source == row_id or by_id[source].group == by_id[row_id].group
            lines = by_id[source].text.split("\n")[2:]  # past the first 30-token window
            keys = [text_key(line) for line in lines]
            cached = store.get_vectors(embedder.fingerprint + QUERY_NAMESPACE, keys)
            assert any(np.array_equal(query, cached[key]) for key in keys if key in cached)
    assert tasks == {"deep-paragraph-distractors", "cross-lingual-deep"}

    counted = WordHashEmbedder(16, content_window=30, name="word-hash", fingerprint="wh-16")
    again = build_query_documents(articles, counted, store, PLAN, exclude=exclude)
    assert (again.chunks_embedded, again.queries_embedded, counted.texts) == (0, 0, 0)
    assert [r.id for r in again.rows] == ids


def test_plan_options_and_checks(tmp_path, embedder):
    articles = topic_documents(4)
    one_lang = QueryDocumentPlan(langs=("en",), min_tokens=100, query_tokens=(8, 40), cross_lingual=False)
    rows = build_query_documents(articles, embedder, None, one_lang).rows
    assert {r.lang for r in rows} == {"en"} and {t for r in rows for t in r.query_tasks} == {
        "deep-paragraph-distractors"
    }
    capped = build_query_documents(
        articles, embedder, None, QueryDocumentPlan(min_tokens=100, max_documents=3)
    )
    assert len(capped.rows) == 3
    with pytest.raises(DataError, match="at least 2"):
        build_query_documents(articles, embedder, None, PLAN, exclude={a.id for a in articles[1:]})
    with pytest.raises(DataError):
        QueryDocumentPlan(min_tokens=10, max_tokens=5)
    with pytest.raises(DataError):
        write_query_documents([], tmp_path / "empty.parquet", PLAN)


def test_a_damaged_file_is_detected(tmp_path, embedder):
    rows = build_query_documents(topic_documents(3), embedder, None, PLAN).rows
    path = tmp_path / "qd.parquet"
    write_query_documents(rows, path, PLAN)
    table = pq.read_table(path)
    assert table.column("n_queries").to_pylist() == [len(r.queries) for r in rows]
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match="rebuild"):
        read_query_documents(path)
    (tmp_path / "bare.parquet").write_bytes(b"")
    with pytest.raises(DataError, match="sidecar"):
        read_query_documents(tmp_path / "bare.parquet")


def test_evaluation_distractors_are_train_documents_the_build_can_leave_out(embedder):
    from vbert.data.query_documents import evaluation_distractors
    from vbert.data.splits import filter_split
    from vbert.evaluation.deep_retrieval import DeepPlan

    articles = topic_documents(30)
    plan = DeepPlan(langs=("en", "de"), min_tokens=50, distractors=3, distractor_min_tokens=50)
    distractors = evaluation_distractors(articles, embedder, plan)
    train_ids = {a.id for a in filter_split(articles, "train")}
    assert 3 <= len(distractors) <= 6 and distractors <= train_ids
    wider = evaluation_distractors(articles, embedder, DeepPlan(**{**plan.__dict__, "distractors": 5}))
    assert distractors < wider  # a larger count only adds documents
    build = build_query_documents(filter_split(articles, "train"), embedder, None, PLAN, exclude=distractors)
    assert build.excluded == len(distractors) and not distractors & {r.id for r in build.rows}
