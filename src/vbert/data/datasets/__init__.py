"""Training datasets made by running a base embedder over a corpus (see docs/data.md).

* :func:`build_article_sequences` - one row per article: its chunk vectors (vBERT pre-training).
* :func:`build_n_to_one` - "10-to-1": windows of 2..10 chunk vectors -> the window text's vector.
* :func:`build_atomic` - "512-to-1": single-token vectors -> the vector of a span of them.

Every build is sharded Parquet with a manifest (parameters, corpus hash, sha256 per file),
resumable after ``kill -9`` with byte-identical results, and splittable over processes
(``torchrun``/``accelerate launch``). Read back with :func:`load_sequences`, :func:`load_pairs`,
check with :func:`validate_dataset`.
"""

from vbert.data.datasets.articles import DEFAULT_CHUNK_TOKENS, build_article_sequences
from vbert.data.datasets.atomic import atomic_spans, build_atomic
from vbert.data.datasets.build import BuildResult, CommonOptions
from vbert.data.datasets.distributed import ShardAssignment, assignment_from_environment
from vbert.data.datasets.n_to_one import build_n_to_one, select_windows
from vbert.data.datasets.readers import (
    DatasetReport,
    StreamingVectorDataset,
    VectorDataset,
    collate_vectors,
    load_pairs,
    load_sequences,
    validate_dataset,
)
from vbert.data.errors import (
    DatasetError,
    DatasetMismatchError,
    DatasetValidationError,
    DiskFullError,
    IncompleteBuildError,
)

__all__ = [
    "DEFAULT_CHUNK_TOKENS",
    "BuildResult",
    "CommonOptions",
    "DatasetError",
    "DatasetMismatchError",
    "DatasetReport",
    "DatasetValidationError",
    "DiskFullError",
    "IncompleteBuildError",
    "ShardAssignment",
    "StreamingVectorDataset",
    "VectorDataset",
    "assignment_from_environment",
    "atomic_spans",
    "build_article_sequences",
    "build_atomic",
    "build_n_to_one",
    "collate_vectors",
    "load_pairs",
    "load_sequences",
    "select_windows",
    "validate_dataset",
]
