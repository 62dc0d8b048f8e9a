"""generate: batched prefix merges, chunk spaces, native overflow, latency, resume, SRS."""

from __future__ import annotations

import numpy as np
import pytest

from vbert.finesse.batching import single_merges
from vbert.finesse.config import parse_config
from vbert.finesse.generate import generate
from vbert.finesse.metrics import srs
from vbert.finesse.probes import build_probes_from_config
from vbert.finesse.raw import RawOutputError, RawRun
from vbert.finesse.scoring import score_run
from vbert.mergers import MeanPoolMerger, TruncationBaseline, prefix_merges


@pytest.mark.parametrize(
    "merger_factory",
    [lambda: MeanPoolMerger(), lambda: MeanPoolMerger(weighted=True), TruncationBaseline, "decay"],
)
def test_batched_prefix_merges_equal_one_by_one_merges(merger_factory, decay_merger):
    merger = decay_merger if merger_factory == "decay" else merger_factory()
    rng = np.random.default_rng(0)
    for n in (1, 3, 9):
        vectors = rng.standard_normal((n, 16)).astype(np.float32)
        weights = rng.integers(1, 50, size=n).astype(np.float64)
        batched = prefix_merges(merger, vectors, weights)
        one_by_one = np.stack([merger.merge(vectors[: i + 1], weights[: i + 1]) for i in range(n)])
        np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_batched_prefix_merges_of_the_sequence_merger_model():
    model_module = pytest.importorskip("vbert.model")
    config = model_module.SequenceMergerConfig(
        d_model=16, num_layers=1, num_heads=2, ffn_dim=32, ppe_dim=4, residual_to_mean=False
    )
    model = model_module.SequenceMergerModel(config).eval()
    vectors = np.random.default_rng(1).standard_normal((7, 16)).astype(np.float32)
    batched = prefix_merges(model, vectors)
    one_by_one = np.stack([model.merge(vectors[: i + 1]) for i in range(7)])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_single_merges_put_chunks_in_merger_space(decay_merger):
    vectors = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float32)
    expected = np.stack([decay_merger.merge(v[None]) for v in vectors])
    np.testing.assert_allclose(single_merges(decay_merger, vectors), expected, atol=1e-6)


def _setup(make_config, fake_embedder, competitors=None, **overrides):
    config = parse_config(make_config(competitors, **overrides))
    probe_set, _ = build_probes_from_config(config, tokenizer=fake_embedder)
    return config, probe_set


def test_merger_mode_outputs_and_latencies(tmp_path, make_config, fake_embedder, decay_merger):
    config, probe_set = _setup(make_config, fake_embedder)
    folders = generate(config, tmp_path / "raw", probe_set=probe_set, embedder=fake_embedder,
                       mergers={"merger": decay_merger})  # fmt: skip
    assert [f.name for f in folders] == ["merger", "mean", "mean-weighted", "truncation"]
    mean = RawRun.open(tmp_path / "raw" / "mean")
    assert mean.manifest["complete"] and mean.lengths == [3, 4, 5, 6]
    arrays = mean.arrays(5)
    assert arrays["chunks"].shape == arrays["synths"].shape == (2, 5, 32)
    # chunk_space base: the chunks are the embedder's vectors of the probe texts
    texts = [c.text for c in probe_set.samples(5)[1]]
    np.testing.assert_allclose(arrays["chunks"][1], fake_embedder.encode(texts), atol=1e-6)
    # the last synthesis of mean pooling is the normalised mean of all chunks
    expected = arrays["chunks"][1].mean(axis=0)
    np.testing.assert_allclose(arrays["synths"][1, -1], expected / np.linalg.norm(expected), atol=1e-6)
    assert (arrays["latency_full_ms"] >= arrays["latency_merge_ms"]).all()
    assert (arrays["latency_merge_ms"] > 0).all()
    truncation = RawRun.open(tmp_path / "raw" / "truncation").arrays(4)
    np.testing.assert_allclose(
        truncation["synths"][0], np.repeat(truncation["chunks"][0][:1], 4, axis=0), atol=1e-6
    )
    described = RawRun.open(folders[0]).manifest["competitor"]
    assert described["merger"] == {"name": "decay-merger", "fingerprint": "decay-merger-v1",
                                   "spec": config.competitors[0].merger}  # fmt: skip
    assert described["embedder"]["fingerprint"] == fake_embedder.fingerprint


