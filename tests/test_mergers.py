import importlib
import pickle

import numpy as np
import pytest
import torch

from vbert import LongDocumentEncoder, MeanPoolMerger, TruncationBaseline, load_merger
from vbert.errors import ConfigError, DataError, IntegrityError
from vbert.loading import load_recorded_merger
from vbert.mergers import MERGERS, baseline_names, length_buckets, merge_sequences, prefix_merges
from vbert.testing import undo_registrations


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
    with pytest.raises(ConfigError, match="config.json"):
        load_merger(tmp_path)


def test_both_shipped_mergers_load_by_name():
    """The retrieval fine-tune is the default; the earlier default stays loadable for its indexes."""
    default, previous = load_merger("default"), load_merger("distill-10to1")
    assert default.fingerprint != previous.fingerprint
    assert previous.fingerprint == "f553a82065d22f49"  # the shipped float16 weights before this change
    assert {"default", "distill-10to1"} <= set(MERGERS.names())


def test_an_index_built_with_the_earlier_default_reopens_with_it():
    """An index records ("default", fingerprint); after the default changed, that fingerprint still
    names a shipped merger, which is what reopening the index loads."""
    earlier = load_merger("distill-10to1").fingerprint
    name, merger = load_recorded_merger("default", earlier)
    assert (name, merger.fingerprint) == ("distill-10to1", earlier)
    assert load_recorded_merger("default", load_merger("default").fingerprint)[0] == "default"
    name, merger = load_recorded_merger("default", "0123456789abcdef")  # unknown weights: the index refuses
    assert name == "default" and merger.fingerprint != "0123456789abcdef"
    assert load_recorded_merger("mean", "anything")[0] == "mean"


# -- NaN, infinity and zero vectors (issue #16, defect 7) -------------------------------------------
BASELINES = [MeanPoolMerger(), MeanPoolMerger(weighted=True), TruncationBaseline()]


@pytest.mark.parametrize("merger", BASELINES, ids=lambda m: m.name)
def test_huge_but_finite_float32_input_gives_the_same_unit_vector(merger):
    x = unit_rows(4)
    weights = np.array([3.0, 1.0, 2.0, 5.0])
    expected = merger.merge(x, weights)
    huge = merger.merge(x * np.float32(1e30), weights)
    assert np.isfinite(huge).all()
    np.testing.assert_allclose(huge, expected, atol=1e-6)
    np.testing.assert_allclose(
        merge_sequences(merger, [x * np.float32(1e30)], [weights])[0], expected, atol=1e-6
    )


def test_huge_input_to_the_trained_merger_is_a_clear_error():
    merger = load_merger("default")
    x = unit_rows(3, d=merger.config.d_model)
    with pytest.raises(DataError, match=r"largest input value is [0-9.]+e\+(29|30).*unit vectors"):
        merge_sequences(merger, [x * np.float32(1e30)])


@pytest.mark.parametrize("merger", BASELINES, ids=lambda m: m.name)
def test_float64_too_large_for_float32_is_caught_after_the_cast(merger):
    x = unit_rows(3).astype(np.float64) * 1e300
    with pytest.raises(DataError, match="too large for float32"):
        merger.merge(x, np.ones(3))
    with pytest.raises(DataError, match="too large for float32"):
        merge_sequences(merger, [x], [np.ones(3)])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused(bad):
    x = unit_rows(3)
    with pytest.raises(DataError, match="NaN or infinity"):
        MeanPoolMerger(weighted=True).merge(x, np.array([1.0, bad, 2.0]))


def test_weights_under_padding_are_ignored():
    x = unit_rows(3)
    batch, mask = np.zeros((1, 4, 8), np.float32), np.array([[1, 1, 1, 0]])
    batch[0, :3] = x
    weights = np.array([[1.0, 2.0, 3.0, np.nan]])
    expected = MeanPoolMerger(weighted=True).merge(x, weights[0, :3])
    np.testing.assert_allclose(MeanPoolMerger(weighted=True).merge_batch(batch, mask, weights)[0], expected)


@pytest.mark.parametrize("merger", BASELINES, ids=lambda m: m.name)
def test_all_zero_vectors_are_refused(merger):
    with pytest.raises(DataError, match="all zeros"):
        merger.merge(np.zeros((3, 8), np.float32), np.ones(3))


def test_chunks_that_cancel_out_are_refused():
    x = unit_rows(1)
    with pytest.raises(DataError, match="cancel out"):
        MeanPoolMerger().merge(np.concatenate([x, -x]))


# -- load_merger on things that are not mergers (issue #16, defect 8) -------------------------------
def _config_only_folder(tmp_path):
    folder = tmp_path / "merger"
    folder.mkdir()
    load_merger("default").config.save_pretrained(folder)
    return folder


