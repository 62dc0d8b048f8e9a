"""Training of the merger: objectives, data, recipes and the resumable Accelerate trainer."""

from .data import BatchPlan, PairDataset, VectorSequenceDataset, bucketed_batches, open_dataset, pad_batch
from .heads import ContinuityHead, PretrainingHeads, VectorPredictionHead
from .objectives import (
    DistillObjective,
    VBertObjective,
    chunk_contrastive_loss,
    distill_loss,
    sample_mlm_mask,
    splice_false_histories,
    vmlm_loss,
    vnsp_loss,
)
from .recipe import Recipe, RecipeError, load_recipe, parse_recipe
from .trainer import RunFolderError, Trainer, TrainingInterrupted, train

__all__ = [
    "BatchPlan",
    "ContinuityHead",
    "DistillObjective",
    "PairDataset",
    "PretrainingHeads",
    "Recipe",
    "RecipeError",
    "RunFolderError",
    "Trainer",
    "TrainingInterrupted",
    "VBertObjective",
    "VectorPredictionHead",
    "VectorSequenceDataset",
    "bucketed_batches",
    "chunk_contrastive_loss",
    "distill_loss",
    "load_recipe",
    "open_dataset",
    "pad_batch",
    "parse_recipe",
    "sample_mlm_mask",
    "splice_false_histories",
    "train",
    "vmlm_loss",
    "vnsp_loss",
]
