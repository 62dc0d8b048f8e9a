"""Chunk-embedding shards: Parquet files of chunk vectors with checksums and a manifest (no Ray needed to read).

A shard folder (written by :mod:`vbert.index.ray_engine`) holds::

    shard-00000-<key>.parquet   doc_id, chunk_index, key, text, start, end, tokens, embedding
    shard-00000-<key>.json      its sidecar: sha256 of the Parquet file, rows, embedder fingerprint
    manifest.json               the shards of the run, in document order, with their checksums

A shard's ``<key>`` hashes what it was computed from (document ids and texts, embedder
fingerprint, chunking rule), so a re-run recognises a finished shard by name and checksum and
does not compute it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vbert.embedders.base import Embedder
from vbert.errors import ConfigError, DataError, IntegrityError
from vbert.files import atomic_path, atomic_write_json, read_json, sha256_file
from vbert.index.chunking import Chunk, ChunkingSpec, chunk_text

FORMAT = "vbert-chunk-shards/1"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ChunkRule:
    """How documents are chunked: fixed ``windows`` (``vbert embed``/``merge``) or ``content-defined`` (the index)."""

    kind: str
    max_tokens: int

    def __post_init__(self) -> None:
        if self.kind not in ("windows", "content-defined"):
            raise ConfigError(f"unknown chunking {self.kind!r}: 'windows' or 'content-defined'")

    def chunks(self, embedder: Embedder, text: str) -> list[Chunk]:
        if self.kind == "content-defined":
            return chunk_text(embedder, text, ChunkingSpec.for_embedder(embedder, self.max_tokens))
        chunks, cursor = [], 0
        for piece in embedder.split(text, self.max_tokens):
            found = text.find(piece, cursor)
            start = found if found >= 0 else cursor
            chunks.append(Chunk(piece, start, start + len(piece), embedder.count_tokens(piece)))
            cursor = start + len(piece)
        return chunks

    def to_dict(self) -> dict:
        return asdict(self)


def shard_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("doc_id", pa.string()),
            ("chunk_index", pa.int32()),
            ("key", pa.string()),
            ("text", pa.string()),
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("tokens", pa.int32()),
            ("embedding", pa.list_(pa.float32(), dim)),
        ]
    )


def write_shard(folder: Path, name: str, columns: dict, vectors: np.ndarray, fingerprint: str) -> dict:
    """Write one shard and then its sidecar, each atomically; returns the sidecar's content."""
    dim = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), pa.float32())
    table = pa.table(
        {**columns, "embedding": pa.FixedSizeListArray.from_arrays(flat, dim)}, schema=shard_schema(dim)
    )
    parquet = folder / f"{name}.parquet"
    with atomic_path(parquet) as tmp:
        pq.write_table(table, tmp)
    sidecar = {
        "file": parquet.name,
        "sha256": sha256_file(parquet),
        "rows": table.num_rows,
        "documents": len(set(columns["doc_id"])),
        "embedder": fingerprint,
    }
    atomic_write_json(folder / f"{name}.json", sidecar)
    return sidecar


def finished_shard(folder: Path, name: str, fingerprint: str) -> dict | None:
    """The sidecar of a shard that is complete and intact, else ``None`` (it must be computed again)."""
    sidecar_path, parquet = folder / f"{name}.json", folder / f"{name}.parquet"
    if not (sidecar_path.is_file() and parquet.is_file()):
        return None
    try:
        sidecar = read_json(sidecar_path, "shard sidecar")
    except DataError:
        return None
    if sidecar.get("embedder") != fingerprint or sha256_file(parquet) != sidecar.get("sha256"):
        return None
    return sidecar


def write_manifest(folder: Path, shards: list[dict], fingerprint: str, rule: ChunkRule, dim: int) -> None:
    atomic_write_json(
        folder / MANIFEST,
        {"format": FORMAT, "embedder": fingerprint, "chunking": rule.to_dict(), "dim": dim, "shards": shards},
    )


def read_manifest(folder: str | Path) -> dict:
    manifest = read_json(Path(folder) / MANIFEST, "shard manifest")
    if manifest.get("format") != FORMAT:
        raise DataError(f"{folder} is not a chunk-shard folder of format {FORMAT}")
    return manifest


def iter_shards(folder: str | Path) -> Iterator[pa.Table]:
    """Each shard of the manifest, in order, after checking its sha256."""
    folder = Path(folder)
    for shard in read_manifest(folder)["shards"]:
        path = folder / shard["file"]
        if not path.is_file() or sha256_file(path) != shard["sha256"]:
            raise IntegrityError(f"shard {path} is missing or fails its checksum; run the embedding again")
        yield pq.read_table(path)


def read_chunk_vectors(folder: str | Path) -> tuple[pa.Table, np.ndarray]:
    """All rows of all shards (without the embedding column) and their (n, d) float32 vectors."""
    tables = list(iter_shards(folder))
    if not tables:
        dim = read_manifest(folder)["dim"]
        return shard_schema(dim).empty_table().drop(["embedding"]), np.zeros((0, dim), np.float32)
    table = pa.concat_tables(tables)
    column = table["embedding"].combine_chunks()
    vectors = column.flatten().to_numpy().reshape(len(table), column.type.list_size)
    return table.drop(["embedding"]), vectors.astype(np.float32)
