"""Training objectives of the merger, each a small function over a batch.

* :func:`vmlm_loss` — vMLM, self-consistent vector reconstruction (three forward passes).
* :func:`vnsp_loss` — vNSP, continuity classification of real vs spliced sequences.
* :func:`distill_loss` — n-to-1 distillation of the teacher's embedding of the joined text,
  optionally with :func:`chunk_contrastive_loss`.

Batches are right-padded: ``x`` (B, N, d) chunk vectors, ``mask`` (B, N) with 1 = real.
Random choices (masked positions, false histories) come from an explicit
``torch.Generator`` so a step is reproducible from a seed, whatever the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .heads import ContinuityHead, PretrainingHeads, VectorPredictionHead

DistillKind = Literal["cosine", "mse", "cosine+mse", "cosine+l1"]
DISTILL_KINDS: tuple[str, ...] = ("cosine", "mse", "cosine+mse", "cosine+l1")


def sample_mlm_mask(mask: torch.Tensor, generator: torch.Generator, mask_ratio: float = 0.15) -> torch.Tensor:
    """Choose the vMLM positions: ``round(mask_ratio * L)`` real positions per sequence.

    At least one position and never all of them: a sequence of ``L`` real chunks gets
    ``min(max(1, round(mask_ratio * L)), L - 1)`` masked positions, so sequences of a single
    chunk get none. Padding is never chosen. Returns a bool tensor shaped like ``mask``.
    """
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be between 0 and 1 (exclusive), got {mask_ratio}")
    real = mask.detach().to("cpu").bool()
    lengths = real.sum(dim=1)
    count = torch.floor(lengths.double() * mask_ratio + 0.5).long().clamp(min=1)
    count = torch.minimum(count, lengths - 1).clamp(min=0)
    scores = torch.rand(real.shape, generator=generator)
    scores = scores.masked_fill(~real, 2.0)  # padding sorts after every real position
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return ((ranks < count[:, None]) & real).to(mask.device)


Representation = Literal["pooled", "cls"]
REPRESENTATIONS: tuple[str, ...] = ("pooled", "cls")


def sequence_vector(
    model: nn.Module, x: torch.Tensor, mask: torch.Tensor, representation: Representation = "pooled", **kwargs
) -> torch.Tensor:
    """The vector the vBERT objectives compare: the merger's output or its raw CLS state.

    ``pooled``: ``pooler_output``, the sequence embedding the merger returns (projected
    CLS, plus the mean of the inputs with ``residual_to_mean``). ``cls``: the final
    layer-normed hidden state at index 0, before the pooler.
    """
    out = model(x, attention_mask=mask, **kwargs)
    if representation == "pooled":
        return out.pooler_output
    if representation == "cls":
        return out.last_hidden_state[:, 0]
    raise ValueError(f"unknown representation {representation!r}; choose one of {REPRESENTATIONS}")


@dataclass
class VMLMOutput:
    """vMLM result: the loss, how many positions were masked, and the spread of CLS_orig.

    ``cls_std`` (mean over dimensions of the batch standard deviation of CLS_orig) watches
    for collapse: a constant CLS makes the L1 loss zero without learning anything.
    """

    loss: torch.Tensor
    n_masked: int
    cls_std: float


def vmlm_loss(
    model: nn.Module,
    head: VectorPredictionHead,
    x: torch.Tensor,
    mask: torch.Tensor,
    generator: torch.Generator,
    mask_ratio: float = 0.15,
    detach_target: bool = True,
    representation: Representation = "pooled",
) -> VMLMOutput:
    """vMLM: self-consistent vector reconstruction.

    1. Forward the sequence with the chosen positions replaced by the learned mask vector;
       the prediction head maps the hidden states of those positions in copy 1 and copy 2
       back to chunk vectors m¹, m².
    2. Forward the unmasked sequence → CLS_orig (detached when ``detach_target``).
    3. Forward the masked sequence again with m¹ injected into copy 1 and m² into copy 2
       at the masked positions (their positional slots are still written) → CLS_guess.

    Loss = mean absolute error between CLS_guess and CLS_orig over the dimensions, averaged
    over the sequences that had a masked position. "CLS" is the merger's sequence vector
    chosen by ``representation`` (:func:`sequence_vector`; by default its output). The
    prediction head reads the final hidden states of the masked positions. Single-copy
    position modes use the one copy for m¹ and m².
    """
    masked = sample_mlm_mask(mask, generator, mask_ratio)
    n = x.shape[1]
    hidden = model(x, attention_mask=mask, mlm_mask=masked).last_hidden_state
    if hidden.shape[1] == 1 + 2 * n:
        pred1, pred2 = head(hidden[:, 1 : n + 1]), head(hidden[:, n + 1 :])
    else:
        pred1 = pred2 = head(hidden[:, 1:])

    if detach_target:
        with torch.no_grad():
            cls_orig = sequence_vector(model, x, mask, representation)
    else:
        cls_orig = sequence_vector(model, x, mask, representation)
    cls_guess = sequence_vector(
        model,
        x,
        mask,
        representation,
        mlm_mask=masked,
        inject_mask=masked,
        inject_copy1=pred1,
        inject_copy2=pred2,
    )

    per_sequence = (cls_guess.float() - cls_orig.float()).abs().mean(dim=-1)
    has_mask = masked.any(dim=1).to(per_sequence.dtype)
    loss = (per_sequence * has_mask).sum() / has_mask.sum().clamp(min=1.0)
    cls_std = cls_orig.detach().float().std(dim=0).mean().item() if x.shape[0] > 1 else 0.0
    return VMLMOutput(loss=loss, n_masked=int(masked.sum().item()), cls_std=cls_std)


def splice_false_histories(
    x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Build vNSP inputs: half of the sequences get a false history.

    ``B // 2`` sequences (chosen at random among those with at least 2 real chunks; fewer
    if not enough qualify) keep their first ``L // 2`` chunks; the remaining ``L - L // 2``
    are replaced by the first chunks of another sequence of the batch (a donor with at
    least that many chunks when one exists, else the longest other one, whose whole
    sequence is used, so the spliced sequence is shorter). Returns ``(x_new, mask_new,
    labels)`` with labels 0 = IsNext (untouched), 1 = NotNext (spliced).
    """
    b, n = mask.shape
    lengths = mask.detach().to("cpu").long().sum(dim=1).numpy()
    src_row = np.repeat(np.arange(b)[:, None], n, axis=1)
    src_pos = np.repeat(np.arange(n)[None, :], b, axis=0)
    new_lengths = lengths.copy()
    labels = np.zeros(b, dtype=np.int64)

    eligible = np.flatnonzero(lengths >= 2) if b >= 2 else np.array([], dtype=np.int64)
    order = torch.randperm(len(eligible), generator=generator).numpy()
    for i in eligible[order[: b // 2]]:
        keep = lengths[i] // 2
        need = lengths[i] - keep
        others = np.flatnonzero(np.arange(b) != i)
        long_enough = others[lengths[others] >= need]
        if len(long_enough):
            donor = long_enough[torch.randint(len(long_enough), (1,), generator=generator).item()]
        else:
            donor = others[np.argmax(lengths[others])]
        take = min(need, lengths[donor])
        src_row[i, keep : keep + take] = donor
        src_pos[i, keep : keep + take] = np.arange(take)
        new_lengths[i] = keep + take
        labels[i] = 1

    rows = torch.from_numpy(src_row).to(x.device)
    cols = torch.from_numpy(src_pos).to(x.device)
    new_mask = torch.from_numpy(np.arange(n)[None, :] < new_lengths[:, None]).to(device=mask.device)
    x_new = x[rows, cols] * new_mask[..., None].to(x.dtype)
    return x_new, new_mask.to(mask.dtype), torch.from_numpy(labels).to(x.device)


@dataclass
class VNSPOutput:
    """vNSP result: cross-entropy loss, accuracy and the labels that were used."""

    loss: torch.Tensor
    accuracy: float
    labels: torch.Tensor


def vnsp_loss(
    model: nn.Module,
    head: ContinuityHead,
    x: torch.Tensor,
    mask: torch.Tensor,
    generator: torch.Generator,
    representation: Representation = "pooled",
) -> VNSPOutput:
    """vNSP: classify each sequence as real (0, IsNext) or spliced (1, NotNext).

    Half the batch gets a false history (:func:`splice_false_histories`); the sequence
    vector (:func:`sequence_vector`), L2-normalised, goes through ``Linear(d_model, 2)``;
    loss = cross-entropy.
    """
    x_new, mask_new, labels = splice_false_histories(x, mask, generator)
    logits = head(sequence_vector(model, x_new, mask_new, representation)).float()
    loss = F.cross_entropy(logits, labels)
    accuracy = (logits.argmax(dim=-1) == labels).float().mean().item()
    return VNSPOutput(loss=loss, accuracy=accuracy, labels=labels)


def distill_loss(
    pooled: torch.Tensor, target: torch.Tensor, kind: DistillKind = "cosine", aux_weight: float = 1.0
) -> torch.Tensor:
    """n-to-1 distillation loss between the merger's ``pooled`` output and the teacher ``target``.

    * ``cosine``: mean cosine distance ``1 - cos(pooled, target)`` (scale-free, the default);
    * ``mse``: mean squared Euclidean distance ``||pooled - target||²`` (also pulls the norm);
    * ``cosine+mse`` / ``cosine+l1``: cosine distance plus ``aux_weight`` times the squared
      distance / the mean absolute error over the dimensions.
    """
    if kind not in DISTILL_KINDS:
        raise ValueError(f"unknown distillation loss {kind!r}; choose one of {DISTILL_KINDS}")
    if pooled.shape != target.shape:
        raise ValueError(
            f"pooled {tuple(pooled.shape)} and target {tuple(target.shape)} must have the same shape"
        )
    pooled, target = pooled.float(), target.float()
    cosine = (1.0 - F.cosine_similarity(pooled, target, dim=-1)).mean()
    squared = (pooled - target).pow(2).sum(dim=-1).mean()
    if kind == "cosine":
        return cosine
    if kind == "mse":
        return squared
    if kind == "cosine+mse":
        return cosine + aux_weight * squared
    return cosine + aux_weight * (pooled - target).abs().mean()


def chunk_contrastive_loss(
    pooled: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, temperature: float = 0.05
) -> torch.Tensor:
    """Multi-positive InfoNCE: a merged vector should be closer to its own chunks than to others'.

    Positives of sequence b are its real chunks; negatives are the real chunks of the other
    sequences, except exact copies of one of b's own chunks (overlapping windows of the
    same article share chunks, which are not negatives).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    real = mask.bool()
    chunks = F.normalize(x[real].float(), dim=-1)
    owner = torch.arange(x.shape[0], device=x.device)[:, None].expand_as(real)[real]
    _, chunk_id = torch.unique(x[real].float(), dim=0, return_inverse=True)
    owns_id = torch.zeros(x.shape[0], int(chunk_id.max()) + 1, dtype=torch.bool, device=x.device)
    owns_id[owner, chunk_id] = True
    positive = owner[None, :] == torch.arange(x.shape[0], device=x.device)[:, None]
    shared_copy = owns_id[:, chunk_id] & ~positive
    logits = F.normalize(pooled.float(), dim=-1) @ chunks.T / temperature
    logits = logits.masked_fill(shared_copy, float("-inf"))
    positive_logits = logits.masked_fill(~positive, float("-inf"))
    return (torch.logsumexp(logits, dim=1) - torch.logsumexp(positive_logits, dim=1)).mean()


def step_generator(seed: int) -> torch.Generator:
    """A CPU generator for one step's random choices, seeded reproducibly."""
    return torch.Generator().manual_seed(seed)


class VBertObjective(nn.Module):
    """vBERT pre-training step: ``mlm_weight * vMLM + nsp_weight * vNSP`` in one forward call.

    One module holds the merger and the heads, so Accelerate (DDP) wraps a single forward.
    """

    def __init__(
        self,
        merger: nn.Module,
        heads: PretrainingHeads,
        mlm_weight: float = 1.0,
        nsp_weight: float = 1.0,
        mask_ratio: float = 0.15,
        detach_target: bool = True,
        representation: Representation = "pooled",
    ) -> None:
        super().__init__()
        self.merger = merger
        self.heads = heads
        self.mlm_weight = mlm_weight
        self.nsp_weight = nsp_weight
        self.mask_ratio = mask_ratio
        self.detach_target = detach_target
        self.representation = representation

    def forward(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor, seed: int
    ) -> dict[str, torch.Tensor]:
        generator = step_generator(seed)
        mlm = vmlm_loss(
            self.merger,
            self.heads.mlm,
            inputs,
            attention_mask,
            generator,
            self.mask_ratio,
            self.detach_target,
            self.representation,
        )
        nsp = vnsp_loss(self.merger, self.heads.nsp, inputs, attention_mask, generator, self.representation)
        loss = self.mlm_weight * mlm.loss + self.nsp_weight * nsp.loss
        return {
            "loss": loss,
            "vmlm": mlm.loss.detach(),
            "vnsp": nsp.loss.detach(),
            "vnsp_acc": torch.tensor(nsp.accuracy),
            "cls_std": torch.tensor(mlm.cls_std),
        }


class DistillObjective(nn.Module):
    """n-to-1 distillation step: :func:`distill_loss` plus an optional contrastive term."""

    def __init__(
        self,
        merger: nn.Module,
        kind: DistillKind = "cosine",
        aux_weight: float = 1.0,
        contrastive_weight: float = 0.0,
        temperature: float = 0.05,
    ) -> None:
        super().__init__()
        self.merger = merger
        self.kind = kind
        self.aux_weight = aux_weight
        self.contrastive_weight = contrastive_weight
        self.temperature = temperature

    def forward(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor, target: torch.Tensor, seed: int
    ) -> dict[str, torch.Tensor]:
        pooled = self.merger(inputs, attention_mask=attention_mask).pooler_output
        distill = distill_loss(pooled, target, self.kind, self.aux_weight)
        metrics = {"distill": distill.detach()}
        loss = distill
        if self.contrastive_weight > 0:
            contrastive = chunk_contrastive_loss(pooled, inputs, attention_mask, self.temperature)
            loss = loss + self.contrastive_weight * contrastive
            metrics["contrastive"] = contrastive.detach()
        with torch.no_grad():
            metrics["train_cos"] = F.cosine_similarity(pooled.float(), target.float(), dim=-1).mean()
        return {"loss": loss, **metrics}
