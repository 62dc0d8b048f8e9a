"""The article-sequence dataset: one row per article, its chunk embeddings in order.

Each article is cut by ``embedder.split`` into consecutive chunks of at most ``chunk_tokens``
content tokens (on token boundaries, no overlap, no sliding window); every chunk is embedded on
its own, and the whole article becomes ONE row holding the sequence of chunk vectors. This is
the input of self-supervised vBERT pre-training; vNSP draws a sequence's negatives from other
rows.

Defaults: 64-token chunks, and articles shorter than 512 tokens (which fit one base window and
need no merger) are left out. On the Debian corpus that keeps 9,871 of 28,995 documents, with a
median of 16 chunks and 91% of the sequences between 8 and 64 chunks (docs/data.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from vbert.data.article import Article
from vbert.data.datasets.build import (
    ArticleSlice,
    BuildResult,
    CommonOptions,
    sharded_build,
    split_outputs,
)
from vbert.data.datasets.card import DatasetCard
from vbert.data.datasets.columns import int_list_column, vector_sequence_column, vector_type
from vbert.data.datasets.distributed import ShardAssignment
from vbert.data.datasets.embedding import EmbeddingMeter
from vbert.data.datasets.shards import OutputTable
from vbert.embedders.base import Embedder

KIND = "article-sequences"
DEFAULT_CHUNK_TOKENS = 64
DEFAULT_MIN_TOKENS = 512

COLUMNS = {
    "id": "article id (stable across runs; the corpus's id)",
    "lang": "language code of the article",
    "title": "article title",
    "source": "corpus source (debian-handbook, wikipedia, files, ...)",
    "license": "license of the article text",
    "group": "id shared by translations of the same page ('' when none)",
    "split": "train / validation / test",
    "length": "number of chunks = length of `embeddings`",
    "n_tokens": "content tokens in the article (sum of `token_counts`)",
    "token_counts": "content tokens of each chunk (the last one is usually shorter)",
    "embeddings": "one unit vector per chunk, in article order",
}


def chunk_article(embedder: Embedder, text: str, chunk_tokens: int) -> tuple[list[str], list[int]]:
    """Cut ``text`` into chunks of at most ``chunk_tokens`` tokens and count each chunk's tokens.

    Token-less pieces (whitespace) are glued to a neighbour, so joined the chunks are the text.
    """
    pieces = embedder.split(text, chunk_tokens)
    counts = [embedder.count_tokens(p) for p in pieces]
    for piece, count in zip(pieces, counts, strict=True):
        if count > chunk_tokens:
            raise ValueError(
                f"embedder {embedder.name!r} split a text into a piece of {count} tokens, more than the "
                f"{chunk_tokens} asked for: its split() breaks the Embedder protocol ({piece[:60]!r}...)"
            )
    blank = [c == 0 for c in counts]
    chunks = merge_blank_pieces(pieces, blank)
    return chunks, [c for c in counts if c > 0]


def _schema(dim: int, dtype: str) -> pa.Schema:
    return pa.schema(
        [
            ("id", pa.string()),
            ("lang", pa.string()),
            ("title", pa.string()),
            ("source", pa.string()),
            ("license", pa.string()),
            ("group", pa.string()),
            ("split", pa.string()),
            ("length", pa.int32()),
            ("n_tokens", pa.int32()),
            ("token_counts", pa.list_(pa.int32())),
            ("embeddings", pa.list_(vector_type(dim, dtype))),
        ]
    )


def build_article_sequences(
    articles: Iterable[Article],
    embedder: Embedder,
    out_dir: str | Path,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    min_tokens: int = DEFAULT_MIN_TOKENS,
    options: CommonOptions | None = None,
    assignment: ShardAssignment | None = None,
) -> BuildResult:
    """Build (or finish) the article-sequence dataset in ``out_dir``.

    Args:
        articles: the corpus, streamed once, in a stable order.
        embedder: any object implementing :class:`vbert.embedders.base.Embedder`.
        out_dir: dataset folder; a finished or half-finished build with the same parameters is
            resumed, one with other parameters is refused unless ``options.overwrite``.
        chunk_tokens: content tokens per chunk (at most ``embedder.content_window``).
        min_tokens: leave out articles with fewer content tokens (0 keeps every non-empty one).
        options: shard size, batch size, dtype, seed, split rule (see :class:`CommonOptions`).
        assignment: this process's rank; read from the environment when None.
    """
    options = options or CommonOptions()
    if not 1 <= chunk_tokens <= embedder.content_window:
        raise ValueError(
            f"chunk_tokens={chunk_tokens} must be between 1 and the embedder's content window "
            f"({embedder.content_window} tokens for {embedder.name})"
        )
    if min_tokens < 0:
        raise ValueError(f"min_tokens must be >= 0, got {min_tokens}")
    dim = int(embedder.dim)
    schema = _schema(dim, options.dtype)

    def make_slice(piece: ArticleSlice, meter: EmbeddingMeter) -> tuple[list[OutputTable], dict[str, int]]:
        kept: list[tuple[Article, str, list[int]]] = []
        texts: list[str] = []
        lengths: list[int] = []
        for article, split in zip(piece.articles, piece.splits, strict=True):
            chunks, counts = chunk_article(embedder, article.text, chunk_tokens)
            if chunks and sum(counts) >= min_tokens:
                kept.append((article, split, counts))
                texts += chunks
                lengths += counts
        vectors = meter.embed(texts, lengths)
        sequences, start = [], 0
        for _, _, counts in kept:
            sequences.append(vectors[start : start + len(counts)])
            start += len(counts)
        columns: dict[str, Any] = {
            "id": [a.id for a, _, _ in kept],
            "lang": [a.lang for a, _, _ in kept],
            "title": [a.title for a, _, _ in kept],
            "source": [a.source for a, _, _ in kept],
            "license": [a.license for a, _, _ in kept],
            "group": [a.group for a, _, _ in kept],
            "split": [s for _, s, _ in kept],
            "length": [len(c) for _, _, c in kept],
            "n_tokens": [int(np.sum(c)) for _, _, c in kept],
            "token_counts": int_list_column([c for _, _, c in kept]),
            "embeddings": vector_sequence_column(sequences, dim, options.dtype),
        }
        stats = {
            "articles": len(piece.articles),
            "articles_left_out": len(piece.articles) - len(kept),
            "chunks": len(texts),
            "tokens": int(sum(lengths)),
        }
        return split_outputs(columns, columns["split"], schema, piece.index), stats

    return sharded_build(
        kind=KIND,
        articles=articles,
        embedder=embedder,
        out_dir=out_dir,
        params={
            "chunk_tokens": chunk_tokens,
            "min_tokens": min_tokens,
            "chunking": "embedder.split on token boundaries, no overlap",
        },
        options=options,
        assignment=assignment,
        make_slice=make_slice,
        card=DatasetCard(
            "vbert article sequences",
            f"One row per article of at least {min_tokens} tokens: the article cut into chunks of at most "
            f"{chunk_tokens} tokens, each chunk embedded on its own, the whole article as one sequence of "
            "chunk vectors.",
            COLUMNS,
        ),
    )


def merge_blank_pieces(pieces: Sequence[str], blank: Sequence[bool]) -> list[str]:
    """Glue pieces that hold no token (whitespace) onto their neighbour, so no text is lost.

    A blank piece joins the piece before it (the next one when it comes first); joined, the
    result still covers the whole text, and every piece keeps at least one token.
    """
    merged: list[str] = []
    leading = ""
    for piece, is_blank in zip(pieces, blank, strict=True):
        if is_blank:
            if merged:
                merged[-1] += piece
            else:
                leading += piece
        else:
            merged.append(leading + piece)
            leading = ""
    return merged
