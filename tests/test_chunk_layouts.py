import re

import numpy as np
import pytest

from vbert.cache import ChunkCache, DocumentChunks, text_key
from vbert.chunk_layouts import embed_chunk_texts, embed_documents, span_texts
from vbert.errors import DataError
from vbert.testing import CountingEmbedder, WordHashEmbedder

DOCS = [
    "alpha beta gamma.\n\ndelta epsilon.\n\nzeta eta theta iota.",
    "kappa lambda.\n\ndelta epsilon.",
    "mu nu xi omicron.",
]


def paragraphs(embedder):
    """A chunking rule with spans: one chunk per paragraph (token counts from the tokenizer)."""

    def cut(position: int, text: str) -> tuple[DocumentChunks, list[str]]:
        spans = [m.span() for m in re.finditer(r"[^\n]+", text)]
        if not spans:
            raise DataError(f"document {position} is empty")
        texts = [text[a:b] for a, b in spans]
        layout = DocumentChunks(
            tuple(map(text_key, texts)),
            tuple(embedder.count_tokens(t) for t in texts),
            tuple(a for a, _ in spans),
            tuple(b for _, b in spans),
        )
        return layout, texts

    return cut


def windows(embedder, size=2):
    """A chunking rule without spans: ``embedder.split`` re-spaces the text."""

    def cut(position: int, text: str) -> tuple[DocumentChunks, list[str]]:
        texts = embedder.split(text, size)
        return DocumentChunks(
            tuple(map(text_key, texts)), tuple(embedder.count_tokens(t) for t in texts)
        ), texts

    return cut


@pytest.fixture
def embedder():
    return CountingEmbedder(WordHashEmbedder(8))


def test_a_document_seen_before_costs_one_lookup_and_no_tokenisation(embedder, tmp_path):
    path = tmp_path / "c.sqlite"
    first = embed_documents(
        DOCS, embedder, "paragraphs", paragraphs(embedder), ChunkCache(path), need_texts=True
    )
    assert first.cut == 3 and first.embedded == 5 == sum(embedder.counts.values())  # "delta epsilon." once
    assert [len(layout.keys) for layout in first.layouts] == [3, 2, 1]
    tokenised = embedder.tokenised
    # Another process, the documents in another order and one twice: nothing is cut or embedded.
    again = embed_documents(
        [DOCS[2], DOCS[0], DOCS[2]],
        embedder,
        "paragraphs",
        paragraphs(embedder),
        ChunkCache(path),
        need_texts=True,
    )
    assert (again.cut, again.embedded, embedder.tokenised) == (0, 0, tokenised)
    assert again.layouts == [first.layouts[2], first.layouts[0], first.layouts[2]]
    assert again.texts == {
        key: text for key, text in first.texts.items() if key not in first.layouts[1].keys[:1]
    }
    for got, expected in zip(again.sequences(), [first.sequences()[i] for i in (2, 0, 2)], strict=True):
        np.testing.assert_array_equal(got, expected)
    # Another rule has other layouts.
    other = embed_documents(DOCS[:1], embedder, "windows", windows(embedder), ChunkCache(path))
    assert other.cut == 1 and embedder.tokenised > tokenised


def test_recorded_spans_that_miss_their_keys_are_cut_again(embedder, tmp_path):
    cache = ChunkCache(tmp_path / "c.sqlite")
    expected = embed_documents(DOCS[:1], embedder, "paragraphs", paragraphs(embedder), cache)
    layout = expected.layouts[0]
    assert span_texts(DOCS[0], layout) == DOCS[0].split("\n\n")
    shifted = DocumentChunks(layout.keys, layout.tokens, tuple(s + 1 for s in layout.starts), layout.ends)
    assert span_texts(DOCS[0], shifted) is None
    cache.put_documents(
        embedder.fingerprint, "paragraphs", {text_key(DOCS[0]): shifted}
    )  # checksums are fine
    again = embed_documents(DOCS[:1], embedder, "paragraphs", paragraphs(embedder), cache, need_texts=True)
    assert (again.cut, again.embedded, again.layouts) == (1, 0, expected.layouts)
    assert cache.get_documents(embedder.fingerprint, "paragraphs", [text_key(DOCS[0])]) == {
        text_key(DOCS[0]): layout
    }


def test_a_layout_without_spans_is_cut_again_only_when_its_texts_are_needed(embedder, tmp_path):
    cache = ChunkCache(tmp_path / "c.sqlite")
    first = embed_documents(DOCS, embedder, "windows", windows(embedder), cache)
    assert first.cut == 3 and all(layout.starts is None for layout in first.layouts)
    assert embed_documents(DOCS, embedder, "windows", windows(embedder), cache).cut == 0
    assert embed_documents(DOCS, embedder, "windows", windows(embedder), cache, need_texts=True).cut == 3
    # A lost chunk vector: that document is cut again and only the lost chunk is embedded.
    lost = first.layouts[2].keys[0]
    cache._conn.execute("DELETE FROM chunks WHERE key = ?", (lost,))
    embedder.counts.clear()
    again = embed_documents(DOCS, embedder, "windows", windows(embedder), cache)
    assert (again.cut, again.embedded, sum(embedder.counts.values())) == (1, 1, 1)
    for got, expected in zip(again.sequences(), first.sequences(), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_vectors_come_from_a_second_source_before_being_embedded(embedder):
    inner = WordHashEmbedder(8)
    texts = DOCS[0].split("\n\n")
    stored = dict(zip(map(text_key, texts), inner.encode(texts), strict=True))
    asked = []

    def source(keys):
        asked.extend(keys)
        return {key: stored[key] for key in keys if key in stored}

    done = embed_documents(DOCS[:2], embedder, "paragraphs", paragraphs(embedder), None, stored=source)
    assert done.embedded == 1 and list(embedder.counts) == ["kappa lambda."]
    assert set(asked) == set(done.texts) and done.cut == 2
    with pytest.raises(DataError, match="document 0 is empty"):
        embed_documents(["\n\n"], embedder, "paragraphs", paragraphs(embedder))


class PrefixedQueries(WordHashEmbedder):
    """Embeds a query as the text with a "question" word in front, so query and passage vectors differ."""

    def encode_queries(self, texts, batch_size=32):
        return self.encode([f"question {t}" for t in texts], batch_size)


def test_queries_are_cached_apart_from_passages_of_the_same_text(tmp_path):
    embedder = PrefixedQueries()
    texts = {text_key(t): t for t in ("delta epsilon.", "mu nu xi.")}
    with ChunkCache(tmp_path / "c.sqlite") as cache:
        passages, _ = embed_chunk_texts(embedder, cache, texts)
        queries, embedded = embed_chunk_texts(embedder, cache, texts, queries=True)
        assert embedded == 2  # a cached passage is not a cached query
        again, embedded = embed_chunk_texts(embedder, cache, texts, queries=True)
    assert embedded == 0 and embedder.texts == 4
    for key, text in texts.items():
        np.testing.assert_allclose(queries[key], embedder.encode_queries([text])[0])
        np.testing.assert_allclose(again[key], queries[key])
        assert not np.allclose(queries[key], passages[key])
