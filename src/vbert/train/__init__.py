"""Training of the merger: objectives (a registry), data, recipes and the resumable Accelerate trainer."""

from .batches import BatchPlan, bucketed_batches, pad_batch, random_batches
from .data import PairDataset, VectorSequenceDataset, open_dataset
from .objectives import (
    OBJECTIVES,
    DistillObjective,
    Objective,
    ObjectiveOptions,
    VBertObjective,
    chunk_contrastive_loss,
    distill_loss,
)
from .recipe import Recipe, RecipeError, load_recipe, parse_recipe
from .run_folder import RunFolderError
from .signals import TrainingInterrupted
from .trainer import Trainer, train

__all__ = [
    "OBJECTIVES",
    "BatchPlan",
    "DistillObjective",
    "Objective",
    "ObjectiveOptions",
    "PairDataset",
    "Recipe",
    "RecipeError",
    "RunFolderError",
    "Trainer",
    "TrainingInterrupted",
    "VBertObjective",
    "VectorSequenceDataset",
    "bucketed_batches",
    "chunk_contrastive_loss",
    "distill_loss",
    "load_recipe",
    "open_dataset",
    "pad_batch",
    "parse_recipe",
    "random_batches",
    "train",
]
