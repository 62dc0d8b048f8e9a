"""The atomic ("512-to-1") distillation dataset: single-token vectors in, span vectors out.

Each article is cut by ``embedder.split`` into windows of at most ``window_tokens`` tokens
(the embedder's content window by default: 508 for multilingual-e5-small with its
``"passage: "`` prefix), and each window into its tokens:

* with the embedder's Hugging Face fast tokenizer (``embedder.tokenizer``, as
  :class:`vbert.embedders.TransformersEmbedder` has), the window's token ids and character
  offsets; a token's single-token text is ``tokenizer.decode([id])``, so the same id always
  gives the same text and the same vector. Tokens whose text is only whitespace (XLM-R's lone
  ``"▁"`` before CJK characters and symbols) carry nothing to embed and are not inputs;
* otherwise ``embedder.split(window, 1)`` pieces (a whitespace-only piece stays in the span
  texts but is not an input).

Every distinct token is embedded ONCE, on its own (a one-token text with the document prefix),
into the dataset's token table ``tokens/tokens-*.parquet``. Pairs store their inputs as
``token_rows`` (rows of that table) rather than copies of the vectors: a pair holds up to ~500
tokens, so copies would make the dataset about a hundred times larger.
:func:`vbert.data.datasets.load_pairs` puts the vectors back.

Which spans (start, length) of a window of n input tokens become pairs, by :func:`atomic_spans`:

* prefixes: ``[0, L)`` for L = ``min_span``, 2·``min_span``, 4·``min_span``, ... below n, and
  ``[0, n)`` (the whole window);
* a binary tree: for level = 1..``tree_depth``, the window cut into 2**level near-equal parts
  ``[j·n // 2**level, (j+1)·n // 2**level)``;

spans shorter than ``min_span`` tokens are skipped and each (start, length) is taken once. A
span's target is the embedding of the window's text from its first token's start to its last
token's end. With n = 508, ``min_span`` = 2 and ``tree_depth`` = 4 that is 9 prefixes + 30 tree
spans = 39 pairs per full window; the targets cost about 6·n tokens of embedding per window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from vbert.data.article import Article
from vbert.data.datasets.build import (
    ArticleSlice,
    BuildResult,
    CommonOptions,
    UnitMaker,
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
    vector_type,
)
from vbert.data.datasets.distributed import ShardAssignment
from vbert.data.datasets.embedding import EmbeddingMeter, fitting_targets
from vbert.data.datasets.shards import OutputTable
from vbert.data.errors import DatasetError
from vbert.embedders.base import Embedder

KIND = "atomic"
DEFAULT_TREE_DEPTH = 4
DEFAULT_MIN_SPAN = 2
DEFAULT_TOKENS_PER_SHARD = 8192
TOKENS_SPLIT = "tokens"
NO_TOKEN_ID = -1  # token table rows of embedders without a tokenizer (keyed by their split pieces)

TokenKey = tuple[int, str]  # (tokenizer id or NO_TOKEN_ID, the token's single-token text)

PAIR_COLUMNS = {
    **PROVENANCE_DOCS,
    "window": "index of the window in the article",
    "start": "index of the span's first token in the window",
    "length": "tokens in the span = length of `token_rows`",
    "span": "`prefix` or `tree`",
    "level": "tree level (1 = halves, 2 = quarters, ...); 0 for prefixes",
    "token_rows": "rows of the token table (`tokens/`) whose vectors are the inputs, in order",
    "target_tokens": "content tokens of the span's text when tokenised as a whole",
    "target": "the embedder's vector of the span's text",
}
TOKEN_COLUMNS = {
    "row": "row number, referenced by `token_rows`",
    "token_id": f"the tokenizer's id of the token ({NO_TOKEN_ID} for embedders without a tokenizer)",
    "token": "the token's text on its own (what was embedded)",
    "embedding": "the embedder's vector of the token on its own",
}


def atomic_spans(
    n_tokens: int, tree_depth: int = DEFAULT_TREE_DEPTH, min_span: int = DEFAULT_MIN_SPAN
) -> list[tuple]:
    """The (start, length, kind, level) spans taken from a window of ``n_tokens`` tokens (see module doc)."""
    spans: dict[tuple[int, int], tuple[int, int, str, int]] = {}
    length = min_span
    while length < n_tokens:
        spans.setdefault((0, length), (0, length, "prefix", 0))
        length *= 2
    if n_tokens >= min_span:
        spans.setdefault((0, n_tokens), (0, n_tokens, "prefix", 0))
    for level in range(1, tree_depth + 1):
        parts = 2**level
        bounds = [j * n_tokens // parts for j in range(parts + 1)]
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            if end - start >= min_span:
                spans.setdefault((start, end - start), (start, end - start, "tree", level))
    return list(spans.values())


@dataclass(frozen=True)
class WindowTokens:
    """One window of an article: its text and its input tokens with their character spans in it."""

    text: str
    keys: list[TokenKey]
    starts: list[int]
    ends: list[int]

    def span_text(self, start: int, length: int) -> str:
        """The window's text from token ``start``'s first character to token ``start+length-1``'s last."""
        return self.text[self.starts[start] : self.ends[start + length - 1]]


