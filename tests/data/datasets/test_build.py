"""The three dataset builders: row contents, parameters recorded, each text embedded once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from vbert.cache import ChunkCache
from vbert.data.article import Article
from vbert.data.datasets import (
    CommonOptions,
    DatasetError,
    atomic_spans,
    build_article_sequences,
    build_atomic,
    build_n_to_one,
    load_pairs,
    load_sequences,
    select_windows,
)
from vbert.data.datasets.articles import merge_blank_pieces
from vbert.data.datasets.atomic import NO_TOKEN_ID, SingleTokens
from vbert.long_document import LongDocumentEncoder
from vbert.mergers import MeanPoolMerger
from vbert.testing import CountingEmbedder
from vbert.testing.toy import ToyEmbedder, toy_articles

SPLITS = CommonOptions(
    articles_per_shard=4,
    split_rule=lambda a: "test" if a.id.endswith("3") else "train",
    split_spec="test = ids ending in 3",
)


@pytest.fixture(scope="module")
def toy() -> ToyEmbedder:
    return ToyEmbedder(dim=16, max_tokens=96)


@pytest.fixture(scope="module")
def corpus() -> list[Article]:
    articles = toy_articles(10, min_words=10, max_words=150)
    blank = Article(id="blank", lang="en", title="", text=" \n\n ", source="toy", license="CC0-1.0")
    return [*articles[:5], blank, *articles[5:]]


def read_split(folder: Path, split: str) -> list[dict]:
    rows = []
    for path in sorted((folder / "data").glob(f"{split}-*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows


def test_article_sequences_one_row_per_article_with_its_chunk_vectors(tmp_path, toy, corpus):
    result = build_article_sequences(corpus, toy, tmp_path, chunk_tokens=12, min_tokens=0, options=SPLITS)
    rows = {r["id"]: r for split in ("train", "test") for r in read_split(tmp_path, split)}
    assert set(rows) == {a.id for a in corpus} - {"blank"}
    for article in corpus[:3]:
        row = rows[article.id]
        chunks = toy.split(article.text, 12)
        assert row["length"] == len(chunks) == len(row["embeddings"])
        assert row["token_counts"] == [toy.count_tokens(c) for c in chunks]
        assert row["n_tokens"] == toy.count_tokens(article.text)
        assert row["split"] == ("test" if article.id.endswith("3") else "train")
        expected = toy.encode(chunks)
        np.testing.assert_allclose(np.asarray(row["embeddings"], dtype=np.float32), expected, atol=2e-3)
    manifest = result.manifest
    assert manifest["kind"] == "article-sequences"
    assert manifest["embedder"]["fingerprint"] == toy.fingerprint
    assert manifest["text_prefix"] == "passage: "
    assert manifest["params"]["chunk_tokens"] == 12
    assert (manifest["seed"], manifest["dtype"], manifest["split_spec"]) == (
        0,
        "float16",
        "test = ids ending in 3",
    )
    assert manifest["corpus"]["n_articles"] == len(corpus)
    assert manifest["stats"]["articles_left_out"] == 1
    assert manifest["splits"]["test"]["rows"] == 1
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest


def test_float32_storage_is_exact(tmp_path, toy, corpus):
    options = CommonOptions(dtype="float32")
    build_article_sequences(corpus[:2], toy, tmp_path, chunk_tokens=12, min_tokens=0, options=options)
    row = read_split(tmp_path, "train")[0]
    assert (
        pq.read_schema(next((tmp_path / "data").glob("*.parquet")))
        .field("embeddings")
        .type.value_type.value_type.bit_width
        == 32
    )
    np.testing.assert_array_equal(
        np.asarray(row["embeddings"], np.float32), toy.encode(toy.split(corpus[0].text, 12))
    )


def test_chunk_size_must_fit_the_window(tmp_path, toy, corpus):
    with pytest.raises(ValueError, match="content window"):
        build_article_sequences(corpus, toy, tmp_path, chunk_tokens=toy.content_window + 1)


def test_n_to_one_inputs_are_the_articles_chunk_vectors_and_target_the_window_text(tmp_path, toy, corpus):
    counting = CountingEmbedder(toy)
    result = build_n_to_one(corpus, counting, tmp_path, max_chunks=6, chunk_tokens=10, options=SPLITS)
    rows = read_split(tmp_path, "train") + read_split(tmp_path, "test")
    assert rows and result.manifest["stats"]["pairs"] == len(rows)
    by_id = {a.id: a for a in corpus}
    for row in rows[:40]:
        chunks = toy.split(by_id[row["article_id"]].text, 10)
        window = chunks[row["start"] : row["start"] + row["length"]]
        assert 2 <= row["length"] <= 6 == len(window) or 2 <= row["length"] == len(window)
        np.testing.assert_allclose(np.asarray(row["inputs"], np.float32), toy.encode(window), atol=2e-3)
        np.testing.assert_allclose(
            np.asarray(row["target"], np.float32), toy.encode(["".join(window)])[0], atol=2e-3
        )
        assert row["target_tokens"] == toy.count_tokens("".join(window)) <= toy.content_window
    # every chunk and every target text went through the embedder exactly once
    assert max(counting.counts.values()) == 1
    assert result.texts_embedded == sum(counting.counts.values())
    assert result.manifest["params"] == {
        "chunk_tokens": 10,
        "min_chunks": 2,
        "max_chunks": 6,
        "windows": "tiled",
        "max_windows_per_article": 32,
        "chunking": "embedder.split on token boundaries, no overlap",
    }


def test_n_to_one_refuses_windows_longer_than_the_base_window(tmp_path, toy, corpus):
    with pytest.raises(ValueError, match="do not fit the embedder's content window"):
        build_n_to_one(corpus, toy, tmp_path, max_chunks=10, chunk_tokens=50)


def test_select_windows_tiles_every_size_reproducibly():
    rng = np.random.default_rng(3)
    windows = select_windows(40, 2, 10, 0, rng)
    assert windows == select_windows(40, 2, 10, 0, np.random.default_rng(3))
    sizes = Counter(size for _, size in windows)
    assert set(sizes) == set(range(2, 11))
    for size, count in sizes.items():
        assert 40 // size - 1 <= count <= 40 // size  # a tiling with a random offset
        starts = sorted(s for s, k in windows if k == size)
        assert all(b - a == size for a, b in zip(starts, starts[1:], strict=False))
    assert all(s >= 0 and s + k <= 40 for s, k in windows)
    capped = select_windows(40, 2, 10, 16, np.random.default_rng(3))
    assert len(capped) == 16 and set(capped) <= set(windows)
    assert len(select_windows(12, 2, 10, 0, rng, mode="all")) == sum(12 - k + 1 for k in range(2, 11))
    assert select_windows(1, 2, 10, 0, rng) == []
    assert select_windows(3, 2, 10, 0, np.random.default_rng(0)) in ([(0, 2), (0, 3)], [(0, 3), (1, 2)])


def test_atomic_spans_are_the_documented_prefixes_and_tree():
    spans = atomic_spans(507)
    prefixes = [(s, n) for s, n, kind, _ in spans if kind == "prefix"]
    assert prefixes == [(0, 2), (0, 4), (0, 8), (0, 16), (0, 32), (0, 64), (0, 128), (0, 256), (0, 507)]
    tree = [(s, n, level) for s, n, kind, level in spans if kind == "tree"]
    assert Counter(level for _, _, level in tree) == {1: 2, 2: 4, 3: 8, 4: 16}
    assert len(spans) == 39
    for level in range(1, 5):
        parts = sorted((s, n) for s, n, lv in tree if lv == level)
        assert parts[0][0] == 0 and sum(n for _, n in parts) == 507  # the parts tile the window
    assert atomic_spans(3) == [(0, 2, "prefix", 0), (0, 3, "prefix", 0), (1, 2, "tree", 1)]
    assert atomic_spans(1) == []
    assert len({(s, n) for s, n, _, _ in atomic_spans(64, tree_depth=6)}) == len(
        atomic_spans(64, tree_depth=6)
    )


def check_atomic(folder: Path, embedder, corpus, result, window_tokens: int) -> list[tuple[int, str]]:
    """Token table = each distinct token once; every pair's inputs and target match its window span."""
    table = pq.read_table(folder / "tokens").sort_by("row").to_pylist()
    vocabulary = [(t["token_id"], t["token"]) for t in table]
    assert [t["row"] for t in table] == list(range(len(table)))
    assert vocabulary == sorted(set(vocabulary)) and len(vocabulary) == result.manifest["vocabulary"]["size"]
    base = embedder.inner if isinstance(embedder, CountingEmbedder) else embedder
    np.testing.assert_allclose(
        np.asarray(table[3]["embedding"], np.float32), base.encode([vocabulary[3][1]])[0], atol=2e-3
    )
    rows = read_split(folder, "train")
    by_id = {a.id: a for a in corpus}
    tokens = SingleTokens(base)
    for row in rows[::60]:
        window = tokens.windows(by_id[row["article_id"]].text, window_tokens)[row["window"]]
        assert [vocabulary[i] for i in row["token_rows"]] == window.keys[
            row["start"] : row["start"] + row["length"]
        ]
        assert (row["start"], row["length"], row["span"], row["level"]) in atomic_spans(len(window.keys))
        text = window.span_text(row["start"], row["length"])
        np.testing.assert_allclose(np.asarray(row["target"], np.float32), base.encode([text])[0], atol=2e-3)
        assert row["target_tokens"] == base.count_tokens(text)
    assert result.manifest["stats"]["pairs"] == len(rows) + len(read_split(folder, "test"))
    assert result.manifest["tables"]["tokens"]["rows"] == len(table)
    return vocabulary


