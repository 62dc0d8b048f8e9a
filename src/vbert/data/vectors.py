"""The vector files ``vbert embed`` and ``vbert merge`` write: ``.npy`` + ``.ids.json``, or ``.parquet``.

A ``.npy`` output is a pair: the (n, d) float32 matrix and ``<name>.ids.json`` with the row ids
and provenance (embedder and merger fingerprints). The pair is written as one unit: everything
is validated first, both files go to temporaries, and only then are both renamed into place,
so a failure leaves either the old pair or the new one, never new vectors beside stale ids.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vbert.errors import ConfigError, DataError
from vbert.files import atomic_path

SUFFIXES = (".npy", ".parquet")


def ids_path(output: Path) -> Path:
    """The ids file that goes with a ``.npy`` output."""
    return output.with_suffix(".ids.json")


def check_output(output: Path) -> None:
    """Refuse an output path that cannot be written, before any embedding work is spent on it."""
    if output.suffix not in SUFFIXES:
        raise ConfigError(f"unsupported output {output.name}: use a .npy or .parquet file name")
    targets = [output, ids_path(output)] if output.suffix == ".npy" else [output]
    for target in targets:
        if target.is_dir():
            raise ConfigError(f"output {target} is an existing folder; name a file instead")
    if output.parent.exists() and not output.parent.is_dir():
        raise ConfigError(f"cannot write {output}: {output.parent} is not a folder")


def write_vectors(
    output: Path, ids: Sequence[str], vectors: np.ndarray, extra: Mapping[str, Any] | None = None
) -> None:
    """Write ``vectors`` (n, d) with their ``ids`` (and per-row or run-level ``extra`` fields)."""
    check_output(output)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise DataError(f"{len(ids)} ids for vectors of shape {vectors.shape}; expected one row per id")
    extra = dict(extra or {})
    if output.suffix == ".npy":
        ids_bytes = ids_json({"ids": list(ids), **extra})
        with contextlib.ExitStack() as stack:  # both temporaries are renamed only once both are written
            vectors_tmp = stack.enter_context(atomic_path(output))
            ids_tmp = stack.enter_context(atomic_path(ids_path(output)))
            with open(vectors_tmp, "wb") as handle:
                np.save(handle, vectors, allow_pickle=False)
            ids_tmp.write_bytes(ids_bytes)
    else:
        ids_json({"ids": list(ids), **extra})  # the same validation as for .npy
        _write_parquet(output, ids, vectors, extra)


def ids_json(content: dict[str, Any]) -> bytes:
    """The ``.ids.json`` file's bytes; text that is not valid Unicode is a DataError."""
    try:
        text = json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError as err:
        raise DataError(
            f"an id or field holds text that is not valid Unicode ({err.object[err.start : err.end]!r}); "
            "nothing was written"
        ) from err


def _write_parquet(output: Path, ids: Sequence[str], vectors: np.ndarray, extra: Mapping[str, Any]) -> None:
    """Per-row ``extra`` fields (lists) become columns; run-level ones (strings) go in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"id": pa.array(list(ids), pa.string())}
    run_level = {}
    for key, values in extra.items():
        if isinstance(values, list | tuple | np.ndarray):
            columns[key] = pa.array(values)
        else:
            run_level[key] = values
    columns["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])
    table = pa.table(columns)
    if run_level:
        table = table.replace_schema_metadata({"vbert": json.dumps(run_level, sort_keys=True)})
    with atomic_path(output) as tmp:
        pq.write_table(table, tmp)
