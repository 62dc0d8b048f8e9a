"""`vbert demo` on a toy corpus: every section shares one chunk cache, nothing is embedded twice."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from vbert.cache import ChunkCache
from vbert.data.corpora.store import article_line, sha256_file, write_manifest
from vbert.data.splits import filter_split
from vbert.demo import DemoPlan, pick_showcase, run_demo
from vbert.evaluation.suite import SIZES, Size, deep_paragraph_task
from vbert.mergers import MeanPoolMerger, TruncationBaseline
from vbert.testing import DecayMerger, WordHashEmbedder
from vbert.testing.toy import toy_articles

TEST_SIZE = Size(
    deep_documents=4,
    needle_documents=3,
    needle_lengths=(90, 150),
    deep_min_tokens=150,
    deep_max_tokens=2000,
    cross_langs=("de",),
)
PLAN = DemoPlan(
    showcase_documents=3,
    finesse_samples=2,
    finesse_max_length=5,
    finesse_chunk_tokens=20,
    retrieval_size="demo-test",
    retrieval_tasks=("deep-paragraph", "cross-lingual", "passkey", "needle"),  # every task shares the cache
)


class CountingWordHash(WordHashEmbedder):
    """Counts passages (``counts``, from the base class) and queries (``queries``) apart."""

    def __init__(self) -> None:
        super().__init__(dim=16, content_window=60)
        self.queries: Counter[str] = Counter()
        self._query_model = WordHashEmbedder(dim=16, content_window=60)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.queries.update(texts)
        return self._query_model.encode(texts, batch_size)


@pytest.fixture
def toy_corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    shard = folder / "converted" / "toy.jsonl"
    shard.parent.mkdir(parents=True)
    articles = toy_articles(240, min_words=200, max_words=600)
    shard.write_text("".join(article_line(a) for a in articles), encoding="utf-8")
    entry = {"path": "converted/toy.jsonl", "sha256": sha256_file(shard), "documents": len(articles)}
    write_manifest(folder, "toy", [{**entry, "lang": "mixed", "source": "toy"}])
    return folder


@pytest.fixture
def demo_size(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(SIZES, "demo-test", TEST_SIZE)
    monkeypatch.setenv("VBERT_HOME", str(tmp_path / "home"))  # a stray default cache stays in tmp_path


def _mergers() -> dict:
    return {"merger": DecayMerger(), "mean": MeanPoolMerger(), "truncation": TruncationBaseline()}


@pytest.fixture
def pictures(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """The Anatomy pictures requested (drawing them takes seconds; vbert.finesse.heatmaps tests them)."""
    requested: list[tuple] = []
    monkeypatch.setattr(
        "vbert.finesse.heatmaps.inspect_sample",
        lambda raw, length, folder, **flags: requested.append((raw.name, length, *flags)),
    )
    return requested


def test_sections_share_one_cache_and_a_second_run_embeds_nothing(
    tmp_path, toy_corpus, demo_size, pictures, capsys
):
    embedder = CountingWordHash()
    with ChunkCache(tmp_path / "shared.sqlite") as cache:
        first = run_demo(
            tmp_path / "out-1",
            embedder=embedder,
            mergers=_mergers(),
            corpus_dir=toy_corpus,
            cache=cache,
            plan=PLAN,
        )
        assert embedder.counts and embedder.queries
        assert max(embedder.counts.values()) == 1, "a passage was embedded twice"
        assert max(embedder.queries.values()) == 1, "a query was embedded twice"
        embedded = {row["section"]: row["texts_embedded"] for row in first}
        assert embedded["long documents"] > 0 and embedded["Finesse"] > 0 and embedded["retrieval"] > 0
        assert sum(embedded.values()) == len(embedder.counts) + len(embedder.queries) == len(cache)

        passages, queries = embedder.texts, sum(embedder.queries.values())
        second = run_demo(
            tmp_path / "out-2",
            embedder=embedder,
            mergers=_mergers(),
            corpus_dir=toy_corpus,
            cache=cache,
            plan=PLAN,
        )
    assert embedder.texts == passages and sum(embedder.queries.values()) == queries, "the second run embedded"
    assert all(row["texts_embedded"] == 0 for row in second)
    assert [row["section"] for row in second] == [
        "embedder",
        "corpus",
        "long documents",
        "Finesse",
        "retrieval",
        "site",
    ]
    for out in ("out-1", "out-2"):
        assert json.loads((tmp_path / out / "timings.json").read_text()) == (
            first if out == "out-1" else second
        )
        assert (tmp_path / out / "site" / "index.html").is_file()
        assert (tmp_path / out / "retrieval.json").is_file()
    assert pictures == 2 * [
        ("merger", 5, "best"),
        ("merger", 5, "worst"),
        ("mean", 5, "best"),
        ("mean", 5, "worst"),
    ]
    printed = capsys.readouterr().out
    assert "== Time per section" in printed and "were in the cache already" in printed


def test_showcase_documents_come_from_the_retrieval_corpus(toy_corpus, demo_size):
    from vbert.data.corpora import load_corpus

    test = list(filter_split(load_corpus(toy_corpus), "test"))
    task = deep_paragraph_task(test, WordHashEmbedder(dim=16, content_window=60), "demo-test")
    picked = pick_showcase(test, task.documents, 3)
    assert len(picked) == 3 and all(a.text in task.documents for a in picked)
    assert len({a.lang for a in picked}) == min(3, len({a.lang for a in test if a.text in task.documents}))