def test_chunk_space_merger_compares_with_single_chunk_merges(
    tmp_path, make_config, fake_embedder, decay_merger
):
    competitors = [{"name": "merger", "kind": "merger", "merger": "default"}]
    config, probe_set = _setup(make_config, fake_embedder, competitors, scoring={"chunk_space": "merger"})
    generate(
        config,
        tmp_path / "raw",
        probe_set=probe_set,
        embedder=fake_embedder,
        mergers={"merger": decay_merger},
    )
    run = RawRun.open(tmp_path / "raw" / "merger")
    assert run.manifest["chunk_space"] == "merger"
    arrays = run.arrays(3)
    base = fake_embedder.encode([c.text for c in probe_set.samples(3)[0]])
    np.testing.assert_allclose(arrays["chunks"][0], single_merges(decay_merger, base), atol=1e-6)


def test_native_lengths_over_the_window_are_not_evaluated(
    tmp_path, make_config, fake_embedder, native_embedder
):
    competitors = [
        {"name": "native", "kind": "native", "embedder": "default"},
        {"name": "native-cut", "kind": "native", "embedder": "default", "on_overflow": "truncate"},
    ]
    config, probe_set = _setup(make_config, fake_embedder, competitors)
    generate(config, tmp_path / "raw", probe_set=probe_set,
             native_embedders={"native": native_embedder, "native-cut": native_embedder})  # fmt: skip
    native = RawRun.open(tmp_path / "raw" / "native")
    assert native.lengths == [3, 4, 5]  # 5 × 8 tokens = 40 = the window; 6 × 8 = 48 does not fit
    assert "2 of 2 samples exceed the 40-token window" in native.not_evaluated[6]
    arrays = native.arrays(4)
    sample = [c.text for c in probe_set.samples(4)[0]]
    np.testing.assert_allclose(
        arrays["synths"][0, 1], native_embedder.encode([" ".join(sample[:2])])[0], atol=1e-6
    )
    np.testing.assert_array_equal(arrays["latency_full_ms"], arrays["latency_merge_ms"])
    results = score_run(native)
    assert results["lengths_evaluated"] == [3, 4, 5]
    assert list(results["lengths_not_evaluated"]) == ["6"]
    cut = RawRun.open(tmp_path / "raw" / "native-cut")
    assert cut.lengths == [3, 4, 5, 6] and cut.manifest["truncated"] == {"6": 2}
    # truncated to the window, the full text of L = 6 is its first 40 tokens = the first 5 chunks
    sample6 = [c.text for c in probe_set.samples(6)[0]]
    expected = native_embedder.encode([" ".join(sample6[:5])])[0]
    np.testing.assert_allclose(cut.arrays(6)["synths"][0, -1], expected, atol=1e-6)


