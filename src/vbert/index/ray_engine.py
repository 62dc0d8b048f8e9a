"""Corpus-scale chunk embedding on Ray Data: read → chunk → embed (actor pool) → Parquet shards + manifest.

The documents are cut into shards of ``documents_per_shard`` in input order. Ray Data maps each
pending shard through a chunking task and then through a pool of embedder actors
(``map_batches`` with ``concurrency=workers``, one shard per call); each actor writes its shard's
Parquet file and checksum sidecar itself (atomically), so the driver only gathers small
sidecars. Shards finished by an earlier, interrupted run are recognised by name and checksum and
not computed again. :mod:`vbert.index.shards` reads the result without Ray; ``vbert embed``
assembles its output from it and ``vbert index`` loads it into the index's chunk cache.

Ray runs locally by default (``ray.init()`` on this machine) or joins a cluster by address; if
Ray is already initialised in the process, that session is used.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vbert.cache import text_key
from vbert.embedders.base import Embedder
from vbert.errors import ConfigError
from vbert.files import sha256_canonical
from vbert.index.shards import MANIFEST, ChunkRule, finished_shard, write_manifest, write_shard


@dataclass
class ShardRun:
    """What one run did: shards in the manifest, taken from an earlier run, computed now; chunks embedded."""

    folder: Path
    shards: int
    reused: int
    computed: int
    chunks_embedded: int
    seconds: float


def connect(address: str | None = None, num_cpus: int | None = None):
    """The ``ray`` module, initialised: the running session, a cluster at ``address``, or a local instance."""
    try:
        import ray
    except ImportError as err:
        raise ConfigError("--engine ray needs Ray Data: pip install 'vbert[ray]'") from err
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return ray


def plan_shards(
    documents: Sequence[tuple[str, str]], fingerprint: str, rule: ChunkRule, documents_per_shard: int
) -> list[dict]:
    """Shards in document order, each named by a hash of its ids, texts, embedder and chunking."""
    plans = []
    for number, start in enumerate(range(0, len(documents), documents_per_shard)):
        part = documents[start : start + documents_per_shard]
        key = sha256_canonical(
            {
                "ids": [doc_id for doc_id, _ in part],
                "texts": [text_key(text) for _, text in part],
                "embedder": fingerprint,
                "chunking": rule.to_dict(),
            }
        )[:16]
        plans.append(
            {
                "name": f"shard-{number:05d}-{key}",
                "ids": [doc_id for doc_id, _ in part],
                "texts": [text for _, text in part],
            }
        )
    return plans


@functools.lru_cache(maxsize=2)
def _worker_embedder(spec: str, fingerprint: str) -> Embedder:
    from vbert.embedders import load_embedder

    embedder = load_embedder(spec)
    if embedder.fingerprint != fingerprint:
        raise ConfigError(
            f"embedder {spec!r} on this Ray worker has fingerprint {embedder.fingerprint}, the driver's "
            f"{fingerprint}: install the same model files on every node"
        )
    return embedder


def _chunk_shard(row: dict, spec: str, fingerprint: str, rule: ChunkRule, known: frozenset[str]) -> dict:
    """Ray Data map: one shard's documents → its chunks (those whose key is not ``known``)."""
    embedder = _worker_embedder(spec, fingerprint)
    columns: dict[str, list] = {
        n: [] for n in ("doc_id", "chunk_index", "key", "text", "start", "end", "tokens")
    }
    for doc_id, text in zip(list(row["ids"]), list(row["texts"]), strict=True):
        for index, chunk in enumerate(rule.chunks(embedder, text)):
            if chunk.key in known:
                continue
            for name, value in zip(
                columns,
                (doc_id, index, chunk.key, chunk.text, chunk.start, chunk.end, chunk.tokens),
                strict=True,
            ):
                columns[name].append(value)
    return {"name": row["name"], **columns}


class ShardEmbedder:
    """Ray Data actor: embeds one shard's chunks and writes the shard (Parquet + sidecar)."""

    def __init__(self, spec: str, fingerprint: str, folder: str, batch_size: int) -> None:
        self.embedder = _worker_embedder(spec, fingerprint)
        self.folder = Path(folder)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        names, out = list(batch["name"]), {"name": [], "sidecar": []}
        for i, name in enumerate(names):
            columns = {
                c: list(batch[c][i])
                for c in ("doc_id", "chunk_index", "key", "text", "start", "end", "tokens")
            }
            if columns["text"]:
                vectors = self.embedder.encode(columns["text"], batch_size=self.batch_size)
            else:
                vectors = np.zeros((0, self.embedder.dim), np.float32)
            sidecar = write_shard(self.folder, str(name), columns, vectors, self.embedder.fingerprint)
            out["name"].append(str(name))
            out["sidecar"].append({**sidecar, "chunks_embedded": len(columns["text"])})
        return out


def embed_on_ray(
    documents: Sequence[tuple[str, str]],
    folder: str | Path,
    embedder: Embedder,
    embedder_spec: str,
    rule: ChunkRule,
    *,
    workers: int = 1,
    address: str | None = None,
    documents_per_shard: int = 64,
    batch_size: int = 32,
    known: frozenset[str] = frozenset(),
    show_progress: bool = False,
    on_shard: Callable[[dict], None] | None = None,
) -> ShardRun:
    """Embed the chunks of ``documents`` (``(id, text)`` pairs) on Ray into shards under ``folder``.

    ``embedder`` is the driver's copy (for its fingerprint and dimension); workers load
    ``embedder_spec`` with :func:`vbert.load_embedder` and must find the same fingerprint.
    Chunks whose key is in ``known`` are skipped (the caller has their vectors).
    """
    from tqdm.auto import tqdm

    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    started = time.perf_counter()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fingerprint = embedder.fingerprint
    plans = plan_shards(documents, fingerprint, rule, documents_per_shard)
    done = {p["name"]: s for p in plans if (s := finished_shard(folder, p["name"], fingerprint)) is not None}
    todo = [p for p in plans if p["name"] not in done]
    embedded = 0
    if todo:
        ray = connect(address, None if address else max(workers, 1))
        dataset = ray.data.from_items(todo, override_num_blocks=len(todo))
        dataset = dataset.map(
            _chunk_shard,
            fn_kwargs={"spec": embedder_spec, "fingerprint": fingerprint, "rule": rule, "known": known},
        )
        dataset = dataset.map_batches(
            ShardEmbedder,
            fn_constructor_kwargs={
                "spec": embedder_spec,
                "fingerprint": fingerprint,
                "folder": str(folder.resolve()),
                "batch_size": batch_size,
            },
            batch_size=1,
            concurrency=workers,
            num_cpus=1,
        )
        for row in tqdm(
            dataset.iter_rows(), total=len(todo), desc="shards", unit="shard", disable=not show_progress
        ):
            sidecar = dict(row["sidecar"])
            embedded += int(sidecar.pop("chunks_embedded"))
            done[row["name"]] = sidecar
            if on_shard is not None:
                on_shard(sidecar)
    write_manifest(folder, [done[p["name"]] for p in plans], fingerprint, rule, embedder.dim)
    current = {done[p["name"]]["file"] for p in plans} | {
        Path(done[p["name"]]["file"]).stem + ".json" for p in plans
    }
    for stale in folder.glob("shard-*"):
        if stale.name not in current and stale.name != MANIFEST:
            stale.unlink()
    return ShardRun(
        folder, len(plans), len(plans) - len(todo), len(todo), embedded, time.perf_counter() - started
    )
