"""Documents with their search queries, as stored vectors: the data of query→document training (issue 12).

Each row is one long document: its chunk vectors (``embeddings``, chunked like
:func:`vbert.data.long_sequences.stored_sequences` and the evaluations, so vectors already in the
chunk-vector store are reused) and the vectors of the queries that must find it (``queries``,
embedded with the embedder's query prefix and cached apart, see
:func:`vbert.chunk_layouts.embed_chunk_texts`). The queries are chosen exactly as the deep-paragraph
evaluation chooses its own (:func:`vbert.evaluation.deep_retrieval.build_queries`): paragraphs
that start past the first content window, never a line shared with another document, and, when a
document's translation is in the set, paragraphs of the translation (``cross-lingual-deep``).
A document without a deep paragraph still makes a row: it is a candidate for other queries.

Documents are taken in the seeded order of sha256(seed, id), like the evaluation's distractors,
and the ids in ``exclude`` are never taken (an evaluation's distractors must not be trained on:
:func:`evaluation_distractors` lists them). One Parquet file plus a JSON sidecar with its sha256
and the parameters, as :mod:`vbert.data.long_sequences` writes.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vbert.cache import ChunkCache, text_key
from vbert.chunk_layouts import embed_chunk_texts
from vbert.data.article import Article
from vbert.data.datasets.articles import chunk_article
from vbert.data.datasets.columns import vector_sequence_column
from vbert.data.long_sequences import SIDECAR_SUFFIX, verify_long_sequences, write_checksummed_parquet
from vbert.data.splits import filter_split
from vbert.embedders.base import Embedder
from vbert.errors import DataError
from vbert.evaluation.deep_retrieval import DeepCorpus, DeepPlan, build_queries, select_corpus

DOCUMENTS_PER_EMBEDDING = 32  # documents whose chunks are embedded (and stored) together


@dataclass(frozen=True)
class QueryDocumentPlan:
    """Which documents are taken and how their queries are chosen (recorded in the sidecar)."""

    langs: tuple[str, ...] = ("en", "de")
    min_tokens: int = 512
    max_tokens: int = 8000
    max_documents: int | None = None
    queries_per_document: int = 4
    query_tokens: tuple[int, int] = (24, 160)
    cross_lingual: bool = True
    pivot: str = "en"
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.langs:
            raise DataError("a query-document plan needs at least one language")
        if not 0 <= self.min_tokens <= self.max_tokens:
            raise DataError(f"need 0 <= min_tokens <= max_tokens, got {self.min_tokens}, {self.max_tokens}")
        if not 1 <= self.query_tokens[0] <= self.query_tokens[1]:
            raise DataError(
                f"query_tokens must be a range (low, high) with 1 <= low <= high: {self.query_tokens}"
            )
        if self.queries_per_document < 1 or (self.max_documents is not None and self.max_documents < 2):
            raise DataError("need queries_per_document >= 1 and max_documents >= 2 (the in-batch candidates)")

    def deep_plan(self) -> DeepPlan:
        """The evaluation's plan that chooses the same queries (no distractors: every document is a target)."""
        return DeepPlan(
            langs=tuple(self.langs),
            min_tokens=self.min_tokens,
            max_tokens=self.max_tokens,
            distractors=0,
            queries_per_document=self.queries_per_document,
            query_tokens=tuple(self.query_tokens),
            pivot=self.pivot,
            seed=self.seed,
        )


@dataclass
class QueryDocument:
    id: str
    lang: str
    vectors: np.ndarray  # (n_chunks, d) float32
    queries: np.ndarray  # (n_queries, d) float32; may be (0, d)
    query_tasks: list[str] = field(default_factory=list)  # deep-paragraph-distractors / cross-lingual-deep
    query_sources: list[str] = field(default_factory=list)  # id of the document each query was taken from


@dataclass
class QueryDocumentBuild:
    rows: list[QueryDocument]
    excluded: int  # documents left out because their id was in ``exclude``
    chunks_embedded: int  # chunk vectors the store lacked (embedded now)
    queries_embedded: int


def _order_key(seed: int, article: Article) -> str:
    return hashlib.sha256(f"{seed}\x00{article.id}".encode()).hexdigest()


