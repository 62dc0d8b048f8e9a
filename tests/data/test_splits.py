"""Deterministic document splits that keep parallel translations together."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from vbert.data.article import Article
from vbert.data.splits import filter_split, normalize_fractions, split_key, split_of

LANGS = ("en", "de", "fr", "ko", "ja")


def corpus(pages: int = 400, langs: tuple[str, ...] = LANGS) -> list[Article]:
    articles = [
        Article(
            id=f"src/{lang}/page{n}",
            lang=lang,
            title="",
            text="t",
            source="src",
            license="MIT",
            group=f"src:page{n}",
        )
        for n in range(pages)
        for lang in langs
    ]
    articles += [
        Article(id=f"solo/{n}", lang="en", title="", text="t", source="solo", license="MIT")
        for n in range(pages)
    ]
    return articles


def test_no_group_spans_two_splits() -> None:
    splits_by_group: dict[str, set[str]] = defaultdict(set)
    for article in corpus():
        splits_by_group[article.group or article.id].add(split_of(article, seed=7))
    assert all(len(splits) == 1 for splits in splits_by_group.values())
    # and the split really varies across groups
    assert {next(iter(s)) for s in splits_by_group.values()} == {"train", "validation", "test"}


def test_fractions_are_respected_roughly() -> None:
    counts = Counter(split_of(a, seed=1) for a in corpus(pages=2000, langs=("en",)))
    total = sum(counts.values())
    assert counts["train"] / total == pytest.approx(0.8, abs=0.03)
    assert counts["validation"] / total == pytest.approx(0.1, abs=0.02)
    assert counts["test"] / total == pytest.approx(0.1, abs=0.02)


def test_deterministic_and_stable_when_documents_are_added() -> None:
    small = corpus(pages=100)
    before = {a.id: split_of(a, seed=3) for a in small}
    bigger = list(reversed(corpus(pages=300)))
    after = {a.id: split_of(a, seed=3) for a in bigger}
    assert all(after[i] == s for i, s in before.items())
    other_seed = {a.id: split_of(a, seed=4) for a in small}
    assert other_seed != before


def test_filter_split_partitions_the_corpus_in_order() -> None:
    articles = corpus(pages=50)
    parts = {name: list(filter_split(articles, name, seed=0)) for name in ("train", "validation", "test")}
    assert sum(len(p) for p in parts.values()) == len(articles)
    ids = [a.id for p in parts.values() for a in p]
    assert len(set(ids)) == len(articles)
    train_ids = [a.id for a in parts["train"]]
    assert train_ids == [a.id for a in articles if a.id in set(train_ids)]
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        filter_split(articles, "dev")


def test_custom_fractions_and_validation() -> None:
    article = corpus(pages=1)[0]
    assert split_of(article, 0, {"train": 1.0, "test": 0.0}) == "train"
    assert split_of(article, 0, (0.0, 0.0, 1.0)) == "test"
    assert normalize_fractions([0.5, 0.25, 0.25]) == {"train": 0.5, "validation": 0.25, "test": 0.25}
    with pytest.raises(ValueError, match="sum to 1"):
        normalize_fractions({"train": 0.9, "test": 0.2})
    with pytest.raises(ValueError, match="non-negative"):
        normalize_fractions({"train": 1.5, "test": -0.5})
    with pytest.raises(ValueError, match="give 3 fractions"):
        normalize_fractions([0.5, 0.5])


def test_split_key_uses_group_then_id() -> None:
    grouped, solo = corpus(pages=1, langs=("en",))
    assert split_key(grouped) == "group:src:page0"
    assert split_key(solo) == "id:solo/0"
