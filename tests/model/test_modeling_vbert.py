from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vbert.loading import default_merger_path
from vbert.model import SequenceMergerConfig, SequenceMergerModel, paired_positional_encoding, sinusoid
from vbert.testing.tiny_models import tiny_merger

D = 32


def tiny(**overrides) -> SequenceMergerModel:
    return tiny_merger(D, seed=0, **({"num_heads": 4} | overrides)).eval()


def unit(*shape: int) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(*shape), dim=-1)


def test_ppe_overwrites_exactly_the_stated_slots_and_nothing_else():
    x = unit(2, 5, D)
    positions = torch.arange(5).expand(2, 5)
    p = 6
    c1, c2 = paired_positional_encoding(x, positions, p)
    assert torch.equal(c1[..., p:], x[..., p:])
    assert torch.equal(c2[..., : D - p], x[..., : D - p])
    rms = x.pow(2).mean(-1, keepdim=True).sqrt()
    expected = sinusoid(positions, p) * rms
    assert torch.allclose(c1[..., :p], expected)
    assert torch.allclose(c2[..., D - p :], expected)
    # Every original dimension survives bit for bit in at least one copy.
    survives = torch.zeros(D, dtype=torch.bool)
    survives[p:] = True
    survives[: D - p] = True
    assert survives.all()


def test_sinusoid_formula_and_unit_rms():
    pe = sinusoid(torch.tensor([0, 3, 100_000]), 8, base=10000.0)
    k = torch.arange(4, dtype=torch.float32)
    angle = 3 * 10000.0 ** (-2 * k / 8)
    assert torch.allclose(pe[1, 0::2], np.sqrt(2) * angle.sin())
    assert torch.allclose(pe[1, 1::2], np.sqrt(2) * angle.cos())
    assert torch.allclose(pe.pow(2).mean(-1), torch.ones(3), atol=1e-5)


def test_ppe_zero_width_is_identity():
    x = unit(1, 3, D)
    c1, c2 = paired_positional_encoding(x, torch.arange(3)[None], 0)
    assert c1 is x and c2 is x


def test_untrained_residual_merger_is_mean_pooling():
    model = tiny(residual_to_mean=True)
    x = unit(3, 7, D)
    assert torch.allclose(model(x).pooler_output, x.mean(1), atol=1e-6)


def test_padding_and_batch_invariance():
    model = tiny(residual_to_mean=False)
    sequences = [unit(n, D) for n in (1, 4, 9)]
    batch = torch.zeros(3, 12, D)
    mask = torch.zeros(3, 12, dtype=torch.long)
    for i, s in enumerate(sequences):
        batch[i, : len(s)] = s
        mask[i, : len(s)] = 1
    pooled = model(batch, attention_mask=mask).pooler_output
    for i, s in enumerate(sequences):
        alone = model(s[None]).pooler_output[0]
        assert (pooled[i] - alone).abs().max() <= 1e-5
    # Garbage in padded slots must not matter either.
    noisy = batch + (1 - mask[..., None]) * torch.randn_like(batch)
    assert (model(noisy, attention_mask=mask).pooler_output - pooled).abs().max() <= 1e-5


