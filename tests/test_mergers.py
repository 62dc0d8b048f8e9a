import numpy as np
import pytest

from vbert import MeanPoolMerger, TruncationBaseline, load_merger


def unit_rows(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_mean_pool_is_the_normalised_average():
    x = unit_rows(5)
    expected = x.mean(0) / np.linalg.norm(x.mean(0))
    assert np.allclose(MeanPoolMerger().merge(x), expected, atol=1e-6)


def test_weighted_mean_counts_tokens():
    x = unit_rows(3)
    w = np.array([10.0, 10.0, 1.0])
    avg = (x * w[:, None]).sum(0) / w.sum()
    assert np.allclose(MeanPoolMerger(weighted=True).merge(x, w), avg / np.linalg.norm(avg), atol=1e-6)
    with pytest.raises(ValueError, match="token counts"):
        MeanPoolMerger(weighted=True).merge(x)


def test_truncation_keeps_the_first_chunk():
    x = unit_rows(4)
    assert np.allclose(TruncationBaseline().merge(x), x[0], atol=1e-6)


def test_batch_equals_one_by_one_with_padding():
    seqs = [unit_rows(n, seed=n) for n in (1, 3, 6)]
    batch = np.zeros((3, 6, 8), np.float32)
    mask = np.zeros((3, 6))
    for i, s in enumerate(seqs):
        batch[i, : len(s)] = s
        mask[i, : len(s)] = 1
    for merger in (MeanPoolMerger(), TruncationBaseline()):
        out = merger.merge_batch(batch, mask)
        for i, s in enumerate(seqs):
            assert np.allclose(out[i], merger.merge(s), atol=1e-6)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((np.zeros((0, 8), np.float32),), ValueError, "zero chunks"),
        ((np.ones((3, 8), np.int64),), TypeError, "floating point"),
        ((np.full((3, 8), np.nan, np.float32),), ValueError, "NaN"),
        ((np.ones(8, np.float32),), ValueError, "shape"),
    ],
)
def test_bad_sequences(args, error, match):
    with pytest.raises(error, match=match):
        MeanPoolMerger().merge(*args)


def test_bad_masks():
    x = unit_rows(6).reshape(2, 3, 8)
    with pytest.raises(ValueError, match="shape"):
        MeanPoolMerger().merge_batch(x, np.ones((2, 4)))
    with pytest.raises(ValueError, match="all zeros"):
        MeanPoolMerger().merge_batch(x, np.array([[1, 1, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="right-padded"):
        MeanPoolMerger().merge_batch(x, np.array([[0, 1, 1], [1, 1, 1]]))


def test_load_merger_names_and_errors(tmp_path):
    assert isinstance(load_merger("mean"), MeanPoolMerger)
    assert load_merger("mean-weighted").weighted
    assert isinstance(load_merger("truncation"), TruncationBaseline)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_merger(tmp_path)
