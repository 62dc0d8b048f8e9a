import pytest

from tests.fixtures.index_corpus import counting_embedder, make_document
from vbert.index import ChunkingSpec, chunk_text
from vbert.index.chunking import Chunk


@pytest.fixture
def spec() -> ChunkingSpec:
    return ChunkingSpec.for_embedder(counting_embedder())


def test_chunks_cover_the_document_in_order_within_limits(spec):
    embedder = counting_embedder()
    text = make_document(3, paragraphs=40)
    chunks = chunk_text(embedder, text, spec)
    assert len(chunks) > 5
    assert all(c.tokens <= spec.max_tokens and c.text == text[c.start : c.end] for c in chunks)
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:], strict=False))
    assert sum(c.tokens for c in chunks) == embedder.count_tokens(text)
    # Every chunk but the last ends at a content-defined boundary or the size limit, so most hold min_tokens.
    assert sum(c.tokens >= spec.min_tokens for c in chunks) >= len(chunks) - 2


def test_an_edit_near_the_start_keeps_later_chunks(spec):
    embedder = counting_embedder()
    text = make_document(7, paragraphs=60)
    edited = text.replace(".", " inserted words here.", 1)
    before = {c.key for c in chunk_text(embedder, text, spec)}
    after = [c.key for c in chunk_text(embedder, edited, spec)]
    assert len(after) > 10
    assert sum(key not in before for key in after) <= 2


def test_oversize_paragraphs_are_cut_by_sentences_then_by_the_embedder(spec):
    embedder = counting_embedder()
    sentence = " ".join(f"w{i}" for i in range(25)) + "."
    giant = " ".join(f"g{i}" for i in range(150))
    text = sentence + " " + sentence.replace("w", "v") + " " + giant
    chunks = chunk_text(embedder, text, spec)
    assert all(c.tokens <= spec.max_tokens for c in chunks)
    assert sum(c.tokens for c in chunks) == 200
    assert chunks[-1].text.endswith("g149")


def test_spec_validation_and_empty_text():
    with pytest.raises(ValueError, match="between 1 and"):
        ChunkingSpec.for_embedder(counting_embedder(), 61)
    with pytest.raises(ValueError, match="min_tokens < target_tokens"):
        ChunkingSpec(max_tokens=10, min_tokens=5, target_tokens=5)
    assert chunk_text(counting_embedder(), " \n\n ", ChunkingSpec.for_embedder(counting_embedder())) == []
    assert Chunk("abc", 0, 3, 1).key == Chunk("abc", 5, 8, 1).key


def test_real_tokenizer_chunks_fit_the_window(tiny_embedder):
    spec = ChunkingSpec.for_embedder(tiny_embedder, 40)
    text = make_document(1, paragraphs=6)
    chunks = chunk_text(tiny_embedder, text, spec)
    assert len(chunks) > 3
    assert all(tiny_embedder.count_tokens(c.text) == c.tokens <= 40 for c in chunks)
    assert all(c.text == text[c.start : c.end] for c in chunks)
