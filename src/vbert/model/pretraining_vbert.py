"""vBERT pre-training: the merger with its vMLM and vNSP heads, masking, injection and losses.

:class:`SequenceMergerForPreTraining` is to :class:`SequenceMergerModel` what
``BertForPreTraining`` is to ``BertModel``: the task-agnostic merger plus what only
pre-training needs. The file reads top to bottom:

1. the heads: :class:`VectorPredictionHead` (vMLM) and :class:`ContinuityHead` (vNSP);
2. the random choices: :func:`sample_mlm_mask` (vMLM positions) and
   :func:`splice_false_histories` (vNSP inputs);
3. :class:`SequenceMergerForPreTraining`: masked and injected forward passes, :meth:`vmlm`,
   :meth:`vnsp`, and ``forward`` = ``mlm_weight * vMLM + nsp_weight * vNSP``.

Batches are right-padded: ``x`` (B, N, d) chunk vectors, ``mask`` (B, N) with 1 = real.
Random choices come from an explicit ``torch.Generator`` so a step is reproducible from a
seed, whatever the device. Like the merger, this file imports only torch and transformers.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling, ModelOutput

from .configuration_vbert import SequenceMergerConfig
from .modeling_vbert import SequenceMergerModel, SequenceMergerPreTrainedModel

Representation = Literal["pooled", "cls"]
REPRESENTATIONS: tuple[str, ...] = ("pooled", "cls")


class VectorPredictionHead(nn.Module):
    """vMLM head: a hidden state at a masked position → a predicted chunk vector (d_model).

    The BERT prediction-head shape (dense → GELU → LayerNorm → dense), predicting a vector
    instead of vocabulary logits.
    """

    def __init__(self, config: SequenceMergerConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.d_model, config.d_model)
        self.activation = nn.GELU()
        self.layer_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.d_model, config.d_model)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(self.activation(self.dense(hidden))))


class ContinuityHead(nn.Module):
    """vNSP classifier: the L2-normalised CLS state → ``Linear(d_model, 2)`` → logits (IsNext 0, NotNext 1).

    The unit vector is scaled by ``sqrt(d_model)`` (unit RMS per component) before the
    linear layer: on a unit vector a freshly initialised layer gives logits of about 0.1 and
    learns several times slower (measured on the synthetic continuity task).
    """

    def __init__(self, config: SequenceMergerConfig) -> None:
        super().__init__()
        self.classifier = nn.Linear(config.d_model, 2)
        self.scale = math.sqrt(config.d_model)

    def forward(self, cls_state: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.normalize(cls_state, dim=-1) * self.scale)


class PretrainingHeads(nn.Module):
    """Both vBERT heads in one module (``mlm``, ``nsp``), saved and optimised together."""

    def __init__(self, config: SequenceMergerConfig) -> None:
        super().__init__()
        self.mlm = VectorPredictionHead(config)
        self.nsp = ContinuityHead(config)


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
class VMLMOutput:
    """vMLM result: the loss, how many positions were masked, and the spread of CLS_orig.

    ``cls_std`` (mean over dimensions of the batch standard deviation of CLS_orig) watches
    for collapse: a constant CLS makes the L1 loss zero without learning anything.
    """

    loss: torch.Tensor
    n_masked: int
    cls_std: float


@dataclass
class VNSPOutput:
    """vNSP result: cross-entropy loss, accuracy and the labels that were used."""

    loss: torch.Tensor
    accuracy: float
    labels: torch.Tensor


@dataclass
class SequenceMergerForPreTrainingOutput(ModelOutput):
    """``loss`` = ``mlm_weight * vmlm_loss + nsp_weight * vnsp_loss``, with the parts and two monitors."""

    loss: torch.Tensor | None = None
    vmlm_loss: torch.Tensor | None = None
    vnsp_loss: torch.Tensor | None = None
    vnsp_accuracy: torch.Tensor | None = None
    cls_std: torch.Tensor | None = None


class SequenceMergerForPreTraining(SequenceMergerPreTrainedModel):
    """The merger with the vBERT pre-training heads: vMLM (masking, injection) and vNSP (splicing).

    ``self.merger`` is a plain :class:`SequenceMergerModel`; only it is kept after
    pre-training (``save_pretrained`` of ``.merger``). :meth:`from_merger` wraps an existing
    merger, sharing its weights. The heads start from PyTorch's default initialisation.
    """

    def __init__(self, config: SequenceMergerConfig, merger: SequenceMergerModel | None = None) -> None:
        super().__init__(config)
        self.merger = SequenceMergerModel(config) if merger is None else merger
        with torch.device("meta"):  # no random draws here: post_init initialises the heads, once
            heads = PretrainingHeads(config)
        self.heads = heads.to_empty(device=self.merger.device)
        self.post_init()

    @classmethod
    def from_merger(cls, merger: SequenceMergerModel) -> SequenceMergerForPreTraining:
        """New pre-training heads around ``merger`` (whose weights are shared, not copied)."""
        return cls(merger.config, merger=merger)

    def _init_weights(self, module: nn.Module) -> None:
        # Only the heads get here (the merger initialises its own modules): PyTorch's defaults.
        if isinstance(module, nn.Linear | nn.LayerNorm):
            module.reset_parameters()

    def encode(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mlm_mask: torch.Tensor | None = None,
        injected: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> BaseModelOutputWithPooling:
        """One merger pass with vMLM's changes to its input.

        ``mlm_mask`` (B, N) bool: these positions are replaced by the merger's learned
        ``mask_embedding`` before the positional slots are written. ``injected``: two (B, N, d)
        tensors that replace the ``mlm_mask`` positions in copy 1 and in copy 2 (vMLM's third
        pass puts its predictions there; their positional slots are still written).
        """
        x, mask = self.merger.check_inputs(inputs_embeds, attention_mask)
        if mlm_mask is not None:
            x = torch.where(mlm_mask[..., None].bool(), self.merger.mask_embedding.to(x.dtype), x)
        copy1 = copy2 = x
        if injected is not None:
            if mlm_mask is None:
                raise ValueError("injected predictions need the mlm_mask that says where they go")
            where = mlm_mask[..., None].bool()
            copy1 = torch.where(where, injected[0].to(x.dtype), x)
            copy2 = torch.where(where, injected[1].to(x.dtype), x)
        return self.merger.forward_copies(copy1, copy2, mask)

    def sequence_vector(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        representation: Representation = "pooled",
        mlm_mask: torch.Tensor | None = None,
        injected: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The vector the vBERT objectives compare: the merger's output or its raw CLS state.

        ``pooled``: ``pooler_output``, the sequence embedding the merger returns (projected
        CLS, plus the mean of the inputs with ``residual_to_mean``). ``cls``: the final
        layer-normed hidden state at index 0, before the pooler.
        """
        if representation not in REPRESENTATIONS:
            raise ValueError(f"unknown representation {representation!r}; choose one of {REPRESENTATIONS}")
        out = self.encode(inputs_embeds, attention_mask, mlm_mask, injected)
        return out.pooler_output if representation == "pooled" else out.last_hidden_state[:, 0]

    def vmlm(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
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
        over the sequences that had a masked position. "CLS" is the sequence vector chosen by
        ``representation`` (:meth:`sequence_vector`; by default the merger's output).
        Single-copy position modes use the one copy for m¹ and m².
        """
        x, mask = inputs_embeds, attention_mask
        masked = sample_mlm_mask(mask, generator, mask_ratio)
        n = x.shape[1]
        hidden = self.encode(x, mask, mlm_mask=masked).last_hidden_state  # (B, 1 + 2N, d) or (B, 1 + N, d)
        if hidden.shape[1] == 1 + 2 * n:
            pred1, pred2 = self.heads.mlm(hidden[:, 1 : n + 1]), self.heads.mlm(hidden[:, n + 1 :])
        else:
            pred1 = pred2 = self.heads.mlm(hidden[:, 1:])

        with torch.no_grad() if detach_target else contextlib.nullcontext():
            cls_orig = self.sequence_vector(x, mask, representation)
        cls_guess = self.sequence_vector(x, mask, representation, mlm_mask=masked, injected=(pred1, pred2))

        per_sequence = (cls_guess.float() - cls_orig.float()).abs().mean(dim=-1)  # (B,)
        has_mask = masked.any(dim=1).to(per_sequence.dtype)
        loss = (per_sequence * has_mask).sum() / has_mask.sum().clamp(min=1.0)
        cls_std = cls_orig.detach().float().std(dim=0).mean().item() if x.shape[0] > 1 else 0.0
        return VMLMOutput(loss=loss, n_masked=int(masked.sum().item()), cls_std=cls_std)

    def vnsp(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        generator: torch.Generator,
        representation: Representation = "pooled",
    ) -> VNSPOutput:
        """vNSP: classify each sequence as real (0, IsNext) or spliced (1, NotNext).

        Half the batch gets a false history (:func:`splice_false_histories`); the sequence
        vector (:meth:`sequence_vector`), L2-normalised, goes through ``Linear(d_model, 2)``;
        loss = cross-entropy.
        """
        x_new, mask_new, labels = splice_false_histories(inputs_embeds, attention_mask, generator)
        logits = self.heads.nsp(self.sequence_vector(x_new, mask_new, representation)).float()  # (B, 2)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(dim=-1) == labels).float().mean().item()
        return VNSPOutput(loss=loss, accuracy=accuracy, labels=labels)

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        generator: torch.Generator | None = None,
        mlm_weight: float = 1.0,
        nsp_weight: float = 1.0,
        mask_ratio: float = 0.15,
        detach_target: bool = True,
        representation: Representation = "pooled",
    ) -> SequenceMergerForPreTrainingOutput:
        """One vBERT pre-training step's loss: vMLM then vNSP, both drawing from ``generator``
        (PyTorch's global CPU generator when None)."""
        generator = torch.default_generator if generator is None else generator
        mlm = self.vmlm(inputs_embeds, attention_mask, generator, mask_ratio, detach_target, representation)
        nsp = self.vnsp(inputs_embeds, attention_mask, generator, representation)
        return SequenceMergerForPreTrainingOutput(
            loss=mlm_weight * mlm.loss + nsp_weight * nsp.loss,
            vmlm_loss=mlm.loss,
            vnsp_loss=nsp.loss,
            vnsp_accuracy=torch.tensor(nsp.accuracy),
            cls_std=torch.tensor(mlm.cls_std),
        )
