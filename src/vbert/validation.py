"""Input checks shared by the mergers: each error names the problem and the fix."""

from __future__ import annotations

import numpy as np


def check_sequence(embeddings: np.ndarray, dim: int | None = None) -> np.ndarray:
    """Validate one sequence of chunk embeddings (n, d) and return it as float32."""
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(
            f"expected one sequence of chunk embeddings with shape (n_chunks, dim), got shape {x.shape}; "
            "use merge_batch for a padded batch (b, n, d)"
        )
    return _check_values(x, dim, "sequence")


def check_batch(
    embeddings: np.ndarray, mask: np.ndarray, dim: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a right-padded batch (b, n, d) and its mask (b, n); return float32 arrays."""
    x = np.asarray(embeddings)
    if x.ndim != 3:
        raise ValueError(f"expected a batch of shape (batch, n_chunks, dim), got shape {x.shape}")
    x = _check_values(x, dim, "batch")
    m = np.asarray(mask)
    if m.shape != x.shape[:2]:
        raise ValueError(
            f"mask has shape {m.shape} but the embeddings need one entry per chunk: {x.shape[:2]} "
            "(1 = real chunk, 0 = padding)"
        )
    if not np.isin(m, (0, 1)).all():
        raise ValueError("mask must hold only 0 (padding) and 1 (real chunk)")
    m = m.astype(np.float32)
    empty = np.flatnonzero(m.sum(axis=1) == 0)
    if empty.size:
        raise ValueError(
            f"rows {empty[:5].tolist()} of the mask are all zeros: every sequence needs at least one "
            "real chunk; drop empty documents before merging"
        )
    if (np.diff(m, axis=1) > 0).any():
        raise ValueError("mask must be right-padded (real chunks first, then padding: 1 1 1 0 0)")
    return x, m


def _check_values(x: np.ndarray, dim: int | None, what: str) -> np.ndarray:
    if not (np.issubdtype(x.dtype, np.floating)):
        raise TypeError(
            f"chunk embeddings must be floating point, got dtype {x.dtype}; "
            "did you pass token ids? convert with .astype(np.float32) only if these really are vectors"
        )
    if x.shape[-2] == 0:
        raise ValueError(f"the {what} has zero chunks: a document must give at least one chunk to merge")
    if dim is not None and x.shape[-1] != dim:
        raise ValueError(
            f"embedding dimension {x.shape[-1]} does not match the merger's {dim}: "
            "use a merger trained for this embedder"
        )
    if not np.isfinite(x).all():
        raise ValueError(f"the {what} contains NaN or inf values; check the embedder output")
    return x.astype(np.float32, copy=False)
