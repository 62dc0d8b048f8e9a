from dataclasses import replace

import numpy as np
import pytest

from vbert import MeanPoolMerger, TruncationBaseline
from vbert.data.article import Article
from vbert.evaluation.deep_retrieval import (
    CROSS,
    DEEP,
    MAX_SIM,
    DeepPlan,
    build_queries,
    deep_paragraphs,
    format_deep_markdown,
    max_sim_scores,
    ranks_among_candidates,
    run_deep_retrieval,
    select_corpus,
)
from vbert.evaluation.paired import cluster_resample_means, paired_report
from vbert.evaluation.retrieval import EncodedDocuments


def _doc(tag: str, n_paragraphs: int, words: int = 30) -> str:
    return "\n".join(" ".join(f"{tag}p{p}w{i}" for i in range(words)) for p in range(n_paragraphs))


def _plan(**overrides) -> DeepPlan:
    settings = dict(
        langs=("en", "de"),
        min_tokens=200,
        max_tokens=2000,
        distractors=3,
        distractor_min_tokens=10,
        queries_per_document=2,
        query_tokens=(10, 40),
    )
    settings.update(overrides)
    return DeepPlan(**settings)


def test_cluster_bootstrap_is_paired_and_resamples_whole_clusters():
    values = np.array([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    boot = cluster_resample_means(values, np.array(["a", "a", "b", "b"]), resamples=200)
    assert boot.shape == (200, 2)
    assert np.array_equal(boot[:, 0], boot[:, 1])  # same resample for every method
    assert set(np.round(boot[:, 0], 6)) <= {0.0, 0.5, 1.0}  # a cluster comes whole or not at all
    with pytest.raises(ValueError, match="at least 2 clusters"):
        cluster_resample_means(values, np.array(["a"] * 4))


def test_paired_report_gap_share():
    clusters = np.arange(40) % 20
    per_query = {
        "mean": np.full(40, 0.5),
        "half": np.full(40, 0.7),
        MAX_SIM: np.full(40, 0.9),
    }
    per_query["half"][::2] = 0.6  # noisy, 0.65 on average: 37.5% of the 0.4 gap
    report = paired_report(per_query, clusters, "mean", MAX_SIM, resamples=300)
    assert report["half"]["gap_recovered"]["mean"] == pytest.approx(0.375)
    assert report["half"]["delta_vs_mean"]["mean"] == pytest.approx(0.15)
    low, high = report["half"]["delta_vs_mean"]["ci_low"], report["half"]["delta_vs_mean"]["ci_high"]
    assert low <= 0.15 <= high
    assert "delta_vs_mean" not in report["mean"] and "gap_recovered" not in report[MAX_SIM]
    with pytest.raises(ValueError, match="not among"):
        paired_report(per_query, clusters, "median")


def test_ranks_only_among_candidates_and_ties_count_against():
    scores = np.array([[0.9, 0.5, 0.5, 0.95]])
    candidates = np.array([[True, True, True, False]])  # document 3 is in another language
    assert ranks_among_candidates(scores, np.array([0]), candidates).tolist() == [1]
    assert ranks_among_candidates(scores, np.array([1]), candidates).tolist() == [3]


def test_max_sim_takes_each_documents_best_chunk():
    encoded = EncodedDocuments(
        [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.6, 0.8]])], [np.ones(2), np.ones(1)]
    )
    scores = max_sim_scores(np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32), encoded, block=1)
    assert np.allclose(scores, [[1.0, 0.8], [1.0, 0.6]])


def test_deep_paragraphs_start_past_the_first_window(fake_embedder):
    text = _doc("x", 6, words=25)  # 60-token window: paragraphs start at 0, 25, 50, 75, 100, 125
    found = deep_paragraphs(text, fake_embedder, (10, 40))
    assert [p.line for p in found] == [3, 4, 5]
    assert [p.window for p in found] == [2, 2, 3]


def test_corpus_and_queries(fake_embedder):
    held, pool = [], []
    for i in range(4):
        held.append(Article(f"en{i}", "en", "", _doc(f"g{i}", 10), "t", "MIT", group=f"g{i}"))
        held.append(Article(f"de{i}", "de", "", _doc(f"d{i}", 10), "t", "MIT", group=f"g{i}"))
    held.append(Article("ko0", "ko", "", _doc("k", 10), "t", "MIT"))  # language not in the plan
    held.append(Article("en-short", "en", "", _doc("s", 2), "t", "MIT"))  # under min_tokens
    pool = [Article(f"tr{i}", "en", "", _doc(f"t{i}", 3), "t", "MIT") for i in range(6)]
    corpus = select_corpus(held, pool, fake_embedder, _plan())
    assert sum(corpus.heldout) == 8 and len(corpus.articles) == 11
    again = select_corpus(held, list(reversed(pool)), fake_embedder, _plan())
    assert [a.id for a in again.articles] == [a.id for a in corpus.articles]  # order-free choice
    queries = build_queries(corpus, fake_embedder, _plan())
    deep, cross = queries[DEEP], queries[CROSS]
    assert len(deep.texts) == 16 and all(r["source"] == r["target"] for r in deep.records)
    assert {r["pair"] for r in cross.records} == {"en-de", "de-en"} and len(cross.texts) == 16
    assert all(r["window"] >= 2 for r in deep.records + cross.records)


