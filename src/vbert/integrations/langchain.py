"""LangChain embeddings that embed whole long documents (needs ``vbert[langchain]``).

::

    from vbert.integrations.langchain import VbertEmbeddings
    store = InMemoryVectorStore.from_texts(long_texts, VbertEmbeddings())
    store.similarity_search("what does the report conclude?")

Documents of any length are chunked at the embedder's window, the chunks embedded through
the persistent chunk cache, and merged into one vector; queries are embedded with the
embedder's query prefix (see :func:`vbert.integrations._shared.encode_queries`).
"""

from __future__ import annotations

from vbert.integrations._shared import LockedEncoder, build_encoder, require

Embeddings = require("langchain_core.embeddings", "langchain").Embeddings


class VbertEmbeddings(Embeddings):
    """:class:`langchain_core.embeddings.Embeddings` backed by a :class:`vbert.LongDocumentEncoder`.

    Args:
        embedder: ``"default"`` (offline multilingual-e5-small), ``"minilm"``, a model folder,
            a hub id, or a loaded embedder.
        merger: ``"default"``, ``"mean"``, ``"mean-weighted"``, ``"truncation"``, a merger folder,
            or a loaded merger.
        cache: a :class:`vbert.ChunkCache`, a path to its SQLite file, ``None`` for the default
            location, or ``False`` for none.
        chunk_tokens: content tokens per chunk (default: the embedder's window).
        batch_size: chunks per embedder forward pass.
        encoder: an existing :class:`vbert.LongDocumentEncoder` (the other arguments are then unused).
    """

    def __init__(
        self,
        embedder: object = "default",
        merger: object = "default",
        *,
        cache: object = None,
        chunk_tokens: int | None = None,
        batch_size: int = 32,
        encoder: object = None,
    ) -> None:
        if encoder is None:
            encoder = build_encoder(
                embedder, merger, cache=cache, chunk_tokens=chunk_tokens, batch_size=batch_size
            )
        self._encoder = LockedEncoder(encoder)

    @property
    def encoder(self):
        """The :class:`vbert.LongDocumentEncoder` doing the work."""
        return self._encoder.encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One unit vector per document, whatever its length."""
        return self._encoder.documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """The query's unit vector (query prefix; a query longer than the window is chunked too)."""
        return self._encoder.queries([text])[0].tolist()

    def __repr__(self) -> str:
        return (
            f"VbertEmbeddings(embedder={self.encoder.embedder.name!r}, merger={self.encoder.merger.name!r})"
        )


__all__ = ["VbertEmbeddings"]
