"""The vector sequence merger (vBERT) and its configuration, registered with transformers' Auto classes."""

from transformers import AutoConfig, AutoModel

from .configuration_vbert import SequenceMergerConfig
from .modeling_vbert import SequenceMergerModel, paired_positional_encoding, sinusoid

AutoConfig.register(SequenceMergerConfig.model_type, SequenceMergerConfig, exist_ok=True)
AutoModel.register(SequenceMergerConfig, SequenceMergerModel, exist_ok=True)

__all__ = ["SequenceMergerConfig", "SequenceMergerModel", "paired_positional_encoding", "sinusoid"]
