"""Input and output checks shared by every merger, and by the loaders for model names.

Each error names the problem and the fix. Chunk embeddings are checked *after* the cast to
float32, so a float64 value too large for float32 is caught before it becomes infinity; merged
vectors are checked before they are returned, so no merger hands out NaN or a zero vector where
unit vectors are promised.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vbert.errors import ConfigError, DataError

# A Hugging Face repository id: "owner/name" of letters, digits, '-', '_' and '.'.
_HUB_ID = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?/[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$"
)


def check_sequence(embeddings: np.ndarray, dim: int | None = None) -> np.ndarray:
    """Validate one sequence of chunk embeddings (n, d) and return it as float32."""
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise DataError(
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
        raise DataError(f"expected a batch of shape (batch, n_chunks, dim), got shape {x.shape}")
    x = _check_values(x, dim, "batch")
    m = np.asarray(mask)
    if m.shape != x.shape[:2]:
        raise DataError(
            f"mask has shape {m.shape} but the embeddings need one entry per chunk: {x.shape[:2]} "
            "(1 = real chunk, 0 = padding)"
        )
    if not np.isin(m, (0, 1)).all():
        raise DataError("mask must hold only 0 (padding) and 1 (real chunk)")
    m = m.astype(np.float32)
    empty = np.flatnonzero(m.sum(axis=1) == 0)
    if empty.size:
        raise DataError(
            f"rows {empty[:5].tolist()} of the mask are all zeros: every sequence needs at least one "
            "real chunk; drop empty documents before merging"
        )
    if (np.diff(m, axis=1) > 0).any():
        raise DataError("mask must be right-padded (real chunks first, then padding: 1 1 1 0 0)")
    return x, m


def check_weights(weights: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """Per-chunk weights (b, n) for a weighted mean: finite and positive on real chunks (float64)."""
    if weights is None:
        raise DataError(
            "the token-weighted mean needs per-chunk token counts: pass weights=(b, n) "
            "or use MeanPoolMerger(weighted=False)"
        )
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != mask.shape:
        raise DataError(f"weights have shape {w.shape}, expected {mask.shape} (one per chunk)")
    real = w[mask > 0]
    if not np.isfinite(real).all():
        raise DataError("token-count weights contain NaN or infinity; pass the chunks' token counts")
    if (real <= 0).any():
        raise DataError("token-count weights must be positive for real chunks")
    return np.where(mask > 0, w, 0.0)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """L2-normalise the last axis as float32; a row of norm 0 cannot be a unit vector (DataError).

    The norm is taken in float64 when float32 would overflow, so finite but huge inputs still
    give their direction.
    """
    with np.errstate(over="ignore"):
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
    if not np.isfinite(norm).all():
        x = x.astype(np.float64)
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
    zero = np.flatnonzero(norm.reshape(-1) == 0)
    if zero.size:
        raise DataError(
            f"the merged vector of rows {zero[:5].tolist()} is all zeros (the chunk embeddings are zero or "
            "cancel out), so it cannot be normalised to a unit vector; check the embedder output"
        )
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def check_merged(vectors: np.ndarray, merger_name: str, inputs: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Refuse merger output that is not finite or has a zero row, naming the likely cause."""
    v = np.asarray(vectors)
    bad = np.flatnonzero(~np.isfinite(v).all(axis=-1) | (np.abs(v).sum(axis=-1) == 0))
    if bad.size:
        largest = max((float(np.max(np.abs(s))) for s in inputs if np.size(s)), default=float("nan"))
        raise DataError(
            f"merger {merger_name!r} gave NaN, infinite or zero vectors for rows {bad[:5].tolist()}; the "
            f"largest input value is {largest:.3g}, while chunk embeddings are expected to be unit vectors "
            "(norm 1): normalise them first"
        )
    return v


def check_model_name(name: str, *, kind: str, known: Sequence[str]) -> None:
    """Refuse a model name that is neither a registered name, a folder nor a plausible hub id.

    Call it after registered names and existing folders were tried, so that a typo or a missing
    local path gets a clear error instead of a lookup on the Hugging Face hub.
    """
    if _HUB_ID.fullmatch(name) and ".." not in name and "--" not in name:
        return
    looks_local = name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1 or Path(name).suffix
    if looks_local:
        raise ConfigError(f"{kind} {name!r}: no such folder")
    raise ConfigError(
        f"unknown {kind} {name!r}: not a registered name ({', '.join(known)}), not an existing folder, "
        "and not a Hugging Face hub id (owner/name)"
    )


def _check_values(x: np.ndarray, dim: int | None, what: str) -> np.ndarray:
    if not (np.issubdtype(x.dtype, np.floating)):
        raise TypeError(
            f"chunk embeddings must be floating point, got dtype {x.dtype}; "
            "did you pass token ids? convert with .astype(np.float32) only if these really are vectors"
        )
    if x.shape[-2] == 0:
        raise DataError(f"the {what} has zero chunks: a document must give at least one chunk to merge")
    if dim is not None and x.shape[-1] != dim:
        raise DataError(
            f"embedding dimension {x.shape[-1]} does not match the merger's {dim}: "
            "use a merger trained for this embedder"
        )
    with np.errstate(over="ignore"):
        as_float32 = x.astype(np.float32, copy=False)
    if not np.isfinite(as_float32).all():
        cause = (
            "NaN or inf values" if not np.isfinite(x).all() else "values too large for float32 (|x| > 3.4e38)"
        )
        raise DataError(f"the {what} contains {cause}; check the embedder output")
    return as_float32
