"""Training data for the merger: sequences of chunk vectors and n-to-1 pairs, in length buckets.

Two kinds of dataset:

* ``sequences`` (1-article-1-sequence): one row = one article = one sequence of chunk
  vectors (vBERT pre-training). :class:`VectorSequenceDataset`.
* ``pairs`` (10-to-1, 512-to-1): one row = input chunk vectors + the teacher's embedding of
  the joined text (distillation). :class:`PairDataset`.

:func:`open_dataset` opens, by what the spec points at:

* a dataset folder built by :mod:`vbert.data.datasets` (it has a ``manifest.json``): one
  split of it, checked against the manifest, atomic pairs gathered from the token table
  (:class:`ManifestDataset`);
* any other Parquet folder or file with the same column names (:func:`column_map`), read
  lazily from memory-mapped files (:class:`VectorSequenceDataset`, :class:`PairDataset`);
* a ``synthetic:`` spec (:mod:`vbert.train.synthetic`).

In-memory arrays work too (``from_arrays``). Batching is in :mod:`vbert.train.batches`.
Malformed data raise :class:`vbert.errors.DataError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from vbert.errors import ConfigError, DataError

DatasetKind = Literal["sequences", "pairs"]


@dataclass(frozen=True)
class ColumnMap:
    """Which Parquet columns hold what. Change these names to follow the dataset schema.

    ``vectors``: the chunk vectors of a row, either ``list<list<float>>`` /
    ``list<fixed_size_list<float>>`` (one inner list per chunk) or one flat float list
    together with ``length`` (chunks in the row; the dimension is then values / length).
    ``target``: the teacher vector of a pair, a (fixed-size) float list.
    """

    vectors: str
    length: str = "length"
    target: str | None = None


def column_map(kind: DatasetKind) -> ColumnMap:
    """The column names of each dataset kind (those :mod:`vbert.data.datasets` writes)."""
    if kind == "sequences":
        return ColumnMap(vectors="embeddings", length="length")
    return ColumnMap(vectors="inputs", length="length", target="target")


class _RaggedVectors:
    """Rows of variable numbers of d-dimensional vectors over flat float buffers (one per shard)."""

    def __init__(self, shards: list[tuple[np.ndarray, np.ndarray]], dim: int) -> None:
        # Each shard: (flat values of shape (n_vectors * dim,), row offsets in vectors (n_rows + 1,)).
        self.shards = shards
        self.dim = dim
        counts = [len(offsets) - 1 for _, offsets in shards]
        self.shard_start = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self.lengths = (
            np.concatenate([np.diff(offsets) for _, offsets in shards]).astype(np.int64)
            if shards
            else np.zeros(0, dtype=np.int64)
        )

    def __len__(self) -> int:
        return int(self.shard_start[-1])

    def row(self, index: int) -> np.ndarray:
        shard = int(np.searchsorted(self.shard_start, index, side="right")) - 1
        values, offsets = self.shards[shard]
        local = index - self.shard_start[shard]
        start, stop = offsets[local] * self.dim, offsets[local + 1] * self.dim
        return np.asarray(values[start:stop], dtype=np.float32).reshape(-1, self.dim)

    @classmethod
    def from_arrays(cls, rows: Sequence[np.ndarray], what: str) -> _RaggedVectors:
        if not len(rows):
            raise DataError(f"no {what} given: a dataset needs at least one row")
        arrays = [np.asarray(row) for row in rows]
        for i, array in enumerate(arrays):
            if array.ndim != 2 or array.shape[0] == 0:
                raise DataError(f"{what} row {i} has shape {array.shape}; expected (n_chunks >= 1, dim)")
            if array.shape[1] != arrays[0].shape[1]:
                raise DataError(
                    f"{what} row {i} has dimension {array.shape[1]}, row 0 has {arrays[0].shape[1]}"
                )
        values = np.concatenate([a.astype(np.float32).ravel() for a in arrays])
        offsets = np.concatenate(([0], np.cumsum([a.shape[0] for a in arrays]))).astype(np.int64)
        return cls([(values, offsets)], arrays[0].shape[1])


def _float_values(array: pa.Array, where: str) -> np.ndarray:
    if not pa.types.is_floating(array.type):
        raise DataError(f"{where} holds {array.type} values; expected float16/float32/float64 vectors")
    if array.null_count:
        raise DataError(f"{where} contains nulls; every vector component must be a number")
    return array.to_numpy(zero_copy_only=False)


def _ragged_from_column(
    table: pa.Table, columns: ColumnMap, where: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """Flat float values, row offsets (in vectors) and dimension of the vector column of one file."""
    if columns.vectors not in table.column_names:
        raise DataError(
            f"{where} has no column {columns.vectors!r} (columns: {table.column_names}); "
            "see vbert.train.data.column_map for the expected schema"
        )
    column = table.column(columns.vectors).combine_chunks()
    if not (
        pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
    ) and not pa.types.is_fixed_size_list(column.type):
        raise DataError(
            f"{where}: column {columns.vectors!r} has type {column.type}; expected a list of vectors"
        )
    inner = column.flatten()
    if (
        pa.types.is_list(inner.type)
        or pa.types.is_large_list(inner.type)
        or pa.types.is_fixed_size_list(inner.type)
    ):
        dims = np.unique(pc.list_value_length(inner).to_numpy(zero_copy_only=False))
        if len(dims) != 1 or dims[0] == 0:
            raise DataError(
                f"{where}: vectors in column {columns.vectors!r} have lengths {dims.tolist()}; expected one"
            )
        dim = int(dims[0])
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
        values = _float_values(inner.flatten(), where)
    else:
        if columns.length not in table.column_names:
            raise DataError(
                f"{where}: column {columns.vectors!r} is a flat float list, which needs a {columns.length!r} "
                "column with the number of chunks per row"
            )
        lengths = table.column(columns.length).to_numpy().astype(np.int64)
        sizes = pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
        if (lengths <= 0).any() or (sizes % lengths).any():
            raise DataError(f"{where}: row sizes are not a multiple of {columns.length!r}")
        dims = np.unique(sizes // lengths)
        if len(dims) != 1:
            raise DataError(f"{where}: rows imply different vector dimensions {dims.tolist()}")
        dim = int(dims[0])
        values = _float_values(inner, where)
    if (lengths == 0).any():
        raise DataError(f"{where}: {int((lengths == 0).sum())} rows have no vectors; drop empty rows")
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    return values, offsets, dim


def _ragged_from_files(
    folder: Path,
    files: Sequence[Path],
    columns: ColumnMap,
    each_table: Callable[[pa.Table, Path, int], None] | None = None,
) -> _RaggedVectors:
    """The vector sequences of every file, in order; ``each_table(table, file, rows)`` reads more of a file."""
    shards, dims = [], set()
    for file in files:
        table = pq.read_table(file, memory_map=True)
        values, offsets, dim = _ragged_from_column(table, columns, str(file))
        if each_table is not None:
            each_table(table, file, len(offsets) - 1)
        shards.append((values, offsets))
        dims.add(dim)
    if len(dims) != 1:
        raise DataError(f"{folder}: files have different vector dimensions {sorted(dims)}")
    return _RaggedVectors(shards, dims.pop())


def _parquet_files(folder: Path) -> list[Path]:
    if not folder.exists():
        raise FileNotFoundError(f"dataset folder {folder} does not exist: build it first (`vbert data ...`)")
    if folder.is_file():
        return [folder]
    files = sorted(
        path
        for path in folder.rglob("*.parquet")
        if not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    if not files:
        raise FileNotFoundError(f"dataset folder {folder} holds no .parquet files")
    return files


def _fingerprint_files(folder: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    manifest = folder / "manifest.json" if folder.is_dir() else None
    if manifest is not None and manifest.is_file():
        digest.update(manifest.read_bytes())
    else:
        for path in files:
            digest.update(str(path.relative_to(folder) if folder.is_dir() else path.name).encode())
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def _folder_metadata(folder: Path) -> dict[str, Any]:
    manifest = folder / "manifest.json"
    if folder.is_dir() and manifest.is_file():
        return json.loads(manifest.read_text(encoding="utf-8"))
    return {}


def _fingerprint_arrays(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


class VectorSequenceDataset(torch.utils.data.Dataset):
    """Sequences of chunk vectors (one article per row); items are float32 arrays (n, d).

    Attributes:
        lengths: chunks per row (for bucketing); ``dim``: vector dimension;
        fingerprint: content hash; ``metadata``: the dataset manifest, if any.
    """

    kind: DatasetKind = "sequences"

    def __init__(
        self, vectors: _RaggedVectors, fingerprint: str, source: str, metadata: dict[str, Any] | None = None
    ) -> None:
        self.vectors = vectors
        self.lengths = vectors.lengths
        self.dim = vectors.dim
        self.fingerprint = fingerprint
        self.source = source
        self.metadata = metadata or {}

    @classmethod
    def from_arrays(cls, sequences: Sequence[np.ndarray], source: str = "in-memory") -> VectorSequenceDataset:
        vectors = _RaggedVectors.from_arrays(sequences, "sequences")
        return cls(vectors, _fingerprint_arrays(vectors.shards[0][0]), source)

    @classmethod
    def from_parquet(cls, path: str | Path) -> VectorSequenceDataset:
        folder = Path(path)
        files = _parquet_files(folder)
        vectors = _ragged_from_files(folder, files, column_map("sequences"))
        return cls(vectors, _fingerprint_files(folder, files), str(folder), _folder_metadata(folder))

    def __len__(self) -> int:
        return len(self.vectors)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {"inputs": self.vectors.row(index)}


class PairDataset(torch.utils.data.Dataset):
    """n-to-1 pairs: input chunk vectors (n, d) and the teacher vector (d,) of the joined text."""

    kind: DatasetKind = "pairs"

    def __init__(
        self,
        inputs: _RaggedVectors,
        targets: np.ndarray,
        fingerprint: str,
        source: str,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if targets.ndim != 2 or targets.shape[0] != len(inputs):
            raise DataError(f"targets have shape {targets.shape}; expected ({len(inputs)}, dim): one per row")
        if targets.shape[1] != inputs.dim:
            raise DataError(f"targets have dimension {targets.shape[1]} but inputs have {inputs.dim}")
        self.inputs = inputs
        self.targets = targets
        self.lengths = inputs.lengths
        self.dim = inputs.dim
        self.fingerprint = fingerprint
        self.source = source
        self.metadata = metadata or {}

    @classmethod
    def from_arrays(
        cls, inputs: Sequence[np.ndarray], targets: np.ndarray, source: str = "in-memory"
    ) -> PairDataset:
        ragged = _RaggedVectors.from_arrays(inputs, "inputs")
        targets = np.asarray(targets, dtype=np.float32)
        return cls(ragged, targets, _fingerprint_arrays(ragged.shards[0][0], targets), source)

    @classmethod
    def from_parquet(cls, path: str | Path) -> PairDataset:
        folder = Path(path)
        files = _parquet_files(folder)
        columns = column_map("pairs")
        targets = []

        def read_targets(table: pa.Table, file: Path, rows: int) -> None:
            if columns.target not in table.column_names:
                raise DataError(f"{file} has no column {columns.target!r} (columns: {table.column_names})")
            target = _float_values(table.column(columns.target).combine_chunks().flatten(), str(file))
            targets.append(np.asarray(target, dtype=np.float32).reshape(rows, -1))

        inputs = _ragged_from_files(folder, files, columns, read_targets)
        return cls(
            inputs,
            np.concatenate(targets),
            _fingerprint_files(folder, files),
            str(folder),
            _folder_metadata(folder),
        )

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {"inputs": self.inputs.row(index), "target": self.targets[index]}


class ManifestDataset(torch.utils.data.Dataset):
    """One split of a dataset folder built by :mod:`vbert.data.datasets` (it has a ``manifest.json``).

    Reads through :func:`vbert.data.datasets.load_sequences` / ``load_pairs`` (file sizes
    checked against the manifest; atomic pairs get their inputs from the token table) and
    yields the same items as the other datasets here.
    """

    def __init__(self, path: str | Path, kind: DatasetKind, split: str = "train") -> None:
        from vbert.data.datasets import load_pairs, load_sequences

        self.kind = kind
        self.reader = (load_sequences if kind == "sequences" else load_pairs)(path, split=split)
        manifest = self.reader.manifest
        self.lengths = np.asarray(self.reader.lengths, dtype=np.int64)
        self.dim = int(manifest["embedder"]["dim"])
        digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode())
        digest.update(split.encode())
        self.fingerprint = digest.hexdigest()[:16]
        self.source = f"{path} [{split}]"
        self.metadata = manifest

    def __len__(self) -> int:
        return len(self.reader)

    def _item(self, row: dict[str, Any]) -> dict[str, np.ndarray]:
        item = {"inputs": row["inputs"]}
        if self.kind == "pairs":
            item["target"] = row["target"]
        return item

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self._item(self.reader[index])

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, np.ndarray]]:
        return [self._item(row) for row in self.reader.__getitems__(list(indices))]


TrainingDataset = VectorSequenceDataset | PairDataset | ManifestDataset


def open_dataset(spec: str, kind: DatasetKind, split: str = "train") -> TrainingDataset:
    """Open a dataset: a built dataset folder (``split`` of it), other Parquet, or a ``synthetic:`` spec.

    ``split`` only applies to folders with a ``manifest.json``; other Parquet data and
    synthetic specs have no splits (point at another folder, or use another seed).
    """
    if spec.startswith("synthetic:"):
        from .synthetic import synthetic_dataset

        dataset = synthetic_dataset(spec)
    elif (Path(spec) / "manifest.json").is_file():
        dataset = ManifestDataset(spec, kind, split)
    elif kind == "sequences":
        dataset = VectorSequenceDataset.from_parquet(spec)
    else:
        dataset = PairDataset.from_parquet(spec)
    if dataset.kind != kind:
        raise ConfigError(f"{spec!r} is a {dataset.kind} dataset but this use needs {kind}")
    return dataset
