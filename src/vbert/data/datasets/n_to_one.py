"""The N-to-1 distillation dataset ("10-to-1"): a few chunk vectors in, one window vector out.

Each article is cut into consecutive chunks of at most ``chunk_tokens`` tokens (50 by
default), and every chunk is embedded once. Windows of ``min_chunks``..``max_chunks``
consecutive chunks (2..10) become pairs: input = the window's chunk vectors (shared by every
window that contains the chunk, never re-embedded), target = the embedding of the window's
text, which fits the base window by construction (``max_chunks * chunk_tokens`` must not exceed
``embedder.content_window``; a window whose joined text re-tokenises past it is dropped).

Which windows (``windows="tiled"``, the default): for each size k, a tiling of the article by
non-overlapping k-chunk windows whose start offset is drawn in [0, k) from a generator seeded by
(seed, article id); an article too short for one full tiling window gets one window at a seeded
start. So each chunk is in about one window of every size. When the article gives more than
``max_windows_per_article`` windows, that many are drawn uniformly without replacement from the
same generator. ``windows="all"`` takes every window of every size instead (then capped the
same way). Windows are stored in (start, size) order.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from vbert.data.article import Article
from vbert.data.datasets.articles import chunk_article
from vbert.data.datasets.build import (
    ArticleSlice,
    BuildResult,
    CommonOptions,
    seeded_rng,
    sharded_build,
    split_outputs,
)
from vbert.data.datasets.card import DatasetCard
from vbert.data.datasets.columns import (
    PROVENANCE_DOCS,
    PROVENANCE_FIELDS,
    int_list_column,
    provenance_columns,
    vector_column,
    vector_sequence_column,
    vector_type,
)
from vbert.data.datasets.distributed import ShardAssignment
from vbert.data.datasets.embedding import EmbeddingMeter, fitting_targets
from vbert.data.datasets.shards import OutputTable
from vbert.embedders.base import Embedder

KIND = "n-to-1"
DEFAULT_CHUNK_TOKENS = 50
DEFAULT_MAX_CHUNKS = 10
DEFAULT_MIN_CHUNKS = 2
DEFAULT_MAX_WINDOWS_PER_ARTICLE = 32
WINDOW_MODES = ("tiled", "all")

PAIR_COLUMNS = {
    **PROVENANCE_DOCS,
    "start": "index of the window's first chunk in the article",
    "length": "number of chunks in the window = length of `inputs`",
    "input_tokens": "content tokens of each input chunk",
    "target_tokens": "content tokens of the window's text (<= the embedder's content window)",
    "inputs": "the window's chunk vectors, in order",
    "target": "the embedder's vector of the window's whole text",
}


def select_windows(
    n_chunks: int,
    min_chunks: int,
    max_chunks: int,
    max_windows: int,
    rng: np.random.Generator,
    mode: str = "tiled",
) -> list[tuple[int, int]]:
    """The (start, size) windows taken from an article of ``n_chunks`` chunks (see the module doc)."""
    if mode not in WINDOW_MODES:
        raise ValueError(f"windows must be one of {WINDOW_MODES}, got {mode!r}")
    windows: list[tuple[int, int]] = []
    for size in range(min_chunks, min(max_chunks, n_chunks) + 1):
        if mode == "all":
            windows += [(start, size) for start in range(n_chunks - size + 1)]
            continue
        offset = int(rng.integers(0, size))
        starts = list(range(offset, n_chunks - size + 1, size))
        if not starts:
            starts = [int(rng.integers(0, n_chunks - size + 1))]
        windows += [(start, size) for start in starts]
    if max_windows and len(windows) > max_windows:
        keep = rng.choice(len(windows), size=max_windows, replace=False)
        windows = [windows[i] for i in keep]
    return sorted(windows)


def _schema(dim: int, dtype: str) -> pa.Schema:
    return pa.schema(
        [
            *PROVENANCE_FIELDS,
            ("start", pa.int32()),
            ("length", pa.int32()),
            ("input_tokens", pa.list_(pa.int32())),
            ("target_tokens", pa.int32()),
            ("inputs", pa.list_(vector_type(dim, dtype))),
            ("target", vector_type(dim, dtype)),
        ]
    )


def build_n_to_one(
    articles: Iterable[Article],
    embedder: Embedder,
    out_dir: str | Path,
    max_chunks: int = DEFAULT_MAX_CHUNKS,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    min_chunks: int = DEFAULT_MIN_CHUNKS,
    max_windows_per_article: int = DEFAULT_MAX_WINDOWS_PER_ARTICLE,
    windows: str = "tiled",
    options: CommonOptions | None = None,
    assignment: ShardAssignment | None = None,
) -> BuildResult:
    """Build (or finish) the N-to-1 dataset in ``out_dir``; one row per (window, target) pair.

    Args:
        max_chunks: largest window, in chunks (10 for "10-to-1").
        chunk_tokens: content tokens per chunk.
        min_chunks: smallest window, in chunks (>= 1; 1 gives trivial one-chunk pairs).
        max_windows_per_article: cap on windows per article, drawn with the seed; 0 = no cap.
        windows: ``"tiled"`` (default) or ``"all"``, see the module doc.
        articles, embedder, out_dir, options, assignment: as for :func:`build_article_sequences`.
    """
    options = options or CommonOptions()
    if windows not in WINDOW_MODES:
        raise ValueError(f"windows must be one of {WINDOW_MODES}, got {windows!r}")
    if not 1 <= min_chunks <= max_chunks:
        raise ValueError(
            f"need 1 <= min_chunks <= max_chunks, got min_chunks={min_chunks}, max_chunks={max_chunks}"
        )
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
    if max_windows_per_article < 0:
        raise ValueError(f"max_windows_per_article must be >= 0 (0 = no cap), got {max_windows_per_article}")
    window_limit = int(embedder.content_window)
    if max_chunks * chunk_tokens > window_limit:
        raise ValueError(
            f"{max_chunks} chunks of {chunk_tokens} tokens ({max_chunks * chunk_tokens}) do not fit the "
            f"embedder's content window of {window_limit} tokens, so targets would be truncated: lower "
            f"--max-chunks or --chunk-tokens (e.g. --chunk-tokens {window_limit // max_chunks})"
        )
    dim = int(embedder.dim)
    schema = _schema(dim, options.dtype)

    def make_slice(piece: ArticleSlice, meter: EmbeddingMeter) -> tuple[list[OutputTable], dict[str, int]]:
        chunk_texts: list[str] = []
        chunk_lengths: list[int] = []
        pairs: list[
            tuple[Article, str, int, int, int, str]
        ] = []  # article, split, first chunk, start, size, text
        for article, split in zip(piece.articles, piece.splits, strict=True):
            chunks, counts = chunk_article(embedder, article.text, chunk_tokens)
            rng = seeded_rng(options.seed, article.id)
            first = len(chunk_texts)
            chunk_texts += chunks
            chunk_lengths += counts
            for start, size in select_windows(
                len(chunks), min_chunks, max_chunks, max_windows_per_article, rng, windows
            ):
                text = "".join(chunks[start : start + size])
                pairs.append((article, split, first, start, size, text))
        pairs, target_lengths, dropped = fitting_targets(embedder, pairs, [p[5] for p in pairs])
        vectors = meter.embed(chunk_texts + [p[5] for p in pairs], chunk_lengths + target_lengths)
        chunk_vectors, targets = vectors[: len(chunk_texts)], vectors[len(chunk_texts) :]
        inputs = [
            chunk_vectors[first + start : first + start + size] for _, _, first, start, size, _ in pairs
        ]
        columns: dict[str, Any] = {
            **provenance_columns([p[0] for p in pairs], [p[1] for p in pairs]),
            "start": [p[3] for p in pairs],
            "length": [p[4] for p in pairs],
            "input_tokens": int_list_column(
                [chunk_lengths[first + start : first + start + size] for _, _, first, start, size, _ in pairs]
            ),
            "target_tokens": target_lengths,
            "inputs": vector_sequence_column(inputs, dim, options.dtype),
            "target": vector_column(targets.reshape(-1, dim), options.dtype),
        }
        stats = {
            "articles": len(piece.articles),
            "chunks": len(chunk_texts),
            "pairs": len(pairs),
            "windows_over_content_window": dropped,
            "target_tokens": int(sum(target_lengths)),
        }
        return split_outputs(columns, columns["split"], schema, piece.index), stats

    card = DatasetCard(
        f"vbert {max_chunks}-to-1 pairs",
        f"One row per window of {min_chunks}..{max_chunks} consecutive chunks of at most {chunk_tokens} tokens: "
        "`inputs` are the chunk vectors, `target` is the embedding of the window's text.",
        PAIR_COLUMNS,
    )

    params = {
        "chunk_tokens": chunk_tokens,
        "min_chunks": min_chunks,
        "max_chunks": max_chunks,
        "windows": windows,
        "max_windows_per_article": max_windows_per_article,
        "chunking": "embedder.split on token boundaries, no overlap",
    }
    return sharded_build(
        kind=KIND,
        articles=articles,
        embedder=embedder,
        out_dir=out_dir,
        params=params,
        options=options,
        assignment=assignment,
        make_slice=make_slice,
        card=card,
    )
