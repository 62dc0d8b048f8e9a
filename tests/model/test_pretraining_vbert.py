"""SequenceMergerForPreTraining: masking and injection per copy, heads, and loading the HF way."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, AutoModelForPreTraining

from vbert.model import SequenceMergerConfig, SequenceMergerForPreTraining, SequenceMergerModel
from vbert.testing.tiny_models import tiny_merger_config

D = 32


def tiny_config(**overrides) -> SequenceMergerConfig:
    return tiny_merger_config(D, **({"num_heads": 4} | overrides))


def pretraining(**overrides) -> SequenceMergerForPreTraining:
    torch.manual_seed(0)
    return SequenceMergerForPreTraining(tiny_config(residual_to_mean=False, **overrides)).eval()


def unit(*shape: int) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(*shape), dim=-1)


def test_injection_replaces_chosen_positions_per_copy():
    model = pretraining()
    x = unit(1, 5, D)
    where = torch.tensor([[False, True, False, False, True]])
    masked_only = model.encode(x, mlm_mask=where).pooler_output
    # Injecting the mask vector itself changes nothing.
    mask_vector = model.merger.mask_embedding.detach().expand(1, 5, D)
    same = model.encode(x, mlm_mask=where, injected=(mask_vector, mask_vector)).pooler_output
    assert torch.allclose(same, masked_only, atol=1e-6)
    other = unit(1, 5, D)
    only1 = model.encode(x, mlm_mask=where, injected=(other, mask_vector)).pooler_output
    only2 = model.encode(x, mlm_mask=where, injected=(mask_vector, other)).pooler_output
    assert (only1 - same).abs().max() > 1e-5 and (only2 - same).abs().max() > 1e-5
    assert (only1 - only2).abs().max() > 1e-5
    # Injecting the original vectors at the masked positions gives back the unmasked merger.
    restored = model.encode(x, mlm_mask=where, injected=(x, x)).pooler_output
    assert torch.allclose(restored, model.merger(x).pooler_output, atol=1e-6)
    with pytest.raises(ValueError, match="mlm_mask"):
        model.encode(x, injected=(other, other))


def test_mlm_mask_uses_the_learned_mask_vector():
    model = pretraining()
    x = unit(1, 4, D)
    masked = torch.tensor([[False, True, False, False]])
    y = x.clone()
    y[0, 1] = model.merger.mask_embedding.detach()
    assert torch.allclose(
        model.encode(x, mlm_mask=masked).pooler_output, model.merger(y).pooler_output, atol=1e-6
    )


def test_wrapping_shares_the_merger_and_draws_the_heads_like_pytorch():
    config = tiny_config()
    torch.manual_seed(0)
    merger = SequenceMergerModel(config)
    fingerprint = merger.fingerprint
    model = SequenceMergerForPreTraining.from_merger(merger)
    after = torch.rand(4)
    assert model.merger is merger and merger.fingerprint == fingerprint, "wrapping leaves the merger alone"
    # The heads are exactly what PyTorch's default initialisation draws next, once.
    torch.manual_seed(0)
    SequenceMergerModel(config)
    expected = {
        "mlm.dense": torch.nn.Linear(D, D),
        "mlm.layer_norm": torch.nn.LayerNorm(D),
        "mlm.decoder": torch.nn.Linear(D, D),
        "nsp.classifier": torch.nn.Linear(D, 2),
    }
    assert torch.equal(torch.rand(4), after)
    heads = model.heads.state_dict()
    for name, module in expected.items():
        for key, value in module.state_dict().items():
            assert torch.equal(heads[f"{name}.{key}"], value), f"{name}.{key}"


def test_a_saved_merger_loads_into_the_pretraining_model_and_back(tmp_path):
    torch.manual_seed(1)
    merger = SequenceMergerModel(tiny_config())
    merger.save_pretrained(tmp_path / "merger")
    loaded = AutoModelForPreTraining.from_pretrained(tmp_path / "merger")
    assert isinstance(loaded, SequenceMergerForPreTraining)
    assert loaded.merger.fingerprint == merger.fingerprint
    assert torch.isfinite(loaded.heads.mlm.dense.weight).all() and loaded.heads.mlm.dense.weight.std() > 0
    loaded.save_pretrained(tmp_path / "pretraining")
    back = AutoModel.from_pretrained(tmp_path / "pretraining")
    assert isinstance(back, SequenceMergerModel) and back.fingerprint == merger.fingerprint


def test_forward_is_the_weighted_sum_of_vmlm_and_vnsp():
    model = pretraining()
    x = unit(4, 6, D)
    mask = torch.tensor([[1] * 6, [1] * 5 + [0], [1] * 4 + [0] * 2, [1] * 3 + [0] * 3])
    x = x * mask[..., None]
    out = model(x, mask, torch.Generator().manual_seed(1), mlm_weight=1.0, nsp_weight=0.5)
    generator = torch.Generator().manual_seed(1)
    mlm = model.vmlm(x, mask, generator)
    nsp = model.vnsp(x, mask, generator)
    assert torch.equal(out.vmlm_loss, mlm.loss) and torch.equal(out.vnsp_loss, nsp.loss)
    assert out.loss.item() == pytest.approx((mlm.loss + 0.5 * nsp.loss).item(), rel=1e-6)
    assert out.vnsp_accuracy.item() == pytest.approx(nsp.accuracy)