def select_documents(
    articles: Iterable[Article], embedder: Embedder, plan: QueryDocumentPlan, exclude: Iterable[str] = ()
) -> tuple[DeepCorpus, int]:
    """The documents of ``plan`` (languages, token range, seeded order, at most ``max_documents``)
    whose ids are not in ``exclude``, and how many were left out for being excluded."""
    excluded_ids = set(exclude)
    langs = set(plan.langs)
    candidates = [a for a in articles if a.lang in langs]
    kept = [a for a in candidates if a.id not in excluded_ids]
    picked, tokens = [], []
    for article in sorted(kept, key=lambda a: _order_key(plan.seed, a)):
        if plan.max_documents is not None and len(picked) >= plan.max_documents:
            break
        n = embedder.count_tokens(article.text)
        if plan.min_tokens <= n <= plan.max_tokens:
            picked.append(article)
            tokens.append(n)
    return DeepCorpus(picked, [True] * len(picked), tokens), len(candidates) - len(kept)


def evaluation_distractors(
    articles: Sequence[Article],
    embedder: Embedder,
    plan: DeepPlan,
    heldout_splits: Sequence[str] = ("validation", "test"),
    distractor_split: str = "train",
    split_seed: int | str | None = None,
) -> set[str]:
    """Ids of the distractors the deep-paragraph evaluation of each held-out split draws under ``plan``
    (``vbert evaluate retrieval`` with ``deep_plan_for(size)``): what a training set must leave out."""
    seed = {} if split_seed is None else {"seed": split_seed}
    pool = list(filter_split(articles, distractor_split, **seed))
    ids: set[str] = set()
    for split in heldout_splits:
        corpus = select_corpus(filter_split(articles, split, **seed), pool, embedder, plan)
        ids |= {a.id for a, held in zip(corpus.articles, corpus.heldout, strict=True) if not held}
    return ids


def build_query_documents(
    articles: Iterable[Article],
    embedder: Embedder,
    store: ChunkCache | None,
    plan: QueryDocumentPlan = QueryDocumentPlan(),
    exclude: Iterable[str] = (),
    batch_size: int = 32,
) -> QueryDocumentBuild:
    """Rows of the plan's documents with their queries; only vectors ``store`` lacks are embedded (and stored)."""
    corpus, excluded = select_documents(articles, embedder, plan, exclude)
    if len(corpus.articles) < 2:
        raise DataError(
            f"found {len(corpus.articles)} documents of {plan.min_tokens}-{plan.max_tokens} tokens in "
            f"{list(plan.langs)} outside the excluded ids; query-document training needs at least 2"
        )
    query_sets = build_queries(corpus, embedder, plan.deep_plan())
    if not plan.cross_lingual:
        query_sets = {name: qs for name, qs in query_sets.items() if name != "cross-lingual-deep"}
    size = embedder.content_window
    chunks = [chunk_article(embedder, a.text, size)[0] for a in corpus.articles]
    vectors: dict[str, np.ndarray] = {}
    chunks_embedded = 0
    for start in range(0, len(chunks), DOCUMENTS_PER_EMBEDDING):
        texts = {text_key(c): c for doc in chunks[start : start + DOCUMENTS_PER_EMBEDDING] for c in doc}
        found, embedded = embed_chunk_texts(embedder, store, texts, batch_size)
        vectors.update(found)
        chunks_embedded += embedded
    query_texts = {text_key(t): t for qs in query_sets.values() for t in qs.texts}
    query_vectors, queries_embedded = embed_chunk_texts(
        embedder, store, query_texts, batch_size, queries=True
    )
    asked: list[list[tuple[str, str, str]]] = [[] for _ in corpus.articles]  # per target: (key, task, source)
    for name, qs in query_sets.items():
        for text, target, record in zip(qs.texts, qs.targets, qs.records, strict=True):
            asked[target].append((text_key(text), name, record["source"]))
    dim = int(embedder.dim)
    rows = []
    for article, doc_chunks, doc_queries in zip(corpus.articles, chunks, asked, strict=True):
        if not doc_chunks:
            continue
        rows.append(
            QueryDocument(
                article.id,
                article.lang,
                np.stack([vectors[text_key(c)] for c in doc_chunks]).astype(np.float32),
                np.stack([query_vectors[k] for k, _, _ in doc_queries]).astype(np.float32)
                if doc_queries
                else np.zeros((0, dim), dtype=np.float32),
                [task for _, task, _ in doc_queries],
                [source for _, _, source in doc_queries],
            )
        )
    return QueryDocumentBuild(rows, excluded, chunks_embedded, queries_embedded)