def test_generate_resumes_where_it_stopped(tmp_path, make_config, fake_embedder, decay_merger):
    config, probe_set = _setup(make_config, fake_embedder, [{"name": "merger", "kind": "merger"}])

    class Interrupted(RuntimeError):
        pass

    class CrashAtLength5(type(decay_merger)):
        def merge_batch(self, embeddings, mask, weights=None):
            if embeddings.shape[1] == 5:
                raise Interrupted("simulated kill")
            return super().merge_batch(embeddings, mask, weights)

    raw = tmp_path / "raw"
    with pytest.raises(Interrupted):
        generate(
            config, raw, probe_set=probe_set, embedder=fake_embedder, mergers={"merger": CrashAtLength5()}
        )
    run = RawRun.open(raw / "merger")
    assert run.lengths == [3, 4] and not run.manifest["complete"]
    with pytest.raises(RawOutputError, match="interrupted"):
        score_run(run)
    first_files = {n: (raw / "merger" / f"length_00{n}.npz").stat().st_mtime_ns for n in (3, 4)}
    before = fake_embedder.texts
    generate(config, raw, probe_set=probe_set, embedder=fake_embedder, mergers={"merger": decay_merger})
    # lengths 3 and 4 are untouched; 5 was already embedded, so only 6 (+ its warm-up) is embedded now
    assert {n: (raw / "merger" / f"length_00{n}.npz").stat().st_mtime_ns for n in (3, 4)} == first_files
    warmup = config.runtime.warmup * 6
    assert fake_embedder.texts - before == 2 * 6 + warmup
    resumed = score_run(RawRun.open(raw / "merger"))
    fresh_dir = tmp_path / "fresh"
    generate(config, fresh_dir, probe_set=probe_set, embedder=fake_embedder, mergers={"merger": decay_merger})
    fresh = score_run(RawRun.open(fresh_dir / "merger"))
    for length in ("3", "4", "5", "6"):
        assert resumed["lengths"][length]["scores"] == fresh["lengths"][length]["scores"]


def test_a_damaged_length_file_is_rebuilt(tmp_path, make_config, fake_embedder):
    config, probe_set = _setup(make_config, fake_embedder, [{"name": "mean", "kind": "mean"}])
    raw = tmp_path / "raw"
    generate(config, raw, probe_set=probe_set, embedder=fake_embedder)
    file = raw / "mean" / "length_004.npz"
    good = file.read_bytes()
    file.write_bytes(good[:-10] + b"0123456789")
    with pytest.raises(RawOutputError, match="SHA-256"):
        RawRun.open(raw / "mean").arrays(4)
    generate(config, raw, probe_set=probe_set, embedder=fake_embedder)
    assert RawRun.open(raw / "mean").arrays(4)["chunks"].shape == (2, 4, 32)


def test_output_of_another_run_is_not_mixed_in(tmp_path, make_config, fake_embedder, decay_merger):
    config, probe_set = _setup(make_config, fake_embedder, [{"name": "merger", "kind": "merger"}])
    raw = tmp_path / "raw"
    generate(config, raw, probe_set=probe_set, embedder=fake_embedder, mergers={"merger": decay_merger})
    other = type(decay_merger)(decay=0.5)
    other.fingerprint = "decay-merger-0.5"
    with pytest.raises(RawOutputError, match="different run"):
        generate(config, raw, probe_set=probe_set, embedder=fake_embedder, mergers={"merger": other})


def test_chunks_longer_than_the_base_window_fail_before_embedding(tmp_path, make_config, fake_embedder):
    config, probe_set = _setup(make_config, fake_embedder, [{"name": "mean", "kind": "mean"}])
    small_window = type(fake_embedder)(content_window=6)
    with pytest.raises(ValueError, match="exceed the base embedder's content window"):
        generate(config, tmp_path / "raw", probe_set=probe_set, embedder=small_window)
    assert small_window.texts == 0