def test_atomic_embeds_each_token_once_and_pairs_gather_them(tmp_path, toy, corpus):
    counting = CountingEmbedder(toy)
    result = build_atomic(corpus, counting, tmp_path, window_tokens=40, tokens_per_shard=7, options=SPLITS)
    vocabulary = check_atomic(tmp_path, counting, corpus, result, 40)
    assert all(token_id == NO_TOKEN_ID for token_id, _ in vocabulary)  # the toy has no HF tokenizer
    assert all(counting.counts[text] == 1 for _, text in vocabulary)
    assert len(list((tmp_path / "tokens").glob("*.parquet"))) == -(-len(vocabulary) // 7)
    assert result.manifest["params"]["tokenization"] == "split"


class WordTokenizerEmbedder:
    """A toy embedder that, like TransformersEmbedder, exposes a Hugging Face fast tokenizer."""

    def __init__(self, texts: list[str]) -> None:
        from tokenizers import Tokenizer, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        words = sorted(
            {w for t in texts for w in pre_tokenizers.Whitespace().pre_tokenize_str(t) for w in [w[0]]}
        )
        backend = Tokenizer(
            models.WordLevel({"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words)}}, "[UNK]")
        )
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        self.tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
        self.inner = ToyEmbedder(dim=16, max_tokens=96)
        for attr in ("dim", "max_tokens", "content_window", "prefix"):
            setattr(self, attr, getattr(self.inner, attr))
        self.name, self.fingerprint = "word-tokenizer-toy", "word-" + self.inner.fingerprint

    def _offsets(self, text: str) -> list[tuple[int, int]]:
        return self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]

    def count_tokens(self, text: str) -> int:
        return len(self._offsets(text))

    def split(self, text: str, max_tokens: int) -> list[str]:
        offsets = self._offsets(text)
        cuts = [0, *(offsets[i][0] for i in range(max_tokens, len(offsets), max_tokens)), len(text)]
        return [text[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True) if text[a:b].strip()]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self.inner.encode(texts, batch_size)


def test_atomic_keys_tokens_by_tokenizer_id_when_the_embedder_has_a_tokenizer(tmp_path, corpus):
    embedder = WordTokenizerEmbedder([a.text for a in corpus])
    counting = CountingEmbedder(embedder)
    counting.tokenizer = embedder.tokenizer
    result = build_atomic(corpus, counting, tmp_path, window_tokens=30, options=SPLITS)
    assert result.manifest["params"]["tokenization"] == "tokenizer"
    vocabulary = check_atomic(tmp_path, embedder, corpus, result, 30)
    assert all(text == embedder.tokenizer.decode([token_id]) for token_id, text in vocabulary)
    assert len({token_id for token_id, _ in vocabulary}) == len(vocabulary)
    assert all(counting.counts[text] == 1 for _, text in vocabulary)


def test_atomic_needs_a_corpus_it_can_read_twice(tmp_path, toy, corpus):
    with pytest.raises(TypeError, match="reads the corpus twice"):
        build_atomic(iter(corpus), toy, tmp_path)
    result = build_atomic(lambda: iter(corpus[:2]), toy, tmp_path / "ok", window_tokens=30)
    assert result.manifest["corpus"]["n_articles"] == 2


def test_single_tokens_cover_the_window_text(toy):
    text = "  Hello wonderful world.\n\n한국어 텍스트 입니다  "
    windows = SingleTokens(toy).windows(text, 5)
    assert "".join(w.text for w in windows) == text
    for window in windows:
        assert len(window.keys) <= 5
        assert all(toy.count_tokens(piece) == 1 for _, piece in window.keys)
        assert window.span_text(0, len(window.keys)).strip() == window.text.strip()
    assert merge_blank_pieces(["  ", "a", " ", "b", "\n"], [True, False, True, False, True]) == [
        "  a ",
        "b\n",
    ]


def test_bad_corpora_get_clear_errors(tmp_path, toy, corpus):
    with pytest.raises(DatasetError, match="no articles"):
        build_article_sequences([], toy, tmp_path / "empty", min_tokens=0)
    with pytest.raises(ValueError, match="occurs twice"):
        build_article_sequences([corpus[0], corpus[0]], toy, tmp_path / "dup")
    with pytest.raises(TypeError, match="Article"):
        build_article_sequences([{"text": "x"}], toy, tmp_path / "dict")
    bad_split = CommonOptions(split_rule=lambda a: "no good", split_spec="broken")
    with pytest.raises(ValueError, match="split names"):
        build_article_sequences(corpus, toy, tmp_path / "split", options=bad_split)
    with pytest.raises(ValueError, match="split_spec"):
        CommonOptions(split_rule=lambda a: "train")
    with pytest.raises(ValueError, match="dtype"):
        CommonOptions(dtype="bfloat16")


def test_embedder_output_is_checked(tmp_path, corpus):
    class Broken(ToyEmbedder):
        def encode(self, texts, batch_size=32):
            return np.full((len(texts), self.dim), np.nan, dtype=np.float32)

    with pytest.raises(DatasetError, match="NaN"):
        build_article_sequences(corpus, Broken(dim=8), tmp_path, min_tokens=0)


def test_short_articles_are_left_out_of_sequences(tmp_path, toy, corpus):
    lengths = {a.id: toy.count_tokens(a.text) for a in corpus}
    threshold = sorted(lengths.values())[len(lengths) // 2]
    result = build_article_sequences(corpus, toy, tmp_path, chunk_tokens=12, min_tokens=threshold)
    kept = {r["id"] for r in read_split(tmp_path, "train")}
    assert kept == {i for i, n in lengths.items() if n >= threshold}
    assert result.manifest["stats"]["articles_left_out"] == len(corpus) - len(kept)
    assert result.manifest["params"]["min_tokens"] == threshold


# The three builders with the real default embedder (multilingual-e5-small) on a little real text.
TEXTS = {
    "en": "The Debian project is an association of individuals who have made common cause to create a free "
    "operating system. This operating system is called Debian.\n\n",
    "ko": "데비안 프로젝트는 자유 운영 체제를 만들기 위해 공동의 목적을 가진 개인들의 모임입니다. "
    "우리가 만든 운영 체제는 데비안이라고 합니다.\n\n",
    "ja": "Debian プロジェクトは、フリーなオペレーティングシステムを作成するという共通の目的を持った個人の集まりです。\n",
}


@pytest.fixture(scope="module")
def embedder():
    from vbert.embedders import load_embedder

    try:
        return load_embedder("default")
    except (OSError, ValueError, RuntimeError) as err:
        pytest.skip(f"the default embedder is not available here: {err}")


@pytest.fixture(scope="module")
def real_corpus() -> list[Article]:
    return [
        Article(id=f"it:{lang}", lang=lang, title=lang, text=text * 6, source="test", license="CC0-1.0")
        for lang, text in TEXTS.items()
    ]


@pytest.mark.integration
def test_real_embedder_builds_all_three(tmp_path, embedder, real_corpus):
    options = CommonOptions(batch_size=16)
    seq = build_article_sequences(
        real_corpus, embedder, tmp_path / "seq", chunk_tokens=32, min_tokens=0, options=options
    )
    assert seq.manifest["text_prefix"] == "passage: " and seq.manifest["embedder"]["content_window"] == 508
    row = load_sequences(tmp_path / "seq", cache_dir=tmp_path / "hf")[0]
    chunks = embedder.split(real_corpus[0].text, 32)
    np.testing.assert_allclose(row["inputs"], embedder.encode(chunks), atol=3e-3)

    pairs = build_n_to_one(
        real_corpus, embedder, tmp_path / "pairs", max_chunks=10, chunk_tokens=50, options=options
    )
    assert pairs.manifest["stats"]["windows_over_content_window"] == 0
    assert all(p["target_tokens"] <= 508 for p in load_pairs(tmp_path / "pairs", streaming=True))

    atomic = build_atomic(real_corpus, embedder, tmp_path / "atomic", tree_depth=2, options=options)
    assert atomic.manifest["params"]["tokenization"] == "tokenizer"
    tokens = load_pairs(tmp_path / "atomic", cache_dir=tmp_path / "hf")
    table = pq.read_table(tmp_path / "atomic" / "tokens").to_pylist()
    assert all(t["token"].strip() for t in table)  # the lone "▁" is not an input
    assert all(t["token"] == embedder.tokenizer.decode([t["token_id"]]) for t in table)
    whole = [r for r in (tokens[i] for i in range(len(tokens))) if r["span"] == "prefix" and r["start"] == 0]
    assert max(r["length"] for r in whole) > 100 and all(r["target_tokens"] <= 508 for r in whole)


# Builders and the evaluation share one persistent chunk-vector store: no text is embedded twice.


def _vectors(folder) -> np.ndarray:
    table = pq.read_table(sorted((folder / "data").glob("train-*.parquet"))[0])
    return np.asarray(table.column("embeddings").combine_chunks().flatten().flatten(), dtype=np.float32)


def test_second_build_embeds_nothing_and_writes_the_same_bytes(tmp_path):
    articles = toy_articles(6, min_words=40, max_words=120)
    embedder = CountingEmbedder(ToyEmbedder(dim=16, max_tokens=96))
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
    embedder = CountingEmbedder(ToyEmbedder(dim=16, max_tokens=96))
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
    embedder = CountingEmbedder(ToyEmbedder(dim=16, max_tokens=96))
    with ChunkCache(tmp_path / "store.sqlite") as store:
        options = CommonOptions(store=store)
        build_n_to_one(articles, embedder, tmp_path / "a", max_chunks=4, chunk_tokens=10, options=options)
        again = build_n_to_one(
            articles, embedder, tmp_path / "b", max_chunks=4, chunk_tokens=10, options=options
        )
    assert again.texts_embedded == 0 and again.texts_reused > 0
