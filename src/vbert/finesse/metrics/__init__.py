"""Finesse metrics: one class per metric behind :class:`FinesseMetric`, listed in :data:`METRICS`."""

from __future__ import annotations

from vbert.finesse.metrics.base import (
    FORMULAS,
    METRICS,
    Column,
    FinesseMetric,
    GenerationSettings,
    LengthScore,
    get_metric,
)

__all__ = [
    "FORMULAS",
    "METRICS",
    "Column",
    "FinesseMetric",
    "GenerationSettings",
    "LengthScore",
    "get_metric",
]
