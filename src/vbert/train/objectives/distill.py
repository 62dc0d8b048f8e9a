"""``distill``: n-to-1 distillation of the teacher's embedding of the joined text, on pairs.

The merger's output for a row's chunk vectors should match the teacher's vector of the text
those chunks came from (:func:`distill_loss`), optionally plus :func:`chunk_contrastive_loss`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

import torch
import torch.nn.functional as F
from pydantic import Field

from vbert.errors import ConfigError

from .base import OBJECTIVES, Objective, ObjectiveOptions

if TYPE_CHECKING:
    from ..recipe import Stage

DistillKind = Literal["cosine", "mse", "cosine+mse", "cosine+l1"]
DISTILL_KINDS: tuple[str, ...] = get_args(DistillKind)


def distill_loss(
    pooled: torch.Tensor, target: torch.Tensor, kind: DistillKind = "cosine", aux_weight: float = 1.0
) -> torch.Tensor:
    """n-to-1 distillation loss between the merger's ``pooled`` output (B, d) and the teacher ``target`` (B, d).

    * ``cosine``: mean cosine distance ``1 - cos(pooled, target)`` (scale-free, the default);
    * ``mse``: mean squared Euclidean distance ``||pooled - target||²`` (also pulls the norm);
    * ``cosine+mse`` / ``cosine+l1``: cosine distance plus ``aux_weight`` times the squared
      distance / the mean absolute error over the dimensions.
    """
    if kind not in DISTILL_KINDS:
        raise ConfigError(f"unknown distillation loss {kind!r}; choose one of {DISTILL_KINDS}")
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
        raise ConfigError(f"temperature must be positive, got {temperature}")
    real = mask.bool()
    chunks = F.normalize(x[real].float(), dim=-1)  # (R, d): every real chunk of the batch
    owner = torch.arange(x.shape[0], device=x.device)[:, None].expand_as(real)[real]  # (R,)
    _, chunk_id = torch.unique(x[real].float(), dim=0, return_inverse=True)
    owns_id = torch.zeros(x.shape[0], int(chunk_id.max()) + 1, dtype=torch.bool, device=x.device)
    owns_id[owner, chunk_id] = True
    positive = owner[None, :] == torch.arange(x.shape[0], device=x.device)[:, None]  # (B, R)
    shared_copy = owns_id[:, chunk_id] & ~positive
    logits = F.normalize(pooled.float(), dim=-1) @ chunks.T / temperature  # (B, R)
    logits = logits.masked_fill(shared_copy, float("-inf"))
    positive_logits = logits.masked_fill(~positive, float("-inf"))
    return (torch.logsumexp(logits, dim=1) - torch.logsumexp(positive_logits, dim=1)).mean()


class DistillOptions(ObjectiveOptions):
    """Distillation loss (see :func:`distill_loss`) and the contrastive term's weight and temperature."""

    loss: DistillKind = "cosine"
    aux_weight: float = Field(1.0, ge=0.0)
    contrastive_weight: float = Field(0.0, ge=0.0)
    temperature: float = Field(0.05, gt=0.0)


@OBJECTIVES.register("distill")
class DistillObjective(Objective):
    """n-to-1 distillation step: :func:`distill_loss` plus an optional contrastive term."""

    Options = DistillOptions
    data_kind = "pairs"

    @classmethod
    def check_stage(cls, stage: Stage) -> None:
        if stage.max_length is not None:
            raise ValueError(
                f"stage {stage.name!r}: max_length would cut a pair's inputs so they no longer match its "
                "target; filter long pairs when building the dataset instead"
            )

    def forward(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor, target: torch.Tensor, seed: int
    ) -> dict[str, torch.Tensor]:
        options: DistillOptions = self.options
        pooled = self.merger(inputs, attention_mask=attention_mask).pooler_output
        distill = distill_loss(pooled, target, options.loss, options.aux_weight)
        metrics = {"distill": distill.detach()}
        loss = distill
        if options.contrastive_weight > 0:
            contrastive = chunk_contrastive_loss(pooled, inputs, attention_mask, options.temperature)
            loss = loss + options.contrastive_weight * contrastive
            metrics["contrastive"] = contrastive.detach()
        with torch.no_grad():
            metrics["train_cos"] = F.cosine_similarity(pooled.float(), target.float(), dim=-1).mean()
        return {"loss": loss, **metrics}