def test_a_folder_without_weights_is_a_config_error(tmp_path):
    folder = _config_only_folder(tmp_path)
    with pytest.raises(ConfigError, match="no model.safetensors"):
        load_merger(folder)


def test_a_pickle_named_model_safetensors_is_refused_unread(tmp_path):
    folder = _config_only_folder(tmp_path)
    (folder / "model.safetensors").write_bytes(pickle.dumps({"weight": torch.zeros(2)}))
    with pytest.raises(IntegrityError, match="not a valid safetensors file"):
        load_merger(folder)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("mean_pool", "unknown merger 'mean_pool'.*mean, mean-weighted, truncation"),
        ("./no/such/merger", "no such folder"),
        ("/definitely/not/here", "no such folder"),
        ("merger.safetensors", "no such folder"),
    ],
)
def test_names_that_are_neither_folders_nor_known_nor_hub_ids(name, match):
    with pytest.raises(ConfigError, match=match):
        load_merger(name)


def test_length_buckets_bound_rows_and_padded_positions():
    lengths = [5, 1, 64, 3, 3, 200, 2, 64]
    buckets = length_buckets(lengths, max_rows=3, max_positions=128)
    assert sorted(i for bucket in buckets for i in bucket) == list(range(len(lengths)))
    flat = [lengths[i] for bucket in buckets for i in bucket]
    assert flat == sorted(lengths)
    for bucket in buckets:
        longest = max(lengths[i] for i in bucket)
        assert len(bucket) <= 3
        assert len(bucket) == 1 or len(bucket) * longest <= 128
    assert [lengths[i] for i in buckets[-1]] == [200]


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_merge_sequences_and_prefix_merges_equal_one_merge_each(batch_size):
    from vbert.model import SequenceMergerConfig, SequenceMergerModel

    torch.manual_seed(0)
    config = SequenceMergerConfig(d_model=8, num_layers=2, num_heads=2, ffn_dim=16, ppe_dim=2, dropout=0.0)
    model = SequenceMergerModel(config).eval()
    torch.nn.init.normal_(model.pooler.weight, std=0.5)  # not the mean-pooling start
    x = unit_rows(37, seed=3)
    weights = np.arange(1, 38, dtype=np.float64)
    sequences = [x[:n] for n in (5, 1, 37, 3, 12)]
    for merger in (model, MeanPoolMerger(), MeanPoolMerger(weighted=True)):
        one_by_one = np.stack([merger.merge(s, weights[: len(s)]) for s in sequences])
        merged = merge_sequences(
            merger, sequences, [weights[: len(s)] for s in sequences], batch_size=batch_size, max_positions=40
        )
        assert np.abs(merged - one_by_one).max() <= 1e-5
        prefixes = np.stack([merger.merge(x[: i + 1], weights[: i + 1]) for i in range(len(x))])
        assert np.abs(prefix_merges(merger, x, weights) - prefixes).max() <= 1e-5


@pytest.fixture
def toy_merger_module():
    with undo_registrations(MERGERS, "tests.toy_merger"):
        yield importlib.import_module("tests.toy_merger")


def test_a_toy_merger_is_one_file_and_works_everywhere_a_name_does(
    toy_merger_module, fake_embedder, tmp_path
):
    assert "max" in baseline_names()  # the CLI's help, Finesse configs and the lab list it now
    by_name, by_spec = load_merger("max"), load_merger("tests.toy_merger:MaxPoolMerger")
    assert isinstance(by_name, toy_merger_module.MaxPoolMerger)
    assert isinstance(by_spec, toy_merger_module.MaxPoolMerger)
    x = np.array([[1.0, -2.0, 0.0], [0.0, 3.0, -1.0]], dtype=np.float32)
    np.testing.assert_allclose(by_name.merge(x), np.array([1.0, 3.0, 0.0]) / np.sqrt(10), rtol=1e-6)
    padded = np.stack([x, np.array([[0.0, 1.0, 0.0], [9.0, 9.0, 9.0]], dtype=np.float32)])
    merged = by_name.merge_batch(padded, np.array([[1, 1], [1, 0]], dtype=np.float32))
    np.testing.assert_allclose(merged[1], [0.0, 1.0, 0.0])  # the padded row is never the maximum
    encoder = LongDocumentEncoder(fake_embedder, by_name, chunk_tokens=3, cache=tmp_path / "c.sqlite")
    words = "one two three four five six seven"
    chunks = fake_embedder.encode(fake_embedder.split(words, 3))
    np.testing.assert_allclose(encoder.encode([words])[0], by_name.merge(chunks), rtol=1e-6)
