"""Stored corpora: JSONL shards, manifest checksums, corruption detection, load_corpus and stats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vbert.data.article import Article
from vbert.data.corpora import TokenizerCounter, corpus_stats, load_corpus, stored_corpus_stats
from vbert.data.corpora.store import (
    CorpusIntegrityError,
    article_line,
    corpus_hash,
    iter_corpus,
    read_manifest,
    sha256_file,
    write_manifest,
)


def make_article(n: int, lang: str = "en", source: str = "demo", words: int = 10, group: str = "") -> Article:
    return Article(
        id=f"{source}/{lang}/{n}",
        lang=lang,
        title=f"page {n}",
        text=" ".join(f"w{n}_{i}" for i in range(words)),
        source=source,
        license="MIT",
        group=group,
    )


def write_corpus(folder: Path, shards: dict[tuple[str, str], list[Article]]) -> dict:
    entries = []
    for (lang, source), articles in shards.items():
        path = folder / "converted" / source / f"{lang}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(article_line(a) for a in articles), encoding="utf-8")
        entries.append(
            {
                "path": path.relative_to(folder).as_posix(),
                "sha256": sha256_file(path),
                "documents": len(articles),
                "lang": lang,
                "source": source,
            }
        )
    return write_manifest(folder, "demo", entries)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    write_corpus(
        tmp_path,
        {
            ("en", "demo"): [make_article(1), make_article(2, words=700)],
            ("ko", "demo"): [make_article(3, "ko", words=650)],
            ("ko", "other"): [make_article(4, "ko", "other")],
        },
    )
    return tmp_path


def test_round_trip_and_filters(corpus: Path) -> None:
    articles = list(iter_corpus(corpus))
    assert [a.id for a in articles] == ["demo/en/1", "demo/en/2", "demo/ko/3", "other/ko/4"]
    assert articles[0] == make_article(1)
    assert [a.id for a in iter_corpus(corpus, langs=["ko"])] == ["demo/ko/3", "other/ko/4"]
    assert [a.id for a in iter_corpus(corpus / "manifest.json", sources=["other"])] == ["other/ko/4"]
    assert [a.id for a in iter_corpus(corpus, langs=["ko-KR"], sources=["demo"])] == ["demo/ko/3"]


def test_manifest_is_deterministic_and_hash_tracks_content(tmp_path: Path) -> None:
    a = write_corpus(
        tmp_path / "a", {("en", "demo"): [make_article(1)], ("de", "demo"): [make_article(2, "de")]}
    )
    b = write_corpus(
        tmp_path / "b", {("de", "demo"): [make_article(2, "de")], ("en", "demo"): [make_article(1)]}
    )
    assert a["corpus_hash"] == b["corpus_hash"]
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    c = write_corpus(
        tmp_path / "c", {("en", "demo"): [make_article(1, words=11)], ("de", "demo"): [make_article(2, "de")]}
    )
    assert c["corpus_hash"] != a["corpus_hash"]
    assert corpus_hash(reversed(a["shards"])) == a["corpus_hash"]
    assert a["documents"] == 2


def test_corrupted_truncated_and_missing_shards_are_detected(corpus: Path) -> None:
    shard = corpus / "converted" / "demo" / "ko.jsonl"
    original = shard.read_bytes()
    shard.write_bytes(original.replace(b"w3_0", b"w3_X"))
    with pytest.raises(CorpusIntegrityError, match=r"ko\.jsonl is corrupted"):
        list(iter_corpus(corpus))
    # checked before any row of the bad shard is yielded, so no wrong article escapes
    seen = []
    with pytest.raises(CorpusIntegrityError):
        for article in iter_corpus(corpus):
            seen.append(article.id)
    assert seen == ["demo/en/1", "demo/en/2"]
    shard.write_bytes(original[:-5])
    with pytest.raises(CorpusIntegrityError, match="corrupted"):
        list(iter_corpus(corpus, langs=["ko"]))
    shard.unlink()
    with pytest.raises(CorpusIntegrityError, match="missing"):
        list(iter_corpus(corpus, langs=["ko"]))
    assert len(list(iter_corpus(corpus, langs=["en"]))) == 2  # other shards still readable


def test_bad_manifests_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="vbert corpus fetch debian"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CorpusIntegrityError, match="not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}), encoding="utf-8")
    with pytest.raises(CorpusIntegrityError, match="not a vbert-corpus/1 manifest"):
        read_manifest(tmp_path)


def test_load_corpus_dispatch(corpus: Path, tmp_path: Path) -> None:
    assert len(list(load_corpus(corpus))) == 4
    assert len(list(load_corpus(str(corpus), langs=["en"]))) == 2
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("hello world", encoding="utf-8")
    (texts / "b.jsonl").write_text(json.dumps({"text": "bonjour", "lang": "fr"}) + "\n", encoding="utf-8")
    by_path = list(load_corpus(texts, lang="en"))
    by_name = list(load_corpus("files", path=texts, lang="en"))
    assert by_path == by_name and {a.lang for a in by_path} == {"en", "fr"}
    assert [a.id for a in load_corpus("debian", corpus_dir=corpus)] == [a.id for a in iter_corpus(corpus)]
    with pytest.raises(ValueError, match="needs path="):
        load_corpus("files")
    with pytest.raises(ValueError, match="unknown corpus 'nonsense'"):
        load_corpus("nonsense")


def test_corpus_stats_per_language_and_source(corpus: Path, fake_embedder) -> None:
    stats = corpus_stats(iter_corpus(corpus), fake_embedder, min_tokens=600)
    assert list(stats) == ["en", "ko"]
    assert stats["en"] == {
        "documents": 2,
        "tokens": 710,
        "docs_ge_600": 1,
        "sources": {"demo": {"documents": 2, "tokens": 710, "docs_ge_600": 1}},
    }
    assert stats["ko"]["documents"] == 2 and stats["ko"]["docs_ge_600"] == 1
    assert set(stats["ko"]["sources"]) == {"demo", "other"}
    assert corpus_stats(iter_corpus(corpus), fake_embedder, min_tokens=5)["ko"]["docs_ge_5"] == 2


def test_tokenizer_counter(tmp_path: Path) -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tokenizer = Tokenizer(WordLevel({"[UNK]": 0, "hello": 1}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    counter = TokenizerCounter(tmp_path)  # a folder holding tokenizer.json works too
    assert counter.count_tokens("hello there, world") == 4
    assert counter.fingerprint.startswith("tokenizer-")
    with pytest.raises(FileNotFoundError, match="no tokenizer file"):
        TokenizerCounter(tmp_path / "missing.json")


class CountingCounter:
    def __init__(self, fingerprint: str | None) -> None:
        self.fingerprint = fingerprint
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        self.calls += 1
        return len(text.split())


def test_stored_corpus_stats_are_cached_by_corpus_counter_and_threshold(corpus: Path) -> None:
    counter = CountingCounter("words-v1")
    first = stored_corpus_stats(corpus, counter)
    assert counter.calls == 4 and first == corpus_stats(iter_corpus(corpus), counter)
    counter.calls = 0
    assert stored_corpus_stats(corpus / "manifest.json", counter) == first and counter.calls == 0
    assert list(stored_corpus_stats(corpus, counter, langs=["ko"])) == ["ko"] and counter.calls == 0
    stored_corpus_stats(corpus, counter, min_tokens=5)
    assert counter.calls == 4  # another threshold is another entry
    counter.calls = 0
    stored_corpus_stats(corpus, CountingCounter("words-v2"))
    assert len(list((corpus / "stats").glob("*.json"))) == 3
    # a changed corpus (new hash) is counted again
    write_corpus(corpus, {("en", "demo"): [make_article(1)]})
    assert stored_corpus_stats(corpus, counter)["en"]["documents"] == 1 and counter.calls == 1


def test_counter_without_fingerprint_is_not_cached(corpus: Path) -> None:
    counter = CountingCounter(None)
    stored_corpus_stats(corpus, counter)
    stored_corpus_stats(corpus, counter)
    assert counter.calls == 8 and not (corpus / "stats").exists()
