"""Streaming, resumable vector output for ``vbert embed`` and ``vbert merge``.

Vectors arrive in batches. Each finished batch is kept in a work folder beside the output
(``<output>.partial/``): its vectors as ``batch-NNNNNN.npy``, then ``batch-NNNNNN.json`` with the
row ids, the per-row columns, the documents the batch consumed and the vectors' sha256. The json
file is written last and renamed into place, so it marks a finished batch (a batch whose vectors
fail their checksum counts as unfinished); a run killed at any point (kill -9 included) keeps
every finished batch, and the next run with the same job skips their
documents. When the input ends, the output is assembled in bounded memory and written as one
unit (see :mod:`vbert.data.vectors`): a ``.npy`` through a memory-mapped file, one batch window at
a time, with its ``.ids.json``; a ``.parquet`` with one row group per batch. Then the work
folder is removed.

A work folder left by another job (other inputs, models or settings: ``job`` differs) is
discarded with a message, never mixed in.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from vbert.errors import DataError
from vbert.files import atomic_path, atomic_write_json, canonical_json, normal_file_mode, read_json

if TYPE_CHECKING:
    from vbert.embedders.base import Embedder
    from vbert.long_document import LongDocumentEncoder

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def work_folder(output: Path) -> Path:
    return output.with_name(output.name + ".partial")


def input_signature(paths: Iterable[str | Path]) -> str:
    """sha256 of the inputs' file names, sizes and modification times: changes when an input does."""
    digest = hashlib.sha256()
    for root in map(Path, paths):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for file in files:
            stat = file.stat()
            digest.update(f"{file.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class VectorStream:
    """Batches of (ids, vectors) → a resumable work folder → the output file, written as one unit.

    Args:
        output: the ``.npy`` or ``.parquet`` file to write at :meth:`finish`.
        job: what makes two runs the same job (inputs' signature, model fingerprints, settings);
            a work folder of another job is discarded.

    ``documents_done`` and ``document_ids`` tell a resumed run which documents to skip.
    """

    def __init__(self, output: str | Path, job: Mapping[str, Any]) -> None:
        self.output = Path(output)
        self.work = work_folder(self.output)
        self.job = {"format_version": FORMAT_VERSION, **job}
        self.batches: list[dict[str, Any]] = []
        if self.work.exists():
            self._resume()
        if not self.work.exists():
            self.work.mkdir(parents=True)
            atomic_write_json(self.work / MANIFEST, {"job": self.job})

    def _resume(self) -> None:
        manifest = self.work / MANIFEST
        try:
            same_job = read_json(manifest, "work manifest").get("job") == json.loads(canonical_json(self.job))
        except (OSError, ValueError):
            same_job = False
        if not same_job:
            if not manifest.exists() and any(self.work.iterdir()):
                raise DataError(f"{self.work} exists and is not a vbert work folder; move it away first")
            print(f"vbert: discarding {self.work} (left by another job)", file=sys.stderr)
            shutil.rmtree(self.work)
            return
        for index in range(sys.maxsize):
            meta_path, vectors_path = self._paths(index)
            try:
                meta = read_json(meta_path, "batch record")
                if hashlib.sha256(vectors_path.read_bytes()).hexdigest() != meta["sha256"]:
                    raise ValueError("checksum")
            except (OSError, ValueError, KeyError):
                break
            self.batches.append(meta)
        for stale in self.work.glob(".batch-*.tmp"):
            stale.unlink()
        for stale in self.work.glob("batch-*"):  # the unfinished batch and anything after it
            if int(stale.name[6:12]) >= len(self.batches):
                stale.unlink()
        if self.batches:
            print(
                f"vbert: resuming: {self.documents_done} documents already done in {self.work}",
                file=sys.stderr,
            )

    def _paths(self, index: int) -> tuple[Path, Path]:
        return self.work / f"batch-{index:06d}.json", self.work / f"batch-{index:06d}.npy"

    @property
    def documents_done(self) -> int:
        return sum(len(batch["documents"]) for batch in self.batches)

    @property
    def rows(self) -> int:
        return sum(len(batch["ids"]) for batch in self.batches)

    def document_ids(self) -> list[str]:
        """Ids of the documents in finished batches, in order."""
        return [doc_id for batch in self.batches for doc_id in batch["documents"]]

    def add(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        documents: Sequence[str],
        columns: Mapping[str, Sequence[Any]] | None = None,
    ) -> None:
        """Keep one finished batch: row ``ids``, (rows, d) ``vectors``, the ``documents`` it consumed
        and per-row ``columns`` (e.g. ``chunk_index``)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        columns = {key: list(values) for key, values in (columns or {}).items()}
        if vectors.ndim != 2 or vectors.shape[0] != len(ids):
            raise DataError(f"{len(ids)} ids for vectors of shape {vectors.shape}; expected one row per id")
        if any(len(values) != len(ids) for values in columns.values()):
            raise DataError("every per-row column needs one value per id")
        if self.batches and vectors.shape[1] != self.batches[0]["dim"]:
            raise DataError(f"vectors of dimension {vectors.shape[1]} after {self.batches[0]['dim']}")
        meta_path, vectors_path = self._paths(len(self.batches))
        buffer = _npy_bytes(vectors)
        _replace_unsynced(vectors_path, buffer)
        meta = {
            "ids": list(ids),
            "documents": list(documents),
            "columns": columns,
            "dim": int(vectors.shape[1]),
            "sha256": hashlib.sha256(buffer).hexdigest(),
        }
        _replace_unsynced(meta_path, json.dumps(meta).encode("utf-8"))  # the commit point of this batch
        self.batches.append(meta)

    def _vectors(self, index: int) -> np.ndarray:
        return np.load(self._paths(index)[1], allow_pickle=False)

    def finish(self, extra: Mapping[str, Any] | None = None) -> int:
        """Write the output (and ``.ids.json``) as one unit from the kept batches; remove the work folder.

        ``extra`` holds run-level fields (fingerprints). Returns the number of rows.
        """
        from vbert.data.vectors import check_output

        check_output(self.output)
        if not self.batches:
            shutil.rmtree(self.work)
            raise DataError("no non-empty documents found in the inputs")
        extra = dict(extra or {})
        if self.output.suffix == ".npy":
            self._finish_npy(extra)
        else:
            self._finish_parquet(extra)
        shutil.rmtree(self.work)
        return self.rows

    def _finish_npy(self, extra: dict[str, Any]) -> None:
        from vbert.data.vectors import ids_json, ids_path

        dim = self.batches[0]["dim"]
        content: dict[str, Any] = {"ids": [i for batch in self.batches for i in batch["ids"]], **extra}
        for key in self.batches[0]["columns"]:
            content[key] = [value for batch in self.batches for value in batch["columns"][key]]
        ids_bytes = ids_json(content)
        with contextlib.ExitStack() as stack:  # both temporaries are renamed only once both are written
            vectors_tmp = stack.enter_context(atomic_path(self.output))
            ids_tmp = stack.enter_context(atomic_path(ids_path(self.output)))
            whole = np.lib.format.open_memmap(
                vectors_tmp, mode="w+", dtype=np.float32, shape=(self.rows, dim)
            )
            header = whole.offset
            del whole
            start = 0
            for index, batch in enumerate(self.batches):
                rows = len(batch["ids"])
                # One batch window mapped at a time: memory stays at one batch, not the whole file.
                # No msync per window: atomic_path fsyncs the whole file once before the rename.
                window = np.memmap(
                    vectors_tmp, np.float32, "r+", offset=header + start * dim * 4, shape=(rows, dim)
                )
                window[:] = self._vectors(index)
                del window
                start += rows
            ids_tmp.write_bytes(ids_bytes)

    def _finish_parquet(self, extra: dict[str, Any]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from vbert.data.vectors import ids_json

        ids_json({"ids": [], **extra})  # the same validation of run-level fields as for .npy
        with atomic_path(self.output) as tmp:
            writer = None
            for index, batch in enumerate(self.batches):
                vectors = self._vectors(index)
                columns = {"id": pa.array(batch["ids"], pa.string())}
                columns.update({key: pa.array(values) for key, values in batch["columns"].items()})
                flat = pa.array(vectors.reshape(-1), pa.float32())
                columns["embedding"] = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
                table = pa.table(columns)
                if extra:
                    table = table.replace_schema_metadata({"vbert": json.dumps(extra, sort_keys=True)})
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)  # one row group per batch
            writer.close()


def _replace_unsynced(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary sibling and rename it onto ``path``, without fsync.

    A batch survives a killed process either way (the page cache outlives it); after a power
    loss a torn file fails its checksum or its JSON and the batch is simply embedded again, so
    the per-batch fsyncs (most of the streaming overhead on a busy disk) buy nothing here.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, normal_file_mode())
    os.replace(tmp, path)


def _npy_bytes(vectors: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, vectors, allow_pickle=False)
    return buffer.getvalue()


def remaining(stream: VectorStream, documents: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """``documents`` after those the stream's finished batches hold, checking that their ids match."""
    iterator = iter(documents)
    for expected in stream.document_ids():
        doc_id = next(iterator, (None, None))[0]
        if doc_id != expected:
            raise DataError(
                f"the inputs changed since the interrupted run ({doc_id!r} where {expected!r} was): delete "
                f"{stream.work} to start over"
            )
    return iterator


def _batches(documents: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    iterator = iter(documents)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _progress(stream: VectorStream, show: bool) -> tqdm:
    # Used as a context manager, so an error message after a failure starts on a line of its own.
    return tqdm(desc="documents", unit="doc", initial=stream.documents_done, disable=not show)


def merge_to_file(
    encoder: LongDocumentEncoder,
    documents: Iterable[tuple[str, str]],
    output: str | Path,
    job: Mapping[str, Any],
    documents_per_batch: int = 1024,
    show_progress: bool = False,
) -> int:
    """``vbert merge``: one vector per ``(id, text)`` document into ``output``, streaming and resumable.

    Memory is bounded by one batch of ``documents_per_batch`` documents; every finished batch
    survives a kill, and the next call with the same ``job`` continues after it. Returns the rows.
    """
    stream = VectorStream(output, job)
    with _progress(stream, show_progress) as progress:
        for batch in _batches(remaining(stream, documents), documents_per_batch):
            ids = [doc_id for doc_id, _ in batch]
            vectors = np.stack(list(encoder.iter_encode([text for _, text in batch])))
            stream.add(ids, vectors, ids)
            progress.update(len(batch))
    extra = {"embedder": encoder.embedder.fingerprint, "merger": encoder.merger.fingerprint}
    return stream.finish(extra)


def embed_to_file(
    embedder: Embedder,
    documents: Iterable[tuple[str, str]],
    output: str | Path,
    job: Mapping[str, Any],
    chunk_tokens: int,
    batch_size: int = 32,
    documents_per_batch: int = 256,
    show_progress: bool = False,
) -> int:
    """``vbert embed``: one row per chunk (id, ``chunk_index``, vector), streaming and resumable like
    :func:`merge_to_file`. Returns the rows."""
    stream = VectorStream(output, job)
    with _progress(stream, show_progress) as progress:
        for batch in _batches(remaining(stream, documents), documents_per_batch):
            ids, index, chunks = [], [], []
            for doc_id, text in batch:
                pieces = embedder.split(text, chunk_tokens)
                ids.extend([doc_id] * len(pieces))
                index.extend(range(len(pieces)))
                chunks.extend(pieces)
            vectors = (
                embedder.encode(chunks, batch_size=batch_size) if chunks else np.zeros((0, embedder.dim))
            )
            stream.add(ids, vectors, [doc_id for doc_id, _ in batch], {"chunk_index": index})
            progress.update(len(batch))
    return stream.finish({"embedder": embedder.fingerprint})
