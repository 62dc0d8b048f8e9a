import numpy as np
import pytest

from vbert import MeanPoolMerger, TruncationBaseline
from vbert.data.article import Article
from vbert.evaluation.metrics import bootstrap_ci, ndcg_at, paired_bootstrap_ci, ranks_of_targets, recall_at
from vbert.evaluation.needle import evaluate_needles, make_needles
from vbert.evaluation.retrieval import (
    build_deep_paragraph_task,
    evaluate_cross_lingual,
    evaluate_deep_paragraph,
)


def test_ranks_count_ties_against_the_target():
    docs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    queries = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert ranks_of_targets(queries, docs, np.array([0, 2])).tolist() == [2, 1]


def test_metrics_on_known_ranks():
    ranks = np.array([1, 2, 11])
    assert recall_at(ranks, 1).tolist() == [1, 0, 0]
    assert np.allclose(ndcg_at(ranks, 10), [1.0, 1 / np.log2(3), 0.0])
    mean, low, high = bootstrap_ci(np.array([0.0, 1.0] * 50))
    assert mean == 0.5 and low < 0.5 < high
    diff, lo, hi = paired_bootstrap_ci(np.ones(10), np.zeros(10))
    assert diff == lo == hi == 1.0


def _doc(tag: str, n_paragraphs: int) -> str:
    return "\n".join(" ".join(f"{tag}{p}w{i}" for i in range(30)) for p in range(n_paragraphs))


def test_deep_paragraph_finds_queries_in_every_band(fake_embedder):
    articles = [Article(f"d{i}", "en", "", _doc(f"d{i}", 12), "t", "MIT") for i in range(4)]
    task = build_deep_paragraph_task(
        articles, fake_embedder, min_tokens=200, max_tokens=1000, query_tokens=(10, 40)
    )
    assert set(task.positions) == {"first", "middle", "last"}
    report = evaluate_deep_paragraph(
        task, fake_embedder, {"mean": MeanPoolMerger(), "trunc": TruncationBaseline()}, cache=False
    )
    mean = report["methods"]["mean"]["recall@1"]["mean"]
    assert mean >= 0.5  # chance is 0.25: the paragraph's words live only in its own document
    by_pos = report["methods"]["trunc"]["by_position"]
    assert by_pos["first"]["recall@1"]["mean"] >= by_pos["last"]["recall@1"]["mean"]


def test_deep_paragraph_needs_documents(fake_embedder):
    with pytest.raises(ValueError, match="at least 2 documents"):
        build_deep_paragraph_task([Article("a", "en", "", "too short", "t", "MIT")], fake_embedder)


def test_cross_lingual_pairs_by_group(fake_embedder):
    articles = []
    for i in range(6):
        words = _doc(f"g{i}", 3)
        articles.append(Article(f"en{i}", "en", "", words, "t", "MIT", group=f"g{i}"))
        articles.append(Article(f"de{i}", "de", "", words + " de", "t", "MIT", group=f"g{i}"))
    report = evaluate_cross_lingual(articles, fake_embedder, {"mean": MeanPoolMerger()}, cache=False)
    assert report["pairs"]["en-de"]["methods"]["mean"]["recall@1"]["mean"] == 1.0


def test_needles_are_distinct_and_scored(fake_embedder):
    rng = np.random.default_rng(0)
    needles = make_needles("passkey", 5, rng)
    assert len({q for _, q in needles}) == 5
    filler = [_doc("filler", 20)]
    report = evaluate_needles(
        filler,
        fake_embedder,
        {"mean": MeanPoolMerger()},
        lengths=(40, 120),
        documents_per_length=4,
        cache=False,
    )
    assert set(report["lengths"]) == {"40", "120"}
    assert 0.0 <= report["lengths"]["40"]["mean"]["mean"] <= 1.0


def test_suite_runs_every_task_and_formats(fake_embedder):
    from vbert.evaluation.suite import SIZES, Size, format_markdown, run_retrieval_suite

    SIZES["tiny-test"] = Size(deep_documents=4, needle_documents=3, needle_lengths=(40,), deep_min_tokens=200)
    try:
        articles = []
        for i in range(6):
            text = _doc(f"s{i}", 12)
            articles.append(Article(f"en{i}", "en", "", text, "t", "MIT", group=f"g{i}"))
            articles.append(Article(f"de{i}", "de", "", text + " de", "t", "MIT", group=f"g{i}"))
        report = run_retrieval_suite(
            articles,
            fake_embedder,
            {"mean": MeanPoolMerger(), "trunc": TruncationBaseline()},
            size="tiny-test",
            cache=False,
        )
    finally:
        del SIZES["tiny-test"]
    assert set(report["tasks"]) == {"deep-paragraph", "cross-lingual", "passkey", "needle"}
    text = format_markdown(report)
    assert "Deep-paragraph" in text and "en-de" in text and "| 40 |" in text
    with pytest.raises(ValueError, match="unknown tasks"):
        run_retrieval_suite(articles, fake_embedder, {}, tasks=["bogus"])
