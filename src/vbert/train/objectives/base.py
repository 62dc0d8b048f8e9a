"""What a training objective is, and the registry that lists them (:data:`OBJECTIVES`).

An objective is one file: an :class:`ObjectiveOptions` subclass (its recipe block), and an
:class:`Objective` subclass registered under its name, which declares its data kind and
computes the loss of a batch. A recipe stage names it (``objective: distill``) and may set
its options in a block of the same name (``distill: {loss: mse}``); the trainer does the
rest, without knowing which objectives exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from vbert.model import SequenceMergerModel
from vbert.registry import Registry

from ..batches import pad_batch
from ..data import DatasetKind, TrainingDataset, open_dataset

if TYPE_CHECKING:
    from pathlib import Path

    from ..recipe import Stage


class ObjectiveOptions(BaseModel):
    """An objective's recipe block: typed fields with defaults; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Objective(nn.Module):
    """One training objective: its options, its data, its loss.

    Subclasses set :attr:`Options` and :attr:`data_kind`, implement ``forward`` and register
    themselves: ``@OBJECTIVES.register("name")``. ``forward`` receives the collated batch as
    keyword arguments plus ``seed`` (the micro-batch's seed for random choices, see
    :func:`step_generator`) and returns a dict of scalar tensors: ``loss`` (what is optimised)
    and any metrics to log (averaged over the logging window).

    The class methods have defaults that fit most objectives; override them where one differs:
    :meth:`check_stage` (stage settings it cannot use), :meth:`open_data` and :meth:`collate`
    (a new kind of data), :meth:`build_extras` / :meth:`save_extras` / :meth:`load_extras`
    (trainable modules beyond the merger, such as vBERT's pre-training heads).
    """

    Options: ClassVar[type[ObjectiveOptions]] = ObjectiveOptions
    data_kind: ClassVar[DatasetKind | str] = "sequences"  # another kind: override open_data and collate

    def __init__(self, merger: SequenceMergerModel, options: ObjectiveOptions, extras: Any = None) -> None:
        super().__init__()
        self.merger = merger
        self.options = options

    @classmethod
    def check_stage(cls, stage: Stage) -> None:
        """Raise ``ValueError`` (with the stage's name) for stage settings this objective cannot use."""

    @classmethod
    def open_data(cls, spec: str, split: str) -> TrainingDataset:
        """The stage's dataset; it needs ``lengths`` (rows' chunk counts, for bucketing), ``dim``,
        ``fingerprint``, ``source``, ``metadata`` and items that :meth:`collate` accepts."""
        return open_dataset(spec, cls.data_kind, split)

    @classmethod
    def collate(
        cls, items: Sequence[dict[str, np.ndarray]], max_length: int | None
    ) -> dict[str, torch.Tensor]:
        """Items → the batch ``forward`` takes: tensors with the batch on the first axis."""
        return pad_batch(items, max_length)

    @classmethod
    def build_extras(cls, merger: SequenceMergerModel) -> nn.Module | None:
        """Trainable modules this objective adds to the merger, built once per run (before a checkpoint
        is loaded) and kept across its stages; passed to ``__init__`` as ``extras``. None: nothing."""
        return None

    @classmethod
    def save_extras(cls, extras: nn.Module, folder: Path) -> None:
        """Write ``extras`` into a checkpoint or stage folder (safetensors; never pickle)."""

    @classmethod
    def load_extras(cls, extras: nn.Module, folder: Path) -> None:
        """Read back what :meth:`save_extras` wrote."""


OBJECTIVES: Registry[type[Objective]] = Registry(
    "objective",
    builtins=(
        "vbert.train.objectives.vbert",
        "vbert.train.objectives.distill",
        "vbert.train.objectives.membership",
        "vbert.train.objectives.query_document",
    ),
)
"""Every objective a recipe stage can name; a ``package.module:Class`` spec works too."""


def step_generator(seed: int) -> torch.Generator:
    """A CPU generator for one micro-batch's random choices, seeded reproducibly."""
    return torch.Generator().manual_seed(seed)