def write_query_documents(
    rows: Sequence[QueryDocument],
    path: str | Path,
    plan: QueryDocumentPlan,
    exclude: Iterable[str] = (),
    dtype: str = "float16",
    **facts: object,
) -> dict:
    """Write ``rows`` to the Parquet file ``path`` and its sidecar ``path.json`` (sha256, plan, facts)."""
    if not rows:
        raise DataError("no query documents to write")
    path = Path(path)
    dim = rows[0].vectors.shape[1]
    table = pa.table(
        {
            "id": pa.array([r.id for r in rows], pa.string()),
            "lang": pa.array([r.lang for r in rows], pa.string()),
            "length": pa.array([len(r.vectors) for r in rows], pa.int32()),
            "embeddings": vector_sequence_column([r.vectors for r in rows], dim, dtype),
            "n_queries": pa.array([len(r.queries) for r in rows], pa.int32()),
            "queries": vector_sequence_column([r.queries for r in rows], dim, dtype),
            "query_tasks": pa.array([r.query_tasks for r in rows], pa.list_(pa.string())),
            "query_sources": pa.array([r.query_sources for r in rows], pa.list_(pa.string())),
        }
    )
    excluded = sorted(set(exclude))
    sidecar = {
        "kind": "query-documents",
        "plan": asdict(plan),
        "dtype": dtype,
        "dim": dim,
        "rows": len(rows),
        "rows_by_lang": dict(sorted(Counter(r.lang for r in rows).items())),
        "queries": sum(len(r.queries) for r in rows),
        "queries_by_task": dict(sorted(Counter(t for r in rows for t in r.query_tasks).items())),
        "rows_without_queries": sum(len(r.queries) == 0 for r in rows),
        "length_quartiles": np.percentile([len(r.vectors) for r in rows], [0, 25, 50, 75, 100])
        .astype(int)
        .tolist(),
        "ids_sha256": hashlib.sha256("\n".join(r.id for r in rows).encode()).hexdigest(),
        "exclude": {"ids": len(excluded), "sha256": hashlib.sha256("\n".join(excluded).encode()).hexdigest()},
        **facts,
    }
    return write_checksummed_parquet(table, path, sidecar)


@dataclass
class StoredQueryDocuments:
    """A written query-document file, read back (vectors as float32)."""

    ids: list[str]
    langs: list[str]
    documents: list[np.ndarray]  # (n_chunks, d) each
    queries: list[np.ndarray]  # (n_queries, d) each
    sidecar: dict


def _ragged(column: pa.ChunkedArray, dim: int) -> list[np.ndarray]:
    array = column.combine_chunks()
    offsets = array.offsets.to_numpy()
    values = array.flatten().flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
    return [values[offsets[i] : offsets[i + 1]] for i in range(len(array))]


def read_query_documents(path: str | Path) -> StoredQueryDocuments:
    """Read a file :func:`write_query_documents` wrote, after checking its sha256 against the sidecar."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if len(files) != 1:
            raise DataError(f"{path} holds {len(files)} .parquet files; point at the query-document file")
        path = files[0]
    if not Path(f"{path}{SIDECAR_SUFFIX}").is_file():
        raise DataError(
            f"{path} has no sidecar {path.name}{SIDECAR_SUFFIX}: build it with `vbert data query-documents`"
        )
    sidecar = verify_long_sequences(path)
    if sidecar.get("kind") != "query-documents":
        raise DataError(f"{path} is not a query-document file (its sidecar has kind {sidecar.get('kind')!r})")
    table = pq.read_table(path)
    dim = int(sidecar["dim"])
    return StoredQueryDocuments(
        table.column("id").to_pylist(),
        table.column("lang").to_pylist(),
        _ragged(table.column("embeddings"), dim),
        _ragged(table.column("queries"), dim),
        sidecar,
    )
