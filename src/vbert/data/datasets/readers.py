"""Reading built datasets back: manifest checks, torch-friendly datasets, a padding collate.

Rows come out as dicts of numpy arrays with vectors in float32 whatever the stored dtype:
``inputs`` (n, d) and ``length`` n for every dataset (the article-sequence column
``embeddings`` is renamed ``inputs``), plus ``target`` (d,) for pairs; atomic
pairs get their ``inputs`` gathered from the token table. The other columns pass through.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import IterableDataset, get_worker_info

from vbert.data.datasets.shards import (
    manifest_files,
    read_manifest,
    verify_files,
)
from vbert.data.errors import DatasetValidationError

SEQUENCE_KIND = "article-sequences"
PAIR_KINDS = ("n-to-1", "atomic")
_RENAMES = {"embeddings": "inputs"}


@dataclass(frozen=True)
class DatasetReport:
    """What :func:`validate_dataset` found: the manifest and any problems."""

    path: Path
    kind: str
    manifest: dict[str, Any]
    rows: dict[str, int]
    files: int
    bytes: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_dataset(path: str | Path, checksums: bool = True, strict: bool = True) -> DatasetReport:
    """Check a dataset folder against its manifest: every file present, same size and (by default) sha256.

    Raises :class:`DatasetValidationError` listing the problems when ``strict`` (the default);
    otherwise returns them in the report. Parquet files the manifest does not list are reported too.
    """
    root = Path(path)
    manifest = read_manifest(root)
    files = manifest_files(manifest)
    problems = verify_files(root, files, checksums)
    listed = {f.path for f in files}
    problems += [
        f"{p.relative_to(root).as_posix()}: not listed in the manifest"
        for p in sorted(root.glob("*/*.parquet"))
        if p.relative_to(root).as_posix() not in listed
    ]
    report = DatasetReport(
        path=root,
        kind=manifest["kind"],
        manifest=manifest,
        rows={split: entry["rows"] for split, entry in manifest["splits"].items()},
        files=len(files),
        bytes=sum(f.bytes for f in files),
        problems=problems,
    )
    if problems and strict:
        raise DatasetValidationError(
            f"{root} does not match its manifest: "
            + "; ".join(problems[:10])
            + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
            + ". Run the build command again: it rebuilds exactly the shards that fail"
        )
    return report


def rows_from_arrow(table: pa.Table, token_vectors: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Convert an Arrow batch of a vbert dataset to row dicts with float32 numpy vectors."""
    columns: dict[str, list[Any]] = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        out_name = _RENAMES.get(name, name)
        if pa.types.is_fixed_size_list(column.type):
            dim = column.type.list_size
            columns[out_name] = list(_values(column.flatten()).reshape(-1, dim))
        elif pa.types.is_list(column.type) and pa.types.is_fixed_size_list(column.type.value_type):
            dim = column.type.value_type.list_size
            flat = _values(column.flatten().flatten()).reshape(-1, dim)
            columns[out_name] = _ragged(flat, column)
        elif name == "token_rows" and token_vectors is not None:
            ids = column.flatten().to_numpy(zero_copy_only=False)
            columns["inputs"] = _ragged(token_vectors[ids], column)
        elif pa.types.is_list(column.type):
            flat = column.flatten().to_numpy(zero_copy_only=False)
            columns[out_name] = _ragged(flat, column)
        else:
            columns[out_name] = column.to_pylist()
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _values(array: pa.Array) -> np.ndarray:
    return array.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)


def _ragged(flat: np.ndarray, lists: pa.ListArray) -> list[np.ndarray]:
    offsets = lists.offsets.to_numpy()
    base = offsets[0]
    return [flat[a - base : b - base] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


class VectorDataset(TorchDataset):
    """A map-style (torch) dataset of one split; ``hf`` is the underlying ``datasets.Dataset``.

    Rows are dicts of numpy arrays (see the module doc); batches of rows pad with
    :func:`collate_vectors`.
    """

    def __init__(self, hf: Any, manifest: dict[str, Any], token_vectors: np.ndarray | None = None) -> None:
        self.hf = hf
        self.manifest = manifest
        self.token_vectors = token_vectors
        self._arrow = hf.with_format("arrow")

    def __len__(self) -> int:
        return len(self.hf)

    @property
    def lengths(self) -> np.ndarray:
        """Number of input vectors of every row, in row order (for length bucketing)."""
        return self._arrow["length"].to_numpy().astype(np.int64)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"row {index} is out of range for a split of {len(self)} rows")
        return self.__getitems__([index % len(self)])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        return rows_from_arrow(self._arrow[list(indices)], self.token_vectors)


class StreamingVectorDataset(IterableDataset):
    """An iterable (torch) dataset reading a split's Parquet files in order, a record batch at a time.

    Memory stays bounded by ``batch_rows``; with several DataLoader workers, each reads its own files.
    """

    def __init__(
        self,
        files: Sequence[Path],
        manifest: dict[str, Any],
        token_vectors: np.ndarray | None = None,
        batch_rows: int = 256,
    ) -> None:
        self.files = list(files)
        self.manifest = manifest
        self.token_vectors = token_vectors
        self.batch_rows = batch_rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = get_worker_info()
        files = self.files if worker is None else self.files[worker.id :: worker.num_workers]
        for path in files:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=self.batch_rows):
                yield from rows_from_arrow(pa.Table.from_batches([batch]), self.token_vectors)


