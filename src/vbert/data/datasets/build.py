"""The sharded build loop every dataset builder shares: its options, corpus slicing and hashing,
the build key, unit scheduling, and the manifest written last.

Arrow columns live in :mod:`~vbert.data.datasets.columns`, embedding in
:mod:`~vbert.data.datasets.embedding`, the dataset card in :mod:`~vbert.data.datasets.card`."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from vbert.cache import ChunkCache
from vbert.data.article import Article
from vbert.data.datasets.card import DatasetCard
from vbert.data.datasets.columns import DTYPES
from vbert.data.datasets.distributed import ShardAssignment, assignment_from_environment
from vbert.data.datasets.embedding import EmbeddingMeter, embedder_record
from vbert.data.datasets.shards import (
    FORMAT_VERSION,
    OutputTable,
    ShardStore,
    UnitRecord,
    sha256_json,
)
from vbert.data.errors import DatasetError, IncompleteBuildError
from vbert.embedders.base import Embedder

log = logging.getLogger(__name__)

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")

SplitRule = Callable[[Article], str]


@dataclass(frozen=True)
class CommonOptions:
    """Options every builder takes.

    Attributes:
        articles_per_shard: consecutive corpus articles per shard; part of the build key, since it
            decides which articles share a file.
        batch_size: texts per ``embedder.encode`` batch (not part of the build key).
        dtype: storage type of the vectors, ``float16`` (default, half the size) or ``float32``.
        seed: seed of every random choice a builder makes (windows sampled per article).
        split_rule: maps an article to its split name (``train``/``validation``/``test``); None
            puts every article in ``train``.
        split_spec: a description of ``split_rule`` recorded in the manifest and the build key
            (e.g. ``"vbert.data.splits seed=0 validation=0.05 test=0.05"``).
        overwrite: replace a folder built with other parameters instead of refusing.
        corpus: free-form description of the corpus, recorded in the manifest.
        store: the persistent chunk-vector store (:class:`vbert.cache.ChunkCache`, keyed by embedder
            fingerprint and text sha256) that every text is looked up in before it is embedded and
            saved to after; a second build, or a build after an evaluation, embeds only texts no
            earlier run embedded. Not part of the build key (a vector depends only on the embedder
            and the text). None embeds everything.
    """

    articles_per_shard: int = 64
    batch_size: int = 64
    dtype: str = "float16"
    seed: int = 0
    split_rule: SplitRule | None = None
    split_spec: str = "all train"
    overwrite: bool = False
    corpus: dict[str, Any] = field(default_factory=dict)
    store: ChunkCache | None = None

    def __post_init__(self) -> None:
        if self.articles_per_shard < 1:
            raise ValueError(f"articles_per_shard must be >= 1, got {self.articles_per_shard}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.split_rule is not None and self.split_spec == "all train":
            raise ValueError("a split_rule needs a split_spec describing it; it is recorded in the manifest")


@dataclass
class BuildResult:
    """What one process did in a build.

    Attributes:
        out_dir: the dataset folder.
        manifest: the manifest, when this process wrote it (rank 0 once every shard is done).
        built: units this process embedded and wrote.
        reused: units found finished (checksums verified) and skipped.
        pending: units still missing when this process finished (owned by other ranks).
        n_articles: articles read from the corpus.
        seconds: wall time of the whole build in this process.
        embed_seconds: time spent inside ``embedder.encode``.
        texts_embedded: texts passed to ``embedder.encode``.
        texts_reused: distinct texts whose vectors came from the store instead.
    """

    out_dir: Path
    manifest: dict[str, Any] | None
    built: list[str]
    reused: list[str]
    pending: list[str]
    n_articles: int
    seconds: float
    embed_seconds: float
    texts_embedded: int
    texts_reused: int = 0


def seeded_rng(seed: int, key: str) -> np.random.Generator:
    """A generator that depends only on (seed, key), not on the order articles are processed in."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def article_digest(article: Article, split: str) -> bytes:
    record = [article.id, article.lang, article.title, article.source, article.license, article.group, split]
    digest = hashlib.sha256("\x00".join(record).encode("utf-8"))
    digest.update(article.text.encode("utf-8"))
    return digest.digest()


@dataclass(frozen=True)
class ArticleSlice:
    """``articles_per_shard`` consecutive corpus articles, with their splits and a content hash."""

    index: int
    articles: list[Article]
    splits: list[str]
    sha256: str


