import numpy as np
import pytest

from vbert import (
    LongDocumentEncoder,
    MeanPoolMerger,
    SequenceMergerConfig,
    SequenceMergerModel,
    TruncationBaseline,
)
from vbert.cache import ChunkCache, text_key

DOCS = [
    " ".join(f"w{i}" for i in range(150)),
    "short document",
    " ".join(f"x{i % 7}" for i in range(61)),
]


def test_mean_pool_pipeline_matches_manual(fake_embedder, tmp_path):
    encoder = LongDocumentEncoder(
        fake_embedder, MeanPoolMerger(), chunk_tokens=50, cache=tmp_path / "c.sqlite"
    )
    out = encoder.encode(DOCS)
    assert out.shape == (3, fake_embedder.dim)
    chunks = fake_embedder.split(DOCS[0], 50)
    assert len(chunks) == 3
    manual = fake_embedder.encode(chunks).mean(0)
    assert np.allclose(out[0], manual / np.linalg.norm(manual), atol=1e-6)


def test_cache_hit_costs_no_embedding(fake_embedder, tmp_path):
    cache = ChunkCache(tmp_path / "c.sqlite")
    encoder = LongDocumentEncoder(fake_embedder, MeanPoolMerger(), chunk_tokens=50, cache=cache)
    first = encoder.encode(DOCS)
    calls = fake_embedder.calls
    second = encoder.encode(DOCS)
    assert fake_embedder.calls == calls
    assert np.array_equal(first, second)


def test_streaming_and_batching_agree(fake_embedder):
    encoder = LongDocumentEncoder(fake_embedder, MeanPoolMerger(weighted=True), chunk_tokens=20, cache=False)
    whole = encoder.encode(DOCS)
    streamed = np.stack(list(encoder.iter_encode(iter(DOCS), documents_per_batch=1)))
    assert np.allclose(whole, streamed, atol=1e-6)


def test_model_merger_and_truncation(fake_embedder):
    model = SequenceMergerModel(
        SequenceMergerConfig(d_model=16, num_layers=1, num_heads=2, ffn_dim=32, ppe_dim=4)
    )
    assert LongDocumentEncoder(fake_embedder, model, cache=False).encode(DOCS).shape == (3, 16)
    truncated = LongDocumentEncoder(fake_embedder, TruncationBaseline(), chunk_tokens=50, cache=False).encode(
        DOCS[:1]
    )
    assert np.allclose(
        truncated[0], fake_embedder.encode([fake_embedder.split(DOCS[0], 50)[0]])[0], atol=1e-6
    )


@pytest.mark.parametrize("bad", ["", "   \n\t "])
def test_empty_documents_are_named(fake_embedder, bad):
    encoder = LongDocumentEncoder(fake_embedder, MeanPoolMerger(), cache=False)
    with pytest.raises(ValueError, match="document 1: .*empty"):
        encoder.encode(["fine text", bad])


def test_dimension_mismatch_is_refused(fake_embedder):
    model = SequenceMergerModel(
        SequenceMergerConfig(d_model=32, num_layers=1, num_heads=2, ffn_dim=32, ppe_dim=4)
    )
    with pytest.raises(ValueError, match="16-d"):
        LongDocumentEncoder(fake_embedder, model, cache=False)


def test_other_embedder_fingerprint_warns(fake_embedder):
    config = SequenceMergerConfig(
        d_model=16, num_layers=1, num_heads=2, ffn_dim=32, ppe_dim=4, embedder_fingerprint="other"
    )
    with pytest.warns(UserWarning, match="trained on embedder fingerprint other"):
        LongDocumentEncoder(fake_embedder, SequenceMergerModel(config), cache=False)


def test_chunk_tokens_must_fit_the_window(fake_embedder):
    with pytest.raises(ValueError, match="content window"):
        LongDocumentEncoder(fake_embedder, MeanPoolMerger(), chunk_tokens=1000, cache=False)


class CountingSplits:
    """Wraps an embedder and counts how often documents are cut into chunks."""

    def __init__(self, embedder) -> None:
        self.inner = embedder
        self.splits = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def split(self, text, max_tokens):
        self.splits += 1
        return self.inner.split(text, max_tokens)


def test_a_cached_document_is_not_cut_again(fake_embedder, tmp_path):
    embedder = CountingSplits(fake_embedder)
    path = tmp_path / "c.sqlite"
    # The repeated document is cut once; the record serves every merger (token counts included).
    for merger, splits in ((MeanPoolMerger(), 3), (MeanPoolMerger(weighted=True), 0)):
        encoder = LongDocumentEncoder(embedder, merger, chunk_tokens=50, cache=path)
        first = encoder.encode(DOCS + [DOCS[0]])
        assert embedder.splits == splits
        calls = fake_embedder.calls
        again = LongDocumentEncoder(embedder, merger, chunk_tokens=50, cache=path).encode(DOCS)
        assert (embedder.splits, fake_embedder.calls) == (splits, calls)
        assert np.array_equal(again, first[:3])
        embedder.splits = 0
    uncached = LongDocumentEncoder(fake_embedder, MeanPoolMerger(weighted=True), chunk_tokens=50, cache=False)
    assert np.abs(uncached.encode(DOCS) - again).max() <= 1e-6
    # The record belongs to one chunking rule: another chunk size cuts the documents again.
    LongDocumentEncoder(embedder, MeanPoolMerger(), chunk_tokens=40, cache=path).encode(DOCS[:1])
    assert embedder.splits == 1


def test_document_records_are_checked_and_lost_vectors_re_embedded(fake_embedder, tmp_path):
    embedder = CountingSplits(fake_embedder)
    cache = ChunkCache(tmp_path / "c.sqlite")
    encoder = LongDocumentEncoder(embedder, MeanPoolMerger(), chunk_tokens=50, cache=cache)
    expected = encoder.encode(DOCS)
    chunks = cache.get_documents(fake_embedder.fingerprint, encoder.chunking, [text_key(DOCS[0])])
    record = chunks[text_key(DOCS[0])]
    assert len(record.keys) == 3 and record.tokens == (50, 50, 50)
    # A damaged record is dropped and the document is cut again; a lost chunk vector is re-embedded.
    cache._conn.execute(
        "UPDATE documents SET chunk_tokens = '1,2,3' WHERE content_hash = ?", (text_key(DOCS[0]),)
    )
    cache._conn.execute("DELETE FROM chunks WHERE key = ?", (text_key(fake_embedder.split(DOCS[2], 50)[0]),))
    embedder.splits, calls = 0, fake_embedder.calls
    assert np.array_equal(encoder.encode(DOCS), expected)
    assert embedder.splits == 2 and fake_embedder.calls == calls + 1
    assert cache.get_documents(fake_embedder.fingerprint, encoder.chunking, [text_key(DOCS[0])]) == chunks
