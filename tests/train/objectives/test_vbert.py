"""The training objectives: exact masking/splicing rules, and each loss solving a toy problem.

vMLM and vNSP are SequenceMergerForPreTraining's (vbert.model); the objective classes of
vbert.train.objectives connect them to the trainer.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.train.objectives.synthetic import mask_of, topic_articles
from vbert.model import (
    SequenceMergerForPreTraining,
    sample_mlm_mask,
    splice_false_histories,
)
from vbert.testing.tiny_models import tiny_merger
from vbert.train.batches import pad_batch


def tiny_pretraining(d: int = 16, **overrides) -> SequenceMergerForPreTraining:
    return SequenceMergerForPreTraining.from_merger(tiny_merger(d, **overrides))


# --- vMLM masking -------------------------------------------------------------------------------


def test_mlm_mask_counts_padding_and_bounds():
    lengths = [1, 2, 3, 6, 7, 10, 20, 40]
    mask = mask_of(lengths, n=42)
    chosen = sample_mlm_mask(mask, torch.Generator().manual_seed(0), 0.15)
    assert chosen.dtype == torch.bool and chosen.shape == mask.shape
    assert not (chosen & (mask == 0)).any(), "padding must never be masked"
    expected = [min(max(1, int(np.floor(0.15 * n + 0.5))), n - 1) for n in lengths]
    assert chosen.sum(dim=1).tolist() == expected == [0, 1, 1, 1, 1, 2, 3, 6]


def test_mlm_mask_never_masks_everything_even_at_high_ratio():
    mask = mask_of([2, 3, 5])
    chosen = sample_mlm_mask(mask, torch.Generator().manual_seed(1), 0.99)
    assert chosen.sum(dim=1).tolist() == [1, 2, 4]


def test_mlm_mask_is_reproducible_and_random():
    mask = mask_of([30] * 4)
    a = sample_mlm_mask(mask, torch.Generator().manual_seed(3))
    b = sample_mlm_mask(mask, torch.Generator().manual_seed(3))
    c = sample_mlm_mask(mask, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="mask_ratio"):
        sample_mlm_mask(mask, torch.Generator(), 1.0)


class Recorder:
    """Records the arguments and results of every merger pass of a pre-training model."""

    def __init__(self, model: SequenceMergerForPreTraining) -> None:
        self.calls: list[dict] = []
        encode = model.encode

        def recording(x, attention_mask=None, mlm_mask=None, injected=None):
            out = encode(x, attention_mask, mlm_mask, injected)
            vectors = {"cls": out.last_hidden_state[:, 0], "pooled": out.pooler_output}
            self.calls.append({"x": x, "mlm_mask": mlm_mask, "injected": injected, **vectors})
            return out

        model.encode = recording


@pytest.mark.parametrize("representation", ["pooled", "cls"])
def test_vmlm_runs_the_three_passes_exactly(representation: str):
    torch.manual_seed(0)
    model = tiny_pretraining()
    torch.nn.init.normal_(model.merger.pooler.weight, std=0.1)  # a trained-looking pooler, not the zero start
    x = F.normalize(torch.randn(3, 8, 16), dim=-1)
    mask = mask_of([8, 5, 1], n=8)
    x = x * mask[..., None]
    recorder = Recorder(model)
    generator = torch.Generator().manual_seed(7)
    out = model.vmlm(x, mask, generator, detach_target=True, representation=representation)

    expected_mask = sample_mlm_mask(mask, torch.Generator().manual_seed(7))
    first, second, third = recorder.calls
    assert torch.equal(first["mlm_mask"], expected_mask) and first["injected"] is None
    assert second["mlm_mask"] is None and second["injected"] is None
    assert torch.equal(third["mlm_mask"], expected_mask)
    hidden = model.merger.forward_copies(
        *[torch.where(expected_mask[..., None], model.merger.mask_embedding, x)] * 2, mask
    ).last_hidden_state
    torch.testing.assert_close(third["injected"][0], model.heads.mlm(hidden[:, 1:9]))
    torch.testing.assert_close(third["injected"][1], model.heads.mlm(hidden[:, 9:17]))
    # Loss: mean |CLS_guess - CLS_orig| over dims, averaged over rows with a masked position (not row 3).
    per_row = (third[representation] - second[representation]).abs().mean(dim=-1)
    torch.testing.assert_close(out.loss, per_row[:2].mean())
    assert out.n_masked == int(expected_mask.sum()) == 2
    assert not second[representation].requires_grad, "CLS_orig is detached by default"


def test_vmlm_target_keeps_its_gradient_when_not_detached():
    model = tiny_pretraining()
    recorder = Recorder(model)
    x = F.normalize(torch.randn(2, 6, 16), dim=-1)
    model.vmlm(x, mask_of([6, 6]), torch.Generator(), detach_target=False)
    assert recorder.calls[1]["pooled"].requires_grad


def test_sequence_vector_choices():
    model = tiny_pretraining()
    x = F.normalize(torch.randn(2, 6, 16), dim=-1)
    out = model.merger(x, attention_mask=mask_of([6, 6]))
    assert torch.equal(model.sequence_vector(x, mask_of([6, 6]), "pooled"), out.pooler_output)
    assert torch.equal(model.sequence_vector(x, mask_of([6, 6]), "cls"), out.last_hidden_state[:, 0])
    with pytest.raises(ValueError, match="unknown representation"):
        model.sequence_vector(x, mask_of([6, 6]), "mean")


def test_vmlm_single_copy_modes_share_the_prediction():
    model = tiny_pretraining(position_mode="additive")
    recorder = Recorder(model)
    x = F.normalize(torch.randn(2, 6, 16), dim=-1)
    model.vmlm(x, mask_of([6, 6]), torch.Generator())
    injected = recorder.calls[2]["injected"]
    assert torch.equal(injected[0], injected[1])


@pytest.mark.parametrize(
    ("representation", "detach_target"), [("pooled", True), ("pooled", False), ("cls", True)]
)
def test_vmlm_loss_decreases_when_masked_chunks_are_predictable(representation: str, detach_target: bool):
    """Chunks of an article are near copies of each other, so a masked one can be reconstructed."""
    rng = np.random.default_rng(0)
    held_out = pad_batch([{"inputs": a} for a in topic_articles(np.random.default_rng(9), 64, noise=0.05)])
    torch.manual_seed(0)
    model = tiny_pretraining()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def held_out_loss():
        generator = torch.Generator().manual_seed(123)
        out = model.vmlm(
            held_out["inputs"], held_out["attention_mask"], generator, 0.15, detach_target, representation
        )
        return out.loss.item(), out.cls_std

    before, _ = held_out_loss()
    for step in range(40):
        batch = pad_batch([{"inputs": a} for a in topic_articles(rng, 16, noise=0.05)])
        generator = torch.Generator().manual_seed(step)
        out = model.vmlm(
            batch["inputs"], batch["attention_mask"], generator, 0.15, detach_target, representation
        )
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after, _ = held_out_loss()
    assert after < 0.5 * before


# --- vNSP splicing ------------------------------------------------------------------------------


def test_splice_rules():
    b, n, d = 6, 10, 4
    lengths = [10, 7, 4, 1, 9, 2]
    mask = mask_of(lengths, n)
    # Row r, position p holds the value 100 * r + p in every dimension: easy to trace.
    x = (100 * torch.arange(b)[:, None] + torch.arange(n)[None, :]).float()[..., None].expand(b, n, d) * mask[
        ..., None
    ]
    x_new, mask_new, labels = splice_false_histories(x, mask, torch.Generator().manual_seed(0))

    assert labels.tolist().count(1) == b // 2
    assert labels[3] == 0, "a single-chunk sequence cannot be spliced"
    for row in range(b):
        values = x_new[row, :, 0]
        length = int(mask_new[row].sum())
        assert torch.equal(mask_new[row], mask_of([length], n)[0]), "spliced rows stay right-padded"
        assert (values[length:] == 0).all()
        if labels[row] == 0:
            assert length == lengths[row] and torch.equal(x_new[row], x[row])
            continue
        keep = lengths[row] // 2
        assert torch.equal(values[:keep], x[row, :keep, 0]), "the first half is kept"
        donor = int(values[keep]) // 100
        assert donor != row, "the rest comes from a different sequence"
        take = length - keep
        assert torch.equal(values[keep:length], x[donor, :take, 0]), "...as a prefix of it"
        need = lengths[row] - keep
        assert take == min(need, lengths[donor])
        if take == need:
            assert lengths[donor] >= need
        else:
            assert lengths[donor] == max(lengths[j] for j in range(b) if j != row)


def test_splice_prefers_donors_long_enough_and_falls_back_to_the_longest():
    mask = mask_of([8, 2])
    x = torch.arange(16).float().view(2, 8, 1) * mask[..., None]
    for seed in range(10):
        x_new, mask_new, labels = splice_false_histories(x, mask, torch.Generator().manual_seed(seed))
        assert labels.sum() == 1
        if labels[0] == 1:  # needs 4 chunks, the only donor has 2: whole donor, shorter sequence
            assert int(mask_new[0].sum()) == 4 + 2
        else:
            assert int(mask_new[1].sum()) == 2 and x_new[1, 1, 0] == x[0, 0, 0]


def test_splice_needs_a_second_sequence():
    mask = mask_of([6])
    x = torch.randn(1, 6, 4)
    x_new, _, labels = splice_false_histories(x, mask, torch.Generator())
    assert labels.tolist() == [0] and torch.equal(x_new, x)


def test_vnsp_separates_spliced_from_real_sequences():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = tiny_pretraining()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for step in range(150):
        batch = pad_batch([{"inputs": a} for a in topic_articles(rng, 32)])
        out = model.vnsp(batch["inputs"], batch["attention_mask"], torch.Generator().manual_seed(step))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(out.loss.item())
    model.eval()
    held_out = pad_batch([{"inputs": a} for a in topic_articles(np.random.default_rng(99), 256)])
    with torch.no_grad():
        result = model.vnsp(held_out["inputs"], held_out["attention_mask"], torch.Generator())
    assert result.labels.float().mean() == 0.5
    assert result.accuracy > 0.75
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.15
