"""``membership``: a merged vector of a long sequence must keep every chunk findable (issue 12).

On sequences of chunk vectors (e.g. the 16–128-chunk rows of :mod:`vbert.data.long_sequences`):

* in-batch: the merged vector picks its own chunks over the batch's other chunks
  (:func:`chunk_contrastive_loss`), and each chunk picks its own sequence's merged vector
  (:func:`chunk_to_sequence_loss`) — the retrieval direction;
* prefixes: K prefixes of each sequence are merged (one pass over B·K masked copies); Top-Down and
  Bottom-Up membership inside the sequence (:func:`prefix_membership_loss`);
* anchor: 1 − cos(merged, mean of the chunks), which keeps merged vectors in the embedder's space
  (membership terms alone pull them out of it: ``long-lengths.md``).

Each term's weight is an option; a zero weight skips its computation.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..long_losses import (
    anchor_to_mean,
    chunk_to_sequence_loss,
    owners_of_chunks,
    prefix_masks,
    prefix_membership_loss,
)
from ..long_losses import sample_prefix_lengths as draw_prefixes
from .base import OBJECTIVES, Objective, ObjectiveOptions, step_generator
from .distill import chunk_contrastive_loss


class MembershipOptions(ObjectiveOptions):
    in_batch_weight: float = Field(1.0, ge=0.0)
    prefix_weight: float = Field(1.0, ge=0.0)
    anchor_weight: float = Field(10.0, ge=0.0)
    prefixes: int = Field(4, ge=1)
    temperature: float = Field(0.05, gt=0.0)


@OBJECTIVES.register("membership")
class MembershipObjective(Objective):
    """In-batch and prefix membership contrastive terms plus an anchor to the chunks' mean."""

    Options = MembershipOptions
    data_kind = "sequences"

    def forward(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor, seed: int
    ) -> dict[str, torch.Tensor]:
        options: MembershipOptions = self.options
        pooled = self.merger(inputs, attention_mask=attention_mask).pooler_output  # (B, d)
        loss = pooled.sum() * 0.0
        metrics: dict[str, torch.Tensor] = {}
        if options.in_batch_weight > 0:
            chunks, owners = owners_of_chunks(inputs, attention_mask)
            in_batch = 0.5 * (
                chunk_contrastive_loss(pooled, inputs, attention_mask, options.temperature)
                + chunk_to_sequence_loss(chunks, pooled, owners, options.temperature)
            )
            loss = loss + options.in_batch_weight * in_batch
            metrics["in_batch"] = in_batch.detach()
        if options.prefix_weight > 0:
            b, k = inputs.shape[0], options.prefixes
            lengths = draw_prefixes(attention_mask.sum(dim=1), k, step_generator(seed))  # (B, K)
            flat = self.merger(
                inputs.repeat_interleave(k, dim=0), attention_mask=prefix_masks(attention_mask, lengths)
            ).pooler_output  # (B·K, d)
            terms = prefix_membership_loss(
                flat.reshape(b, k, -1), lengths, inputs, attention_mask, options.temperature
            )
            loss = loss + options.prefix_weight * (terms["top_down"] + terms["bottom_up"])
            metrics.update({name: value.detach() for name, value in terms.items()})
        anchor = anchor_to_mean(pooled, inputs, attention_mask)
        if options.anchor_weight > 0:
            loss = loss + options.anchor_weight * anchor
        metrics["anchor_cos"] = (1.0 - anchor).detach()
        return {"loss": loss, **metrics}
