import numpy as np
import pytest

from vbert import (
    LongDocumentEncoder,
    MeanPoolMerger,
    SequenceMergerConfig,
    SequenceMergerModel,
    TruncationBaseline,
)
from vbert.cache import ChunkCache

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