class SingleTokens:
    """Cuts texts into windows of single tokens with an embedder (see the module doc for how)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        tokenizer = getattr(embedder, "tokenizer", None)
        self._tokenizer = tokenizer if getattr(tokenizer, "is_fast", False) else None
        self.method = "tokenizer" if self._tokenizer is not None else "split"
        self._decoded: dict[int, str] = {}

    def windows(self, text: str, window_tokens: int) -> list[WindowTokens]:
        result = []
        for window in self.embedder.split(text, window_tokens):
            if not window.strip():
                continue
            tokens = self._tokens(window) if self._tokenizer is not None else self._pieces(window)
            if tokens.keys:
                result.append(tokens)
        return result

    def _decode(self, token_id: int) -> str:
        text = self._decoded.get(token_id)
        if text is None:
            text = self._decoded[token_id] = self._tokenizer.decode([token_id])
        return text

    def _tokens(self, window: str) -> WindowTokens:
        encoding = self._tokenizer(window, add_special_tokens=False, return_offsets_mapping=True)
        keys, starts, ends = [], [], []
        for token_id, (start, end) in zip(encoding["input_ids"], encoding["offset_mapping"], strict=True):
            piece = self._decode(token_id)
            if piece.strip():
                keys.append((int(token_id), piece))
                starts.append(start)
                ends.append(end)
        return WindowTokens(window, keys, starts, ends)

    def _pieces(self, window: str) -> WindowTokens:
        try:
            pieces = self.embedder.split(window, 1)
        except ValueError as err:
            raise DatasetError(
                f"the atomic dataset needs single tokens, but embedder {self.embedder.name!r} has no Hugging Face "
                f"fast tokenizer (.tokenizer) and its split(text, 1) fails: {err}"
            ) from err
        keys, starts, ends = [], [], []
        position = 0
        for piece in pieces:
            start = window.find(piece, position)
            if start < 0:
                raise DatasetError(
                    f"embedder {self.embedder.name!r} split() returned {piece!r}, which is not the next slice of "
                    "the text: its split() breaks the Embedder protocol"
                )
            position = start + len(piece)
            if piece.strip():
                keys.append((NO_TOKEN_ID, piece))
                starts.append(start)
                ends.append(position)
        return WindowTokens(window, keys, starts, ends)


def _reusable(
    articles: Iterable[Article] | Callable[[], Iterable[Article]],
) -> Callable[[], Iterable[Article]]:
    if callable(articles):
        return articles
    if iter(articles) is articles:
        raise TypeError(
            "the atomic build reads the corpus twice (once to collect the distinct tokens, once to make pairs): "
            "pass a list or a function that returns a fresh iterator, not a one-shot iterator"
        )
    return lambda: articles


def collect_vocabulary(
    articles: Iterable[Article], tokens: SingleTokens, window_tokens: int
) -> list[TokenKey]:
    """Every distinct token of the corpus, sorted by (id, text): the token table's rows, in order."""
    seen: set[TokenKey] = set()
    for article in articles:
        for window in tokens.windows(article.text, window_tokens):
            seen.update(window.keys)
    return sorted(seen)


def _pair_schema(dim: int, dtype: str) -> pa.Schema:
    return pa.schema(
        [
            *PROVENANCE_FIELDS,
            ("window", pa.int32()),
            ("start", pa.int32()),
            ("length", pa.int32()),
            ("span", pa.string()),
            ("level", pa.int32()),
            ("token_rows", pa.list_(pa.int32())),
            ("target_tokens", pa.int32()),
            ("target", vector_type(dim, dtype)),
        ]
    )