class CorpusReader:
    """Streams a corpus into slices, assigning splits and hashing the whole corpus on the way."""

    def __init__(self, articles: Iterable[Article], options: CommonOptions) -> None:
        self._articles = articles
        self._options = options
        self._corpus_hash = hashlib.sha256()
        self.n_articles = 0
        self.split_counts: dict[str, int] = {}

    @property
    def corpus_sha256(self) -> str:
        return self._corpus_hash.hexdigest()

    def _split_of(self, article: Article) -> str:
        if self._options.split_rule is None:
            return "train"
        split = self._options.split_rule(article)
        if not isinstance(split, str) or not _SPLIT_NAME.match(split):
            raise ValueError(
                f"the split rule returned {split!r} for article {article.id!r}; split names must be "
                "non-empty letters, digits or underscores (train, validation, test)"
            )
        return split

    def slices(self) -> Iterator[ArticleSlice]:
        size = self._options.articles_per_shard
        batch: list[Article] = []
        splits: list[str] = []
        digest = hashlib.sha256()
        index = 0
        ids_in_slice: set[str] = set()  # per slice: a corpus-wide set would grow with the corpus
        for article in self._articles:
            if not isinstance(article, Article):
                raise TypeError(
                    f"the corpus yielded a {type(article).__name__}; it must yield vbert Article records"
                )
            if article.id in ids_in_slice:
                raise ValueError(
                    f"article id {article.id!r} occurs twice in the corpus; ids must be unique (dataset rows "
                    "are keyed by them)"
                )
            ids_in_slice.add(article.id)
            split = self._split_of(article)
            one = article_digest(article, split)
            digest.update(one)
            self._corpus_hash.update(one)
            batch.append(article)
            splits.append(split)
            self.n_articles += 1
            self.split_counts[split] = self.split_counts.get(split, 0) + 1
            if len(batch) == size:
                yield ArticleSlice(index, batch, splits, digest.hexdigest())
                batch, splits, digest, index = [], [], hashlib.sha256(), index + 1
                ids_in_slice = set()
        if batch:
            yield ArticleSlice(index, batch, splits, digest.hexdigest())


def split_outputs(
    columns: dict[str, list[Any] | pa.Array], splits: Sequence[str], schema: pa.Schema, unit_index: int
) -> list[OutputTable]:
    """One ``data/<split>-<index>.parquet`` table per split present in the rows, rows kept in order."""
    arrays = [
        columns[f.name] if isinstance(columns[f.name], pa.Array) else pa.array(columns[f.name], type=f.type)
        for f in schema
    ]
    table = pa.Table.from_arrays(arrays, schema=schema)
    split_array = np.asarray(splits, dtype=object)
    outputs = []
    for split in sorted(set(splits)):
        rows = np.flatnonzero(split_array == split)
        outputs.append(
            OutputTable(f"data/{split}-{unit_index:05d}.parquet", split, table.take(pa.array(rows)))
        )
    return outputs


def _build_identity(
    kind: str, embedder: dict[str, Any], params: dict[str, Any], options: CommonOptions
) -> dict[str, Any]:
    """What makes two builds the same build: hashed into the build key, and recorded in the manifest."""
    return {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "embedder": embedder,
        "params": params,
        "seed": options.seed,
        "dtype": options.dtype,
        "articles_per_shard": options.articles_per_shard,
        "split_spec": options.split_spec,
    }


def build_key(kind: str, embedder: dict[str, Any], params: dict[str, Any], options: CommonOptions) -> str:
    return sha256_json(_build_identity(kind, embedder, params, options))


def manifest_header(
    kind: str, key: str, embedder: dict[str, Any], params: dict[str, Any], options: CommonOptions
) -> dict[str, Any]:
    """The manifest's first fields (written with sorted keys, so their order here does not matter)."""
    identity = _build_identity(kind, embedder, params, options)
    return identity | {"build_key": key, "text_prefix": embedder["prefix"]}


def finalize(
    store: ShardStore,
    units: list[tuple[str, str]],
    header: dict[str, Any],
    corpus: dict[str, Any],
    card: DatasetCard,
) -> tuple[dict[str, Any] | None, list[str]]:
    """On rank 0, after every rank is done: verify all units and write the manifest.

    Returns (manifest or None, units still missing). With a process group a missing unit is an
    error (a rank failed); with hand-started ranks the others may simply still be running.
    """
    store.assignment.barrier()
    if not store.assignment.is_main:
        return None, []
    records, missing = store.check_units(units)
    if missing:
        if store.assignment.world_size > 1 and not store.assignment.synchronized:
            log.warning(
                "manifest not written yet: %d shard(s) of other ranks are not finished (%s); once every rank is "
                "done, run the same command without RANK/WORLD_SIZE to verify them and write the manifest",
                len(missing),
                ", ".join(missing[:5]),
            )
            return None, missing
        raise IncompleteBuildError(
            f"{len(missing)} shard(s) are missing or failed their checksum ({', '.join(missing[:5])}); "
            "run the same command again to build them (finished shards are kept)"
        )
    store.remove_stale(records)
    manifest = dict(header)
    manifest["corpus"] = corpus
    manifest["shards"] = [_shard_entry(r) for r in records]
    manifest["splits"] = _file_totals(records, data=True)
    manifest["tables"] = _file_totals(records, data=False)
    manifest["stats"] = _stat_totals(records)
    store.write_manifest(manifest, card.render(manifest))
    return manifest, []


def _shard_entry(record: UnitRecord) -> dict[str, Any]:
    return {
        "unit": record.unit,
        "input_sha256": record.input_sha256,
        "files": [f.to_dict() for f in record.files],
        "stats": record.stats,
    }


