"""LlamaIndex embeddings that embed whole long documents (needs ``vbert[llamaindex]``).

::

    from vbert.integrations.llamaindex import VbertEmbedding
    index = VectorStoreIndex(nodes=documents, embed_model=VbertEmbedding())
    index.as_retriever().retrieve("what does the report conclude?")

Texts of any length are chunked at the embedder's window, the chunks embedded through the
persistent chunk cache, and merged into one vector; queries get the embedder's query prefix
(see :func:`vbert.integrations._shared.encode_queries`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from vbert.integrations._shared import LockedEncoder, build_encoder, require

_base = require("llama_index.core.base.embeddings.base", "llamaindex")
_pydantic = require("llama_index.core.bridge.pydantic", "llamaindex")
BaseEmbedding = _base.BaseEmbedding


class VbertEmbedding(BaseEmbedding):
    """:class:`llama_index.core.base.embeddings.base.BaseEmbedding` backed by a :class:`vbert.LongDocumentEncoder`.

    Args:
        embedder: ``"default"`` (offline multilingual-e5-small), ``"minilm"``, a model folder,
            a hub id, or a loaded embedder.
        merger: ``"default"``, ``"mean"``, ``"mean-weighted"``, ``"truncation"``, a merger folder,
            or a loaded merger.
        cache: a :class:`vbert.ChunkCache`, a path to its SQLite file, ``None`` for the default
            location, or ``False`` for none.
        chunk_tokens: content tokens per chunk (default: the embedder's window).
        encoder: an existing :class:`vbert.LongDocumentEncoder` (the arguments above are then unused).
        **kwargs: BaseEmbedding fields (``embed_batch_size``, ``callback_manager``...).
    """

    _encoder: LockedEncoder = _pydantic.PrivateAttr()

    def __init__(
        self,
        embedder: object = "default",
        merger: object = "default",
        *,
        cache: object = None,
        chunk_tokens: int | None = None,
        encoder: object = None,
        **kwargs: Any,
    ) -> None:
        if encoder is None:
            encoder = build_encoder(embedder, merger, cache=cache, chunk_tokens=chunk_tokens)
        kwargs.setdefault("model_name", f"vbert/{encoder.embedder.name}+{encoder.merger.name}")
        super().__init__(**kwargs)
        self._encoder = LockedEncoder(encoder)

    @classmethod
    def class_name(cls) -> str:
        return "VbertEmbedding"

    @property
    def encoder(self):
        """The :class:`vbert.LongDocumentEncoder` doing the work."""
        return self._encoder.encoder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encoder.queries([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encoder.documents([text])[0].tolist()

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encoder.documents(texts).tolist()

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