@pytest.mark.parametrize("mode", ["ppe", "additive", "none"])
@pytest.mark.parametrize("pooled_only", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_packed_forward_skips_padding_with_the_same_output(mode, pooled_only, layers):
    model = tiny(position_mode=mode, num_layers=layers)
    lengths = (1, 4, 9, 2)
    batch = torch.zeros(len(lengths), 9, D)
    mask = torch.zeros(len(lengths), 9, dtype=torch.long)
    for i, n in enumerate(lengths):
        batch[i, :n] = unit(n, D)
        mask[i, :n] = 1
    with torch.no_grad():
        padded = model(batch, attention_mask=mask, pooled_only=pooled_only)
        packed = model(batch, attention_mask=mask, pooled_only=pooled_only, packed=True)
    assert packed.last_hidden_state.shape == padded.last_hidden_state.shape
    assert (packed.pooler_output - padded.pooler_output).abs().max() <= 1e-5
    real = torch.cat((torch.ones(len(lengths), 1), mask, mask), dim=1)[:, : padded.last_hidden_state.shape[1]]
    if pooled_only:
        real = real[:, :1]
    difference = (packed.last_hidden_state - padded.last_hidden_state) * real[..., None]
    assert difference.abs().max() <= 1e-5
    # A batch without padding takes the ordinary path.
    full = model(batch[:, :1], pooled_only=pooled_only, packed=True).pooler_output
    assert (full - model(batch[:, :1], pooled_only=pooled_only).pooler_output).abs().max() <= 1e-6


@pytest.mark.parametrize("mode", ["ppe", "additive"])
def test_order_sensitivity_with_positions(mode):
    model = tiny(residual_to_mean=False, position_mode=mode)
    x = unit(1, 6, D)
    permuted = x[:, torch.tensor([3, 1, 5, 0, 2, 4])]
    assert (model(x).pooler_output - model(permuted).pooler_output).abs().max() > 1e-4


def test_trained_residual_merger_is_order_sensitive():
    model = tiny(residual_to_mean=True)
    torch.nn.init.normal_(model.pooler.weight, std=0.1)
    x = unit(1, 6, D)
    assert (model(x).pooler_output - model(x.flip(1)).pooler_output).abs().max() > 1e-4


def test_without_positions_the_merger_is_order_blind():
    for model in (
        tiny(residual_to_mean=False, ppe_dim=0),
        tiny(residual_to_mean=False, position_mode="none"),
    ):
        x = unit(1, 6, D)
        assert (model(x).pooler_output - model(x.flip(1)).pooler_output).abs().max() < 1e-5


@pytest.mark.parametrize("n", [1, 2, 513, 2000])
def test_any_length_runs(n):
    model = tiny()
    out = model.merge(unit(n, D).numpy())
    assert out.shape == (D,) and np.isclose(np.linalg.norm(out), 1.0, atol=1e-5)


def test_hidden_state_layout():
    model = tiny()
    out = model(unit(2, 5, D), output_hidden_states=True)
    assert out.last_hidden_state.shape == (2, 11, D)
    assert len(out.hidden_states) == 3
    assert tiny(position_mode="additive")(unit(2, 5, D)).last_hidden_state.shape == (2, 6, D)


def test_ppe_dim_is_a_runtime_setting():
    model = tiny(residual_to_mean=False)
    x = unit(1, 5, D)
    before = model(x).pooler_output
    model.ppe_dim = 16
    assert model.config.ppe_dim == 16
    assert (model(x).pooler_output - before).abs().max() > 1e-5
    for bad in (3, -2, D // 2 + 2):
        with pytest.raises(ValueError, match="ppe_dim"):
            model.ppe_dim = bad


def test_forward_takes_embeddings_and_mask_only():
    with pytest.raises(TypeError, match="SequenceMergerForPreTraining"):
        tiny()(unit(1, 3, D), mlm_mask=torch.zeros(1, 3, dtype=torch.bool))


def test_forward_copies_with_equal_copies_is_forward():
    model = tiny(residual_to_mean=False)
    x = unit(2, 5, D)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    checked, long_mask = model.check_inputs(x, mask)
    same = model.forward_copies(checked, checked, long_mask).pooler_output
    assert torch.equal(same, model(x, attention_mask=mask).pooler_output)


def test_save_load_round_trip(tmp_path):
    from transformers import AutoModel

    model = tiny(residual_to_mean=False)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, SequenceMergerModel)
    x = unit(2, 3, D)
    assert torch.equal(loaded(x).pooler_output, model(x).pooler_output)
    assert loaded.fingerprint == model.fingerprint
    loaded.ppe_dim = 8
    assert loaded.fingerprint != model.fingerprint


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(inputs_embeds=torch.full((1, 3, D), float("nan"))), ValueError, "NaN"),
        (dict(inputs_embeds=torch.ones(1, 3, D, dtype=torch.long)), TypeError, "floating point"),
        (dict(inputs_embeds=torch.ones(1, 3, D + 1)), ValueError, "dimension"),
        (dict(inputs_embeds=torch.ones(1, 0, D)), ValueError, "zero chunks"),
        (dict(inputs_embeds=torch.ones(2, 3, D), attention_mask=torch.ones(2, 4)), ValueError, "shape"),
        (
            dict(inputs_embeds=torch.ones(2, 3, D), attention_mask=torch.tensor([[1, 1, 0], [0, 0, 0]])),
            ValueError,
            "all zeros",
        ),
        (
            dict(inputs_embeds=torch.cat((torch.ones(1, 2, D), torch.zeros(1, 1, D)), 1)),
            ValueError,
            "without a mask",
        ),
        (dict(inputs_embeds=torch.ones(3, D)), ValueError, "shape"),
    ],
)
def test_bad_inputs_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        tiny()(**kwargs)


def test_merge_batch_matches_forward_and_restores_training_mode():
    model = tiny(residual_to_mean=False).train()
    x = unit(2, 4, D)
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    out = model.merge_batch(x.numpy(), mask)
    assert model.training
    model.eval()
    ref = torch.nn.functional.normalize(model(x, attention_mask=torch.as_tensor(mask)).pooler_output, dim=-1)
    assert np.allclose(out, ref.detach().numpy(), atol=1e-6)


def test_huge_input_to_merge_is_a_clear_error_not_nan():
    """Regression (#16 defect 7): finite float32 input ×1e30 gave a NaN vector from merge()."""
    model = tiny(residual_to_mean=False)
    x = unit(1, 3, D)[0].numpy()
    assert np.isfinite(model.merge(x)).all()
    with pytest.raises(
        ValueError, match=r"NaN or infinite vector; the largest input value is [0-9.]+e\+(29|30)"
    ):
        model.merge(x * np.float32(1e30))


def test_config_validation():
    with pytest.raises(ValueError, match="position_mode"):
        SequenceMergerConfig(position_mode="rotary")
    with pytest.raises(ValueError, match="divisible"):
        SequenceMergerConfig(d_model=30, num_heads=4)


# The shipped merger gives the outputs recorded in golden/default_merger.json.
GOLDEN = json.loads((Path(__file__).parent / "golden" / "default_merger.json").read_text())


def test_shipped_merger_outputs_are_unchanged():
    model = SequenceMergerModel.from_pretrained(default_merger_path(), dtype=torch.float32).eval()
    assert model.fingerprint == GOLDEN["fingerprint"]
    lengths = GOLDEN["lengths"]
    rng = np.random.default_rng(GOLDEN["seed"])
    x = rng.standard_normal((len(lengths), max(lengths), model.config.d_model)).astype(np.float32)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    mask = (np.arange(max(lengths))[None] < np.array(lengths)[:, None]).astype(np.int64)
    x *= mask[..., None]
    np.testing.assert_allclose(model.merge_batch(x, mask), GOLDEN["merged"], atol=1e-5)
    with torch.no_grad():
        pooled = model(torch.from_numpy(x), attention_mask=torch.from_numpy(mask)).pooler_output.numpy()
    np.testing.assert_allclose(pooled, GOLDEN["pooler_output"], atol=1e-5)