def collate_vectors(rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad rows into tensors: ``inputs`` (B, N, d), ``attention_mask`` (B, N), ``length`` (B,), ``target`` (B, d)."""
    if not rows:
        raise ValueError("cannot collate an empty batch")
    lengths = [len(r["inputs"]) for r in rows]
    dim = rows[0]["inputs"].shape[-1]
    inputs = np.zeros((len(rows), max(lengths), dim), dtype=np.float32)
    mask = np.zeros((len(rows), max(lengths)), dtype=np.int64)
    for i, row in enumerate(rows):
        inputs[i, : lengths[i]] = row["inputs"]
        mask[i, : lengths[i]] = 1
    batch = {
        "inputs": torch.from_numpy(inputs),
        "attention_mask": torch.from_numpy(mask),
        "length": torch.tensor(lengths, dtype=torch.long),
    }
    if "target" in rows[0]:
        batch["target"] = torch.from_numpy(np.stack([r["target"] for r in rows]).astype(np.float32))
    return batch


def _split_files(root: Path, manifest: dict[str, Any], split: str) -> list[Path]:
    files = [
        root / f.path for f in manifest_files(manifest) if f.split == split and f.path.startswith("data/")
    ]
    if not files:
        available = ", ".join(sorted(manifest["splits"])) or "none"
        raise ValueError(f"{root} has no rows in split {split!r}; its splits are: {available}")
    return files


def _open(
    path: str | Path,
    kinds: Sequence[str],
    split: str,
    streaming: bool,
    cache_dir: str | Path | None,
    checksums: bool,
    loader: str,
) -> VectorDataset | StreamingVectorDataset:
    root = Path(path)
    report = validate_dataset(root, checksums=checksums)
    manifest = report.manifest
    if manifest["kind"] not in kinds:
        other = "load_sequences" if manifest["kind"] == SEQUENCE_KIND else "load_pairs"
        raise ValueError(
            f"{root} holds a {manifest['kind']!r} dataset; {loader} reads {list(kinds)}: use {other}"
        )
    files = _split_files(root, manifest, split)
    tokens = _token_vectors(root, manifest) if manifest["kind"] == "atomic" else None
    if streaming:
        return StreamingVectorDataset(files, manifest, tokens)
    import datasets

    hf = datasets.load_dataset(
        "parquet",
        data_files={split: [str(f) for f in files]},
        split=split,
        cache_dir=None if cache_dir is None else str(cache_dir),
    )
    return VectorDataset(hf, manifest, tokens)


def _token_vectors(root: Path, manifest: dict[str, Any]) -> np.ndarray:
    parts = sorted(
        (f for f in manifest_files(manifest) if f.path.startswith("tokens/")), key=lambda f: f.path
    )
    tables = [pq.read_table(root / f.path) for f in parts]
    if not tables:
        raise DatasetValidationError(
            f"{root} is an atomic dataset without a token table (tokens/); rebuild it"
        )
    table = pa.concat_tables(tables)
    index = table.column("row").to_numpy()
    if not np.array_equal(index, np.arange(len(index))):
        raise DatasetValidationError(
            f"the token table of {root} is not numbered 0..{len(index) - 1}; rebuild it"
        )
    column = table.column("embedding").combine_chunks()
    return _values(column.flatten()).reshape(-1, column.type.list_size)


def load_sequences(
    path: str | Path,
    split: str = "train",
    streaming: bool = False,
    cache_dir: str | Path | None = None,
    checksums: bool = False,
) -> VectorDataset | StreamingVectorDataset:
    """Open one split of an article-sequence dataset.

    Args:
        path: the dataset folder (with ``manifest.json``).
        split: ``train``, ``validation`` or ``test``.
        streaming: read the Parquet files in order with bounded memory (an ``IterableDataset``)
            instead of a random-access dataset backed by the Hugging Face Arrow cache.
        cache_dir: Hugging Face ``datasets`` cache folder (non-streaming only).
        checksums: also verify every file's sha256 first (sizes are always checked).

    Each row: ``inputs`` float32 (length, d), ``length``, ``token_counts``, ``id``, ``lang`` ...
    """
    return _open(path, (SEQUENCE_KIND,), split, streaming, cache_dir, checksums, "load_sequences")


def load_pairs(
    path: str | Path,
    split: str = "train",
    streaming: bool = False,
    cache_dir: str | Path | None = None,
    checksums: bool = False,
) -> VectorDataset | StreamingVectorDataset:
    """Open one split of an N-to-1 or atomic pair dataset (arguments as :func:`load_sequences`).

    Each row: ``inputs`` float32 (length, d), ``length``, ``target`` float32 (d,), plus the
    dataset's metadata columns.
    """
    return _open(path, PAIR_KINDS, split, streaming, cache_dir, checksums, "load_pairs")
