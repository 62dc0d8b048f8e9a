"""vbert: embed long documents by merging cached chunk embeddings with a small Transformer.

Public API::

    import vbert
    embedder = vbert.load_embedder()            # offline multilingual-e5-small
    merger = vbert.load_merger("mean")          # or "default", or a trained folder
    encoder = vbert.LongDocumentEncoder(embedder, merger)
    vectors = encoder.encode(["a long document ...", "another one ..."])
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Imported eagerly so that `import vbert` registers the merger with transformers' Auto classes.
from vbert.model import SequenceMergerConfig, SequenceMergerModel

_EXPORTS = {
    "load_embedder": "vbert.embedders",
    "load_merger": "vbert.loading",
    "LongDocumentEncoder": "vbert.long_document",
    "MeanPoolMerger": "vbert.mergers",
    "TruncationBaseline": "vbert.mergers",
    "ChunkCache": "vbert.cache",
    "Index": "vbert.index",
}

__all__ = [
    "ChunkCache",
    "Index",
    "LongDocumentEncoder",
    "MeanPoolMerger",
    "SequenceMergerConfig",
    "SequenceMergerModel",
    "TruncationBaseline",
    "__version__",
    "load_embedder",
    "load_merger",
]

if TYPE_CHECKING:
    from vbert.cache import ChunkCache
    from vbert.embedders import load_embedder
    from vbert.index import Index
    from vbert.loading import load_merger
    from vbert.long_document import LongDocumentEncoder
    from vbert.mergers import MeanPoolMerger, TruncationBaseline


def __getattr__(name: str) -> object:
    # The rest loads on first use (the embedders pull in tokenizers and model loading code).
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vbert' has no attribute {name!r}")
