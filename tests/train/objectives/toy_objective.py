"""A toy objective: the whole of what adding one takes (docs/training.md, "Adding an objective").

``target-norm``: the merged vectors should have the length the recipe asks for.
"""

from __future__ import annotations

import torch
from pydantic import Field

from vbert.train.objectives import OBJECTIVES, Objective, ObjectiveOptions


class TargetNormOptions(ObjectiveOptions):
    norm: float = Field(1.0, gt=0.0)


@OBJECTIVES.register("target-norm")
class TargetNormObjective(Objective):
    """Loss = mean of (‖merged vector‖ − norm)², on sequences of chunk vectors."""

    Options = TargetNormOptions
    data_kind = "sequences"

    def forward(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor, seed: int
    ) -> dict[str, torch.Tensor]:
        pooled = self.merger(inputs, attention_mask=attention_mask).pooler_output  # (B, d)
        norms = pooled.float().norm(dim=-1)  # (B,)
        return {"loss": (norms - self.options.norm).pow(2).mean(), "norm": norms.mean().detach()}
