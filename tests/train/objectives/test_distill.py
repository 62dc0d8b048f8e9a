"""Distillation and the chunk-contrastive loss solving toy problems, and what every objective module returns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.train.objectives.synthetic import mask_of, topic_articles
from vbert.testing.tiny_models import tiny_merger
from vbert.train.batches import pad_batch
from vbert.train.objectives import (
    DistillObjective,
    DistillOptions,
    VBertObjective,
    VBertOptions,
    chunk_contrastive_loss,
    distill_loss,
)

# --- distillation -------------------------------------------------------------------------------


def test_distill_loss_kinds():
    pooled = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    cosine = (0.0 + 1.0) / 2
    squared = (1.0 + 2.0) / 2
    l1 = (1.0 + 0.0 + 1.0 + 1.0) / 4
    assert distill_loss(pooled, target).item() == pytest.approx(cosine)
    assert distill_loss(pooled, target, "mse").item() == pytest.approx(squared)
    assert distill_loss(pooled, target, "cosine+mse", aux_weight=0.5).item() == pytest.approx(
        cosine + 0.5 * squared
    )
    assert distill_loss(pooled, target, "cosine+l1", aux_weight=2.0).item() == pytest.approx(
        cosine + 2.0 * l1
    )
    with pytest.raises(ValueError, match="unknown distillation loss"):
        distill_loss(pooled, target, "huber")
    with pytest.raises(ValueError, match="same shape"):
        distill_loss(pooled, target[:1])


def test_distillation_learns_the_mean_of_unit_vectors():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    merger = tiny_merger(residual_to_mean=False)  # must learn the mean, not start from it
    optimizer = torch.optim.AdamW(merger.parameters(), lr=3e-3)

    def batch(count: int):
        items = [{"inputs": a} for a in topic_articles(rng, count, noise=1.0)]
        padded = pad_batch(items)
        padded["target"] = F.normalize(padded["inputs"].sum(dim=1), dim=-1)
        return padded

    losses = []
    for _ in range(80):
        b = batch(32)
        loss = distill_loss(
            merger(b["inputs"], attention_mask=b["attention_mask"]).pooler_output, b["target"]
        )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5])
    held_out = batch(128)
    merger.eval()
    with torch.no_grad():
        pooled = merger(held_out["inputs"], attention_mask=held_out["attention_mask"]).pooler_output
    assert F.cosine_similarity(pooled, held_out["target"]).mean() > 0.85


def test_chunk_contrastive_loss_value_and_shared_chunks():
    a, b, c = torch.eye(3)
    x = torch.stack([torch.stack([a, b]), torch.stack([b, c])])  # chunk b is in both sequences
    mask = torch.ones(2, 2, dtype=torch.long)
    pooled = torch.stack([a, c])
    tau = 0.5
    loss = chunk_contrastive_loss(pooled, x, mask, tau)
    # Sequence 0: positives {a, b} -> sims {1, 0}; negatives: c (0); the other copy of b is not a negative.
    row0 = -np.log((np.exp(1 / tau) + np.exp(0)) / (np.exp(1 / tau) + np.exp(0) + np.exp(0)))
    # Sequence 1: positives {b, c} -> {0, 1}; negatives: a (0); b of sequence 0 is excluded.
    assert loss.item() == pytest.approx(row0, rel=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        chunk_contrastive_loss(pooled, x, mask, 0.0)


def test_objective_modules_return_loss_and_metrics():
    merger = tiny_merger()
    x = F.normalize(torch.randn(4, 6, 16), dim=-1)
    mask = mask_of([6, 5, 4, 3], 6)
    extras = VBertObjective.build_extras(merger)
    out = VBertObjective(merger, VBertOptions(nsp_weight=0.5), extras)(x, mask, seed=1)
    assert out["loss"].item() == pytest.approx((out["vmlm"] + 0.5 * out["vnsp"]).item(), rel=1e-6)
    assert set(out) == {"loss", "vmlm", "vnsp", "vnsp_acc", "cls_std"}
    assert [id(p) for p in VBertObjective(merger, VBertOptions(), extras).parameters()] == [
        id(p) for p in [*merger.parameters(), *extras.heads.parameters()]
    ], "the optimizer sees the merger first, then the heads (checkpoints depend on that order)"
    target = F.normalize(torch.randn(4, 16), dim=-1)
    out = DistillObjective(merger, DistillOptions(contrastive_weight=0.1))(x, mask, target, seed=1)
    assert set(out) == {"loss", "distill", "contrastive", "train_cos"}
    assert out["loss"].item() == pytest.approx((out["distill"] + 0.1 * out["contrastive"]).item(), rel=1e-6)
