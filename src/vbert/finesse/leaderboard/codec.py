"""Similarity matrices for the page: little-endian int16 of round(cos × 32767), in base64.

That is a resolution of 3·10⁻⁵ (the page shows 3–4 decimals) at an eighth of float64's size.
"""

from __future__ import annotations

import base64

import numpy as np

MATRIX_SCALE = 32767


def encode_matrix(sim: np.ndarray) -> str:
    """Base64 of the little-endian int16 of round(sim × MATRIX_SCALE), row-major."""
    quantised = np.clip(
        np.rint(np.asarray(sim, dtype=np.float64) * MATRIX_SCALE), -MATRIX_SCALE, MATRIX_SCALE
    )
    return base64.b64encode(quantised.astype("<i2").tobytes()).decode("ascii")


def decode_matrix(text: str, length: int) -> np.ndarray:
    """Inverse of :func:`encode_matrix` (what the page's JavaScript does)."""
    values = np.frombuffer(base64.b64decode(text), dtype="<i2").astype(np.float64) / MATRIX_SCALE
    return values.reshape(length, length)