def test_srs_merger_and_native(tmp_path, make_config, fake_embedder, decay_merger, native_embedder):
    competitors = [
        {"name": "merger", "kind": "merger"},
        {"name": "mean", "kind": "mean"},
        {"name": "native", "kind": "native", "embedder": "default"},
    ]
    config, probe_set = _setup(
        make_config, fake_embedder, competitors, metric="srs",
        probes={**make_config()["probes"], "group_amount": 3, "sequence_length": {"min": 3, "max": 4}},
    )  # fmt: skip
    generate(config, tmp_path / "raw", probe_set=probe_set, embedder=fake_embedder,
             mergers={"merger": decay_merger}, native_embedders={"native": native_embedder})  # fmt: skip
    merger_run = RawRun.open(tmp_path / "raw" / "merger")
    arrays = merger_run.arrays(4)
    keys = srs.arrangements(4)
    assert arrays["pos_cos"].shape == arrays["neg_cos"].shape == (2, len(keys), 3)
    # Mean pooling cannot see order: forward and reversed insertions give identical vectors.
    mean_arrays = RawRun.open(tmp_path / "raw" / "mean").arrays(4)
    np.testing.assert_allclose(mean_arrays["pos_cos"], mean_arrays["neg_cos"], atol=1e-6)
    # So its median gap is exactly 0 and its Q1 − Q3 gap can only be ≤ 0.
    mean_run = RawRun.open(tmp_path / "raw" / "mean")
    assert score_run(mean_run, formula="q2q2")["summary"]["mean_score"] == pytest.approx(0.0, abs=1e-6)
    mean_results = score_run(mean_run)
    assert mean_results["summary"]["mean_score"] <= 0
    # The order-aware merger separates forward from reversed order better than mean pooling.
    merger_results = score_run(merger_run)
    assert merger_results["summary"]["mean_score"] > mean_results["summary"]["mean_score"]
    assert score_run(merger_run, formula="q2q2")["summary"]["mean_score"] > 0
    assert merger_results["summary"]["pbi"] >= 0
    # Recompute one cosine by hand: p = 2, pos = 0, forward, group 0.
    sample = probe_set.samples(4)[0]
    vecs = fake_embedder.encode([c.text for c in sample])
    probe = decay_merger.merge(vecs[:2])
    crafted = decay_merger.merge(np.stack([vecs[0], vecs[1], vecs[3], vecs[4]]))
    assert arrays["pos_cos"][0, 0, 0] == pytest.approx(float(probe @ crafted), abs=1e-5)
    native = RawRun.open(tmp_path / "raw" / "native")
    assert native.lengths == [3, 4]


def test_untimed_samples_reuse_chunk_vectors_and_record_no_latency(tmp_path, make_config, fake_embedder):
    runtime = {"batch_size": 8, "warmup": 0, "progress": False}
    competitors = [{"name": "mean", "kind": "mean"}]
    encoded: list[int] = []
    original = fake_embedder.encode

    def counting_encode(texts, **kwargs):
        encoded.append(len(texts))
        return original(texts, **kwargs)

    fake_embedder.encode = counting_encode
    outputs = {}
    for timed_samples in (None, 1, 0):
        raw_config = make_config(competitors, runtime={**runtime, "timed_samples": timed_samples})
        raw_config["probes"] = {
            **raw_config["probes"],
            "document_reuse": "across_samples",
            "samples_per_length": 4,
        }
        config = parse_config(raw_config)
        probe_set, _ = build_probes_from_config(config, tokenizer=fake_embedder)
        encoded.clear()
        generate(config, tmp_path / f"raw-{timed_samples}", probe_set=probe_set, embedder=fake_embedder)
        outputs[timed_samples] = (RawRun.open(tmp_path / f"raw-{timed_samples}" / "mean"), sum(encoded))
    (all_timed, all_texts), (one_timed, fewer_texts) = outputs[None], outputs[1]
    assert fewer_texts < all_texts, "documents recur across samples, so fewer texts are embedded"
    for length in all_timed.lengths:
        np.testing.assert_allclose(
            one_timed.arrays(length)["chunks"], all_timed.arrays(length)["chunks"], atol=1e-6
        )
        latency = one_timed.arrays(length)["latency_full_ms"]
        assert latency[0] > 0 and np.isnan(latency[1:]).all()
    results = score_run(one_timed)
    assert results["lengths"]["4"]["latency_full_ms"][1] is None
    assert results["summary"]["median_latency_full_ms"] > 0
    untimed = score_run(outputs[0][0])
    assert untimed["summary"]["median_latency_full_ms"] is None, "timed_samples 0: scores only"
    assert untimed["summary"]["mean_score"] == score_run(all_timed)["summary"]["mean_score"]
