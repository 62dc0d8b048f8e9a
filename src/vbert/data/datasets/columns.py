"""Arrow columns of vectors, as every dataset stores them (float16 or float32 fixed-size lists)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

DTYPES = {"float16": pa.float16(), "float32": pa.float32()}


def vector_column(vectors: np.ndarray, dtype: str) -> pa.FixedSizeListArray:
    """(n, d) vectors as an Arrow column of fixed-size lists of ``dtype``."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float16 if dtype == "float16" else np.float32)
    n, dim = matrix.shape
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(n * dim), type=DTYPES[dtype]), dim)


def vector_sequence_column(sequences: Sequence[np.ndarray], dim: int, dtype: str) -> pa.ListArray:
    """Ragged sequences of (n_i, d) vectors as a list column of fixed-size lists."""
    offsets = np.zeros(len(sequences) + 1, dtype=np.int32)
    np.cumsum([len(s) for s in sequences], out=offsets[1:])
    flat = np.concatenate(sequences) if sequences else np.zeros((0, dim), dtype=np.float32)
    return pa.ListArray.from_arrays(
        pa.array(offsets, type=pa.int32()), vector_column(flat.reshape(-1, dim), dtype)
    )


def vector_type(dim: int, dtype: str) -> pa.DataType:
    return pa.list_(DTYPES[dtype], dim)


def int_list_column(lists: Sequence[Sequence[int]]) -> pa.ListArray:
    return pa.array([list(map(int, x)) for x in lists], type=pa.list_(pa.int32()))


#: The provenance columns that lead every pair row (N-to-1 and atomic): where the window comes from.
PROVENANCE_DOCS = {
    "article_id": "id of the article the window comes from",
    "lang": "language code of the article",
    "source": "corpus source",
    "license": "license of the article text",
    "split": "train / validation / test (of the article)",
}
PROVENANCE_FIELDS = [(name, pa.string()) for name in PROVENANCE_DOCS]


def provenance_columns(articles: Sequence[Any], splits: Sequence[str]) -> dict[str, list[str]]:
    """The provenance columns of rows taken from ``articles`` (one per row) in ``splits``."""
    return {
        "article_id": [a.id for a in articles],
        "lang": [a.lang for a in articles],
        "source": [a.source for a in articles],
        "license": [a.license for a in articles],
        "split": list(splits),
    }
