import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import documents, measure, merger_flops, pseudo_text, random_merger, sequence_length
from benchmarks.scaling import fit_exponent
from vbert.model import SequenceMergerConfig


@pytest.mark.parametrize("position_mode", ["ppe", "additive", "none"])
@pytest.mark.parametrize(("batch", "n_chunks"), [(1, 1), (3, 5), (2, 16)])
def test_flop_count_equals_what_torch_counts_in_the_real_forward(position_mode, batch, n_chunks):
    config = SequenceMergerConfig(
        d_model=24, num_layers=2, num_heads=3, ffn_dim=40, position_mode=position_mode, ppe_dim=4
    )
    model = random_merger(config)
    x = torch.nn.functional.normalize(torch.randn(batch, n_chunks, 24), dim=-1)
    # The math backend runs attention as two batched matmuls, which the counter sees.
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x, attention_mask=torch.ones(batch, n_chunks, dtype=torch.long))
    assert merger_flops(config, batch, n_chunks) == counter.get_total_flops()


def test_sequence_length_counts_both_ppe_copies_and_cls():
    assert sequence_length(SequenceMergerConfig(position_mode="ppe"), 7) == 15
    assert sequence_length(SequenceMergerConfig(position_mode="additive"), 7) == 8


def test_flops_at_default_size_match_a_hand_count():
    config = SequenceMergerConfig()
    t, d, f = 2 * 16 + 1, 384, 1536
    per_layer = 2 * t * d * 3 * d + 2 * 2 * t * t * d + 2 * t * d * d + 2 * 2 * t * d * f
    assert merger_flops(config, 1, 16) == 4 * per_layer + 2 * d * d


def test_measure_runs_warmup_then_repeats_with_fresh_setup():
    calls = []
    timing = measure(lambda state: calls.append(state), repeats=3, warmup=2, setup=lambda: len(calls))
    assert calls == [0, 1, 2, 3, 4]
    assert timing.runs == 3 and timing.min_s <= timing.median_s <= timing.max_s
    with pytest.raises(ValueError, match="repeats"):
        measure(lambda _: None, repeats=0)


def test_fit_exponent_recovers_a_power_law():
    n = [1, 2, 4, 8, 16, 32]
    assert fit_exponent(n, [3.0 * k**1.5 for k in n]) == pytest.approx(1.5)
    assert fit_exponent([4], [1.0]) is None


def test_pseudo_text_is_deterministic_and_seed_dependent():
    assert pseudo_text(50, 1) == pseudo_text(50, 1)
    assert pseudo_text(50, 1) != pseudo_text(50, 2)
    assert len(pseudo_text(50, 1).split()) == 50


def test_documents_split_into_exactly_the_requested_full_chunks(bench_context):
    embedder = bench_context.embedder
    window = embedder.content_window
    pairs = documents(embedder, 4, 3, window, seed=11)
    assert len(pairs) == 4 and len({text for text, _ in pairs}) == 4
    for text, chunks in pairs:
        assert len(chunks) == 3 and "".join(chunks) == text
        assert embedder.split(text, window) == chunks
        counts = [embedder.count_tokens(c) for c in chunks]
        assert max(counts) <= window and min(counts) >= window - 3


def test_prefix_merges_batched_equal_one_by_one_within_1e5():
    from benchmarks.prefix import one_by_one
    from vbert.mergers import prefix_merges

    config = SequenceMergerConfig(d_model=64, num_layers=2, num_heads=4, ffn_dim=128, ppe_dim=8)
    merger = random_merger(config)
    torch.nn.init.normal_(merger.pooler.weight, std=0.2)
    x = np.random.default_rng(0).standard_normal((23, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    batched, single = prefix_merges(merger, x), one_by_one(merger, x)
    assert batched.shape == (23, 64)
    assert np.abs(batched - single).max() <= 1e-5
    assert np.abs(batched[-1] - batched[0]).max() > 1e-2  # prefixes really differ
