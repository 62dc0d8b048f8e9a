"""Training sequences of 16–128 chunk vectors, built from vectors already computed (issue 12).

The merger never saw more than 10 chunks in training; here the inputs are longer. From the chunk
sequences of many articles (an article-sequence dataset, or documents whose chunks are in the
chunk-vector store) two kinds of rows are made, with no embedding at all:

* ``article``: one article of at least ``min_length`` chunks, cropped to a window of a length
  drawn from [min_length, max_length] (the whole article when it is shorter);
* ``concat``: whole articles, taken in a seeded random order, joined until a drawn length is
  reached, the last one cut there. ``segment_starts`` records where each article begins, so
  objectives can tell which chunks came from which article.

Rows are written as one Parquet file with the column layout of the article-sequence dataset
(``embeddings`` + ``length``), which the trainer reads as ``sequences`` data, plus a JSON sidecar
holding the file's sha256 and the parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vbert.cache import ChunkCache, text_key
from vbert.data.article import Article
from vbert.data.datasets.articles import chunk_article
from vbert.data.datasets.columns import vector_sequence_column
from vbert.embedders.base import Embedder
from vbert.errors import DataError, IntegrityError
from vbert.files import atomic_path, atomic_write_json, read_json, sha256_file

SIDECAR_SUFFIX = ".json"


@dataclass(frozen=True)
class LongSequencePlan:
    min_length: int = 16
    max_length: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.min_length <= self.max_length:
            raise DataError(
                f"need 2 <= min_length <= max_length, got min_length={self.min_length}, "
                f"max_length={self.max_length}"
            )


@dataclass
class LongSequence:
    id: str
    kind: str  # "article" or "concat"
    vectors: np.ndarray  # (length, d) float32
    sources: list[str]  # article ids, in order
    segment_starts: list[int]  # index of each source's first chunk in ``vectors``


def stored_sequences(
    articles: Iterable[Article], embedder: Embedder, store: ChunkCache, chunk_tokens: int | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """``(id, (n, d) vectors)`` of each article whose every chunk is already in ``store``; nothing is embedded.

    Chunking is the builders' and the evaluation's (``embedder.split`` at ``chunk_tokens``, default
    the whole content window), so vectors computed by either are found. Articles with a chunk the
    store lacks are skipped.
    """
    size = chunk_tokens or embedder.content_window
    for article in articles:
        chunks, _ = chunk_article(embedder, article.text, size)
        if not chunks:
            continue
        found = store.get_many(embedder.fingerprint, chunks)
        if all(text_key(c) in found for c in chunks):
            yield article.id, np.stack([found[text_key(c)] for c in chunks])


def make_long_sequences(
    articles: Iterable[tuple[str, np.ndarray]], plan: LongSequencePlan = LongSequencePlan()
) -> list[LongSequence]:
    """``article`` rows for every long enough article, then ``concat`` rows using every article once."""
    items = [(str(i), np.asarray(v, dtype=np.float32)) for i, v in articles if len(v)]
    if not items:
        raise DataError("no article has any chunk vector: nothing to build long sequences from")
    rng = np.random.default_rng(plan.seed)
    rows: list[LongSequence] = []
    for article_id, vectors in items:
        if len(vectors) >= plan.min_length:
            length = min(len(vectors), int(rng.integers(plan.min_length, plan.max_length + 1)))
            start = int(rng.integers(0, len(vectors) - length + 1))
            rows.append(
                LongSequence(
                    f"article-{len(rows):06d}", "article", vectors[start : start + length], [article_id], [0]
                )
            )
    pending: list[tuple[str, np.ndarray]] = []
    target = int(rng.integers(plan.min_length, plan.max_length + 1))
    for index in rng.permutation(len(items)):
        pending.append(items[index])
        if sum(len(v) for _, v in pending) >= target:
            rows.append(_concat(f"concat-{len(rows):06d}", pending, target))
            pending, target = [], int(rng.integers(plan.min_length, plan.max_length + 1))
    return rows


def _concat(row_id: str, parts: list[tuple[str, np.ndarray]], length: int) -> LongSequence:
    starts = np.cumsum([0] + [len(v) for _, v in parts[:-1]]).tolist()
    vectors = np.concatenate([v for _, v in parts])[:length]
    return LongSequence(row_id, "concat", vectors, [i for i, _ in parts], [int(s) for s in starts])


def write_long_sequences(
    rows: Sequence[LongSequence],
    path: str | Path,
    plan: LongSequencePlan,
    dtype: str = "float16",
    **facts: object,
) -> dict:
    """Write ``rows`` to the Parquet file ``path`` and its sidecar ``path.json`` (sha256, plan, facts)."""
    if not rows:
        raise DataError("no long sequences to write")
    path = Path(path)
    dim = rows[0].vectors.shape[1]
    table = pa.table(
        {
            "id": pa.array([r.id for r in rows], pa.string()),
            "kind": pa.array([r.kind for r in rows], pa.string()),
            "sources": pa.array([r.sources for r in rows], pa.list_(pa.string())),
            "segment_starts": pa.array([r.segment_starts for r in rows], pa.list_(pa.int32())),
            "length": pa.array([len(r.vectors) for r in rows], pa.int32()),
            "embeddings": vector_sequence_column([r.vectors for r in rows], dim, dtype),
        }
    )
    lengths = np.array([len(r.vectors) for r in rows])
    sidecar = {
        "plan": asdict(plan),
        "dtype": dtype,
        "rows": len(rows),
        "rows_by_kind": {k: sum(r.kind == k for r in rows) for k in ("article", "concat")},
        "length_quartiles": np.percentile(lengths, [0, 25, 50, 75, 100]).astype(int).tolist(),
        **facts,
    }
    return write_checksummed_parquet(table, path, sidecar)


def write_checksummed_parquet(table: pa.Table, path: Path, facts: dict) -> dict:
    """Write ``table`` to ``path`` atomically and its sidecar ``path.json``: the file's name and sha256
    (what :func:`verify_long_sequences` checks), then ``facts``. Returns the sidecar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    sidecar = {"file": path.name, "sha256": sha256_file(path), **facts}
    atomic_write_json(Path(f"{path}{SIDECAR_SUFFIX}"), sidecar)
    return sidecar


def verify_long_sequences(path: str | Path) -> dict:
    """The sidecar of ``path``, after checking the file's sha256 against it."""
    path = Path(path)
    sidecar = read_json(Path(f"{path}{SIDECAR_SUFFIX}"))
    actual = sha256_file(path)
    if actual != sidecar["sha256"]:
        raise IntegrityError(f"{path} has sha256 {actual}, its sidecar says {sidecar['sha256']}: rebuild it")
    return sidecar
