"""``vbert``: pre-training with ``mlm_weight * vMLM + nsp_weight * vNSP`` on sequences of chunk vectors.

The losses, the masking and the heads are :class:`vbert.model.SequenceMergerForPreTraining`'s;
this file connects them to recipes and the trainer. The heads live for the whole run and are
saved as ``pretraining_heads.safetensors`` in checkpoints and in the folders of vbert stages.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from pydantic import Field
from safetensors.torch import load_file, save_file

from vbert.model import SequenceMergerForPreTraining, SequenceMergerModel

from .base import OBJECTIVES, Objective, ObjectiveOptions, step_generator

if TYPE_CHECKING:
    from ..recipe import Stage

HEADS_FILE = "pretraining_heads.safetensors"


class VBertOptions(ObjectiveOptions):
    """vBERT pre-training loss: ``mlm_weight * vMLM + nsp_weight * vNSP``."""

    mlm_weight: float = Field(1.0, ge=0.0)
    nsp_weight: float = Field(1.0, ge=0.0)
    mask_ratio: float = Field(0.15, gt=0.0, lt=1.0)
    detach_target: bool = True
    representation: Literal["pooled", "cls"] = "pooled"


@OBJECTIVES.register("vbert")
class VBertObjective(Objective):
    """vMLM (self-consistent vector reconstruction) plus vNSP (continuity classification)."""

    Options = VBertOptions
    data_kind = "sequences"

    def __init__(
        self, merger: SequenceMergerModel, options: VBertOptions, extras: SequenceMergerForPreTraining
    ) -> None:
        super().__init__(merger, options)
        self.pretraining = extras

    @classmethod
    def check_stage(cls, stage: Stage) -> None:
        if stage.batch_size < 2:
            raise ValueError(
                f"stage {stage.name!r}: vNSP takes false histories from other rows: batch_size >= 2"
            )

    @classmethod
    def build_extras(cls, merger: SequenceMergerModel) -> SequenceMergerForPreTraining:
        return SequenceMergerForPreTraining.from_merger(merger)

    @classmethod
    def save_extras(cls, extras: SequenceMergerForPreTraining, folder: Path) -> None:
        state = {key: value.detach().cpu().contiguous() for key, value in extras.heads.state_dict().items()}
        save_file(state, str(folder / HEADS_FILE), metadata={"d_model": str(extras.config.d_model)})

    @classmethod
    def load_extras(cls, extras: SequenceMergerForPreTraining, folder: Path) -> None:
        path = folder / HEADS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: the folder holds no vBERT pre-training heads")
        extras.heads.load_state_dict(load_file(str(path)))

    def forward(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor, seed: int
    ) -> dict[str, torch.Tensor]:
        options: VBertOptions = self.options
        out = self.pretraining(
            inputs,
            attention_mask,
            step_generator(seed),
            mlm_weight=options.mlm_weight,
            nsp_weight=options.nsp_weight,
            mask_ratio=options.mask_ratio,
            detach_target=options.detach_target,
            representation=options.representation,
        )
        return {
            "loss": out.loss,
            "vmlm": out.vmlm_loss.detach(),
            "vnsp": out.vnsp_loss.detach(),
            "vnsp_acc": out.vnsp_accuracy,
            "cls_std": out.cls_std,
        }
