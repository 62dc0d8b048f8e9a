"""vbert scored by the real mteb (2.x) on an in-memory retrieval task from held-out documents."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mteb")

import mteb  # noqa: E402

from vbert import MeanPoolMerger  # noqa: E402
from vbert.data.article import Article  # noqa: E402
from vbert.errors import DataError  # noqa: E402
from vbert.evaluation.metrics import ndcg_at, ranks_of_targets  # noqa: E402
from vbert.integrations.mteb import VbertEncoder, held_out_retrieval_task  # noqa: E402
from vbert.mergers import merge_sequences  # noqa: E402

HALF_HELD_OUT = {"train": 0.5, "validation": 0.0, "test": 0.5}


def articles(n: int = 16, paragraphs: int = 14) -> list[Article]:
    """Long documents of distinct words, one paragraph per line."""
    rng = np.random.default_rng(0)
    words = [f"{a}{b}" for a in "bcdfghklmnprstvz" for b in "aeiou"]
    out = []
    for i in range(n):
        lines = [" ".join(rng.choice(words, 30)) + f" doc{i} part{p}." for p in range(paragraphs)]
        out.append(Article(f"doc-{i}", "en", f"Document {i}", "\n".join(lines), "test", "MIT"))
    return out


def task_for(embedder):
    return held_out_retrieval_task(
        articles(), embedder, fractions=HALF_HELD_OUT, min_tokens=300, max_tokens=5000, query_tokens=(10, 80)
    )


def test_encoder_follows_the_protocol(tiny_embedder):
    model = VbertEncoder(tiny_embedder, MeanPoolMerger(), cache=False)
    assert isinstance(model, mteb.EncoderProtocol)
    meta = model.mteb_model_meta
    assert meta.name.startswith("vbert/") and meta.embed_dim == tiny_embedder.dim
    assert meta.revision.startswith(tiny_embedder.fingerprint)
    assert meta.n_parameters and meta.n_parameters > 0


def test_model_meta_loads_the_model(tiny_model_dir):
    model = VbertEncoder(str(tiny_model_dir), "mean", cache=False)
    again = model.mteb_model_meta.load_model(cache=False)
    assert isinstance(again, VbertEncoder)
    assert again.mteb_model_meta.revision == model.mteb_model_meta.revision


def test_held_out_task_uses_only_the_test_split(tiny_embedder):
    task = task_for(tiny_embedder)
    task.load_data()
    corpus = task.dataset["default"]["test"]["corpus"]
    from vbert.data.splits import split_of

    ids = set(corpus["id"])
    held = {a.id for a in articles() if split_of(a, 0, HALF_HELD_OUT) == "test"}
    assert ids and ids <= held


def test_mteb_evaluate_scores_what_vbert_computes(tiny_embedder):
    task = task_for(tiny_embedder)
    merger = MeanPoolMerger()
    result = mteb.evaluate(
        VbertEncoder(tiny_embedder, merger, cache=False), task, cache=None, show_progress_bar=False
    )
    score = result.task_results[0].scores["test"][0]
    # The same ranking computed by vbert itself: documents merged, queries as the embedder does.
    task.load_data()  # mteb unloads a task's data after scoring it
    split = task.dataset["default"]["test"]
    documents, queries = list(split["corpus"]["text"]), list(split["queries"]["text"])
    doc_ids = list(split["corpus"]["id"])
    targets = np.array([doc_ids.index(next(iter(split["relevant_docs"][q]))) for q in split["queries"]["id"]])
    doc_vectors = merge_sequences(
        merger,
        [tiny_embedder.encode(tiny_embedder.split(d, tiny_embedder.content_window)) for d in documents],
    )
    ranks = ranks_of_targets(tiny_embedder.encode_queries(queries), doc_vectors, targets)
    assert score["ndcg_at_10"] == pytest.approx(ndcg_at(ranks, 10).mean(), abs=1e-3)
    assert score["ndcg_at_10"] > 0.5  # chance is far lower: a query's words live only in its document


def test_empty_split_is_a_clear_error(tiny_embedder):
    with pytest.raises(DataError, match="'validation' split gives no retrieval task"):
        held_out_retrieval_task(articles(4), tiny_embedder, split="validation", fractions=HALF_HELD_OUT)


@pytest.mark.integration
def test_default_model_with_mteb():
    import vbert

    embedder = vbert.load_embedder()
    model = VbertEncoder(embedder, "default", cache=False)
    task = held_out_retrieval_task(
        articles(paragraphs=40),
        embedder,
        fractions=HALF_HELD_OUT,
        min_tokens=1000,
        query_tokens=(10, 200),
        max_documents=4,
    )
    result = mteb.evaluate(model, task, cache=None, show_progress_bar=False)
    assert result.task_results[0].scores["test"][0]["ndcg_at_10"] > 0.5
    assert model.mteb_model_meta.name == "vbert/multilingual-e5-small+default"