def test_boilerplate_lines_are_never_queries(fake_embedder):
    boiler = " ".join(f"boiler{i}" for i in range(20))
    held = [
        Article(f"en{i}", "en", "", _doc(f"a{i}", 4) + "\n" + boiler + "\n" + _doc(f"b{i}", 2), "t", "MIT")
        for i in range(3)
    ]
    corpus = select_corpus(held, [], fake_embedder, _plan(queries_per_document=50))
    texts = build_queries(corpus, fake_embedder, _plan(queries_per_document=50))[DEEP].texts
    assert texts and boiler not in texts


def test_end_to_end_max_sim_beats_mean_and_report_renders(fake_embedder):
    held = [Article(f"en{i}", "en", "", _doc(f"g{i}", 12), "t", "MIT") for i in range(6)]
    pool = [Article(f"tr{i}", "en", "", _doc(f"t{i}", 12), "t", "MIT") for i in range(6)]
    mergers = {"mean": MeanPoolMerger(), "truncation": TruncationBaseline()}
    report = run_deep_retrieval(held, pool, fake_embedder, mergers, _plan(), cache=False, show_progress=False)
    task = report["tasks"][DEEP]
    ndcg = task["metrics"]["ndcg@10"]
    assert task["queries"] == 12 and task["clusters"] == 6 and task["candidates_per_query"] == 9
    # a paragraph's words live only in its own document, mostly inside one chunk
    assert ndcg[MAX_SIM]["score"]["mean"] >= max(0.9, ndcg["mean"]["score"]["mean"])
    assert ndcg["truncation"]["score"]["mean"] < ndcg[MAX_SIM]["score"]["mean"]
    assert "gap_recovered" in ndcg["truncation"] and len(task["per_query_rank"]["mean"]) == 12
    assert "| truncation |" in format_deep_markdown(report)
    with pytest.raises(ValueError, match="reference"):
        run_deep_retrieval(held, pool, fake_embedder, {MAX_SIM: MeanPoolMerger()}, _plan(), cache=False)


def test_suite_runs_the_deep_tasks_with_distractors(fake_embedder):
    from vbert.evaluation.suite import DEFAULT_TASKS, deep_plan_for, format_markdown, run_retrieval_suite

    held = []
    for i in range(4):
        held.append(Article(f"en{i}", "en", "", _doc(f"g{i}", 10), "t", "MIT", group=f"g{i}"))
        held.append(Article(f"de{i}", "de", "", _doc(f"d{i}", 10), "t", "MIT", group=f"g{i}"))
    pool = [Article(f"tr{i}", "de", "", _doc(f"t{i}", 3), "t", "MIT") for i in range(6)]
    plan = replace(_plan(), distractors=2)
    assert deep_plan_for("small", seed=3, langs=["en"], distractors=7).distractors == 7
    assert DEEP not in DEFAULT_TASKS
    report = run_retrieval_suite(
        held,
        fake_embedder,
        {"mean": MeanPoolMerger()},
        tasks=(DEEP, CROSS),
        distractors=pool,
        deep_plan=plan,
        cache=False,
    )
    assert report["deep_corpus"]["distractors"] == 2 and set(report["tasks"]) == {DEEP, CROSS}
    assert "### cross-lingual-deep" in format_markdown(report)


def test_gap_share_is_none_when_max_sim_does_not_beat_the_baseline():
    per_query = {"mean": np.full(6, 0.8), "other": np.full(6, 0.7), MAX_SIM: np.full(6, 0.8)}
    report = paired_report(per_query, np.arange(6), "mean", MAX_SIM, resamples=50)
    assert report["other"]["gap_recovered"]["mean"] is None


def test_distractor_effect_names_what_wins_instead(fake_embedder):
    held = [Article(f"en{i}", "en", "", _doc(f"g{i}", 12), "t", "MIT") for i in range(4)]
    pool = [Article(f"tr{i}", "en", "", _doc(f"t{i}", 2), "t", "MIT") for i in range(4)]
    report = run_deep_retrieval(
        held, pool, fake_embedder, {"truncation": TruncationBaseline()}, _plan(distractors=4), cache=False
    )
    effect = report["tasks"][DEEP]["distractor_effect"]
    for method in ("mean", "truncation", MAX_SIM):
        entry = effect[method]
        assert 0.0 <= entry["ndcg@10_without_distractors"] <= 1.0
        assert entry["wrong_top1_distractors"] <= entry["wrong_top1"] <= report["tasks"][DEEP]["queries"]
    truncation = effect["truncation"]
    assert (
        truncation["ndcg@10_without_distractors"]
        >= report["tasks"][DEEP]["metrics"]["ndcg@10"]["truncation"]["score"]["mean"]
    )
