"""A toy objective: the whole of what adding one takes (docs/training.md, "Adding an objective").

``first-chunk``: a sequence's merged vector should point where its first chunk points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from vbert.train.objectives import OBJECTIVES, Objective, ObjectiveOptions


class FirstChunkOptions(ObjectiveOptions):
    weight: float = Field(1.0, gt=0.0)


@OBJECTIVES.register("first-chunk")
class FirstChunkObjective(Objective):
    """Loss = weight * (1 - cos(merged vector, first chunk)), on sequences of chunk vectors."""

    Options = FirstChunkOptions
    data_kind = "sequences"

    def forward(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor, seed: int
    ) -> dict[str, torch.Tensor]:
        pooled = self.merger(inputs, attention_mask=attention_mask).pooler_output  # (B, d)
        cosine = F.cosine_similarity(pooled.float(), inputs[:, 0].float(), dim=-1).mean()
        return {"loss": self.options.weight * (1.0 - cosine), "first_cos": cosine.detach()}