def build_atomic(
    articles: Iterable[Article] | Callable[[], Iterable[Article]],
    embedder: Embedder,
    out_dir: str | Path,
    window_tokens: int | None = None,
    tree_depth: int = DEFAULT_TREE_DEPTH,
    min_span: int = DEFAULT_MIN_SPAN,
    tokens_per_shard: int = DEFAULT_TOKENS_PER_SHARD,
    options: CommonOptions | None = None,
    assignment: ShardAssignment | None = None,
) -> BuildResult:
    """Build (or finish) the atomic dataset: the token table and the span pairs.

    Args:
        articles: the corpus, or a function returning a fresh iterator over it; it is read twice.
        window_tokens: window size in tokens; the embedder's content window when None.
        tree_depth: deepest level of the span tree (level k cuts the window into 2**k parts).
        min_span: shortest span taken, in tokens (>= 2: a one-token span is its own input).
        tokens_per_shard: rows per token-table shard.
        embedder, out_dir, options, assignment: as for :func:`build_article_sequences`.
    """
    options = options or CommonOptions()
    corpus = _reusable(articles)
    limit = int(embedder.content_window)
    window_tokens = limit if window_tokens is None else window_tokens
    if not 2 <= window_tokens <= limit:
        raise ValueError(
            f"window_tokens={window_tokens} must be between 2 and the embedder's content window ({limit} tokens "
            f"for {embedder.name})"
        )
    if min_span < 2:
        raise ValueError(f"min_span must be >= 2 (a one-token span is its own input), got {min_span}")
    if tree_depth < 0:
        raise ValueError(f"tree_depth must be >= 0, got {tree_depth}")
    if tokens_per_shard < 1:
        raise ValueError(f"tokens_per_shard must be >= 1, got {tokens_per_shard}")
    dim = int(embedder.dim)
    schema = _pair_schema(dim, options.dtype)
    tokens = SingleTokens(embedder)
    vocabulary = collect_vocabulary(corpus(), tokens, window_tokens)
    row_of = {key: row for row, key in enumerate(vocabulary)}
    vocabulary_sha = hashlib.sha256(
        "\x00".join(f"{token_id}\x01{text}" for token_id, text in vocabulary).encode("utf-8")
    ).hexdigest()

    def token_units(meter: EmbeddingMeter) -> list[tuple[str, str, UnitMaker]]:
        units = []
        for shard, first in enumerate(range(0, len(vocabulary), tokens_per_shard)):
            keys = vocabulary[first : first + tokens_per_shard]
            digest = hashlib.sha256(repr((first, keys)).encode("utf-8")).hexdigest()

            def make(shard: int = shard, first: int = first, keys: list[TokenKey] = keys) -> Any:
                vectors = meter.embed([text for _, text in keys], [1] * len(keys))
                table = pa.table(
                    {
                        "row": pa.array(range(first, first + len(keys)), type=pa.int32()),
                        "token_id": pa.array([token_id for token_id, _ in keys], type=pa.int64()),
                        "token": pa.array([text for _, text in keys], type=pa.string()),
                        "embedding": vector_column(vectors, options.dtype),
                    }
                )
                path = f"tokens/tokens-{shard:05d}.parquet"
                return [OutputTable(path, TOKENS_SPLIT, table)], {"tokens": len(keys)}

            units.append((f"tokens-{shard:05d}", digest, make))
        return units

    def make_slice(piece: ArticleSlice, meter: EmbeddingMeter) -> tuple[list[OutputTable], dict[str, int]]:
        rows: list[tuple[Article, str, int, tuple, list[int], str]] = []
        windows_seen = 0
        for article, split in zip(piece.articles, piece.splits, strict=True):
            for index, window in enumerate(tokens.windows(article.text, window_tokens)):
                windows_seen += 1
                token_rows = [row_of[key] for key in window.keys]
                for span in atomic_spans(len(token_rows), tree_depth, min_span):
                    start, length = span[0], span[1]
                    text = window.span_text(start, length)
                    rows.append((article, split, index, span, token_rows[start : start + length], text))
        rows, target_lengths, dropped = fitting_targets(embedder, rows, [r[5] for r in rows])
        targets = meter.embed([r[5] for r in rows], target_lengths)
        columns: dict[str, Any] = {
            **provenance_columns([r[0] for r in rows], [r[1] for r in rows]),
            "window": [r[2] for r in rows],
            "start": [r[3][0] for r in rows],
            "length": [r[3][1] for r in rows],
            "span": [r[3][2] for r in rows],
            "level": [r[3][3] for r in rows],
            "token_rows": int_list_column([r[4] for r in rows]),
            "target_tokens": target_lengths,
            "target": vector_column(targets.reshape(-1, dim), options.dtype),
        }
        stats = {
            "articles": len(piece.articles),
            "windows": windows_seen,
            "pairs": len(rows),
            "spans_over_content_window": dropped,
            "target_tokens": int(sum(target_lengths)),
        }
        return split_outputs(columns, columns["split"], schema, piece.index), stats

    card = DatasetCard(
        "vbert atomic (512-to-1) pairs",
        f"One row per span of a window of at most {window_tokens} tokens: prefixes and a depth-{tree_depth} "
        "binary tree of sub-spans. Inputs are single-token vectors, stored as `token_rows` into the `tokens` "
        "config (every distinct token embedded once, on its own); `target` is the span text's vector.\n\n"
        "Token table columns: " + "; ".join(f"`{k}`: {v}" for k, v in TOKEN_COLUMNS.items()),
        PAIR_COLUMNS,
        {"tokens": "tokens/tokens-*.parquet"},
    )

    params = {
        "window_tokens": window_tokens,
        "tree_depth": tree_depth,
        "min_span": min_span,
        "tokens_per_shard": tokens_per_shard,
        "tokenization": tokens.method,
        "spans": "prefixes of min_span*2**k tokens and the whole window, plus binary-tree parts of levels 1..tree_depth",
    }
    return sharded_build(
        kind=KIND,
        articles=corpus(),
        embedder=embedder,
        out_dir=out_dir,
        params=params,
        options=options,
        assignment=assignment,
        make_slice=make_slice,
        card=card,
        leading_units=token_units,
        slice_salt=vocabulary_sha,
        manifest_extra={"vocabulary": {"size": len(vocabulary), "sha256": vocabulary_sha}},
    )