def _file_totals(records: list[UnitRecord], data: bool) -> dict[str, dict[str, Any]]:
    """Rows, files and bytes per split (``data=True``: files under data/) or per other table folder."""
    totals: dict[str, dict[str, Any]] = {}
    for record in records:
        for f in record.files:
            folder = f.path.split("/", 1)[0]
            if (folder == "data") != data:
                continue
            entry = totals.setdefault(f.split if data else folder, {"rows": 0, "files": 0, "bytes": 0})
            entry["rows"] += f.rows
            entry["files"] += 1
            entry["bytes"] += f.bytes
    return totals


def _stat_totals(records: list[UnitRecord]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for record in records:
        for name, value in record.stats.items():
            totals[name] = totals.get(name, 0) + value
    return totals


def run_units(
    store: ShardStore,
    units: Iterable[tuple[str, str, Callable[[], tuple[list[OutputTable], dict[str, int]]]]],
    built: list[str],
    reused: list[str],
    expected: list[tuple[str, str]],
    start_index: int = 0,
) -> None:
    """Build the units this rank owns and has not finished yet.

    ``units`` yields (name, input sha256, make) where ``make()`` returns the unit's tables and
    stats; units are numbered from ``start_index`` for the round-robin rank assignment.
    """
    for offset, (unit, input_sha, make) in enumerate(units):
        expected.append((unit, input_sha))
        if not store.assignment.owns(start_index + offset):
            continue
        if store.is_complete(unit, input_sha):
            reused.append(unit)
            log.info("shard %s is finished, skipped", unit)
            continue
        outputs, stats = make()
        store.write_unit(unit, input_sha, outputs, stats)
        built.append(unit)
        log.info(
            "shard %s written (%s)", unit, ", ".join(f"{o.split}: {o.table.num_rows} rows" for o in outputs)
        )


def make_store(
    out_dir: str | Path, key: str, options: CommonOptions, assignment: ShardAssignment | None
) -> ShardStore:
    return ShardStore(out_dir, key, assignment or assignment_from_environment(), overwrite=options.overwrite)


def require_articles(n_articles: int, kind: str) -> None:
    if n_articles == 0:
        raise DatasetError(
            f"the corpus yielded no articles, so there is nothing to build for the {kind} dataset: check the "
            "corpus name, --langs and that the corpus was fetched (`vbert corpus fetch debian`)"
        )


UnitMaker = Callable[[], tuple[list[OutputTable], dict[str, int]]]


def sharded_build(
    *,
    kind: str,
    articles: Iterable[Article],
    embedder: Embedder,
    out_dir: str | Path,
    params: dict[str, Any],
    options: CommonOptions,
    assignment: ShardAssignment | None,
    make_slice: Callable[[ArticleSlice, EmbeddingMeter], tuple[list[OutputTable], dict[str, int]]],
    card: DatasetCard,
    leading_units: Callable[[EmbeddingMeter], list[tuple[str, str, UnitMaker]]] | None = None,
    slice_salt: str = "",
    manifest_extra: dict[str, Any] | None = None,
) -> BuildResult:
    """The build loop shared by every dataset: stream slices, build owned unfinished units, finalize.

    ``leading_units`` (built before the article slices, numbered first) serve datasets with a
    table that is not per article (the token table of the atomic dataset); ``slice_salt`` enters
    each slice unit's input hash when its content depends on more than its articles;
    ``manifest_extra`` holds facts about the corpus to record that are not parameters.
    """
    started = time.perf_counter()
    info = embedder_record(embedder)
    key = build_key(kind, info, params, options)
    store = make_store(out_dir, key, options, assignment)
    meter = EmbeddingMeter(embedder, options.batch_size, options.store)
    reader = CorpusReader(articles, options)
    built: list[str] = []
    reused: list[str] = []
    expected: list[tuple[str, str]] = []
    first = leading_units(meter) if leading_units is not None else []
    run_units(store, first, built, reused, expected)

    def slice_units() -> Iterator[tuple[str, str, UnitMaker]]:
        for piece in reader.slices():
            input_sha = hashlib.sha256(f"{piece.sha256}{slice_salt}".encode()).hexdigest()
            yield f"data-{piece.index:05d}", input_sha, lambda piece=piece: make_slice(piece, meter)

    run_units(store, slice_units(), built, reused, expected, start_index=len(first))
    require_articles(reader.n_articles, kind)
    corpus = dict(options.corpus)
    corpus.update(
        {
            "sha256": reader.corpus_sha256,
            "n_articles": reader.n_articles,
            "articles_per_split": reader.split_counts,
        }
    )
    header = manifest_header(kind, key, info, params, options)
    header.update(manifest_extra or {})
    manifest, pending = finalize(store, expected, header, corpus, card)
    return BuildResult(
        out_dir=store.root,
        manifest=manifest,
        built=built,
        reused=reused,
        pending=pending,
        n_articles=reader.n_articles,
        seconds=time.perf_counter() - started,
        embed_seconds=meter.seconds,
        texts_embedded=meter.texts,
        texts_reused=meter.reused,
    )
