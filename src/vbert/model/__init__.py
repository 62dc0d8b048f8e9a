"""The vector sequence merger (vBERT), its configuration and its pre-training model, registered with
transformers' Auto classes."""

from transformers import AutoConfig, AutoModel, AutoModelForPreTraining

from .configuration_vbert import SequenceMergerConfig
from .modeling_vbert import SequenceMergerModel, paired_positional_encoding, sinusoid
from .pretraining_vbert import (
    ContinuityHead,
    PretrainingHeads,
    SequenceMergerForPreTraining,
    SequenceMergerForPreTrainingOutput,
    VectorPredictionHead,
    VMLMOutput,
    VNSPOutput,
    sample_mlm_mask,
    splice_false_histories,
)

AutoConfig.register(SequenceMergerConfig.model_type, SequenceMergerConfig, exist_ok=True)
AutoModel.register(SequenceMergerConfig, SequenceMergerModel, exist_ok=True)
AutoModelForPreTraining.register(SequenceMergerConfig, SequenceMergerForPreTraining, exist_ok=True)

__all__ = [
    "ContinuityHead",
    "PretrainingHeads",
    "SequenceMergerConfig",
    "SequenceMergerForPreTraining",
    "SequenceMergerForPreTrainingOutput",
    "SequenceMergerModel",
    "VMLMOutput",
    "VNSPOutput",
    "VectorPredictionHead",
    "paired_positional_encoding",
    "sample_mlm_mask",
    "sinusoid",
    "splice_false_histories",
]
