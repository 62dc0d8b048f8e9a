"""Synthetic vector datasets for tests, CI and smoke runs: ``synthetic:<kind>?key=value&...``.

* ``synthetic:articles?n=64&dim=32&min_len=4&max_len=24&seed=0`` — a sequence dataset.
  Each article is a slow random walk around its own topic direction, plus a direction
  shared by all articles (real embeddings are anisotropic: unrelated texts still have a
  high cosine). Neighbouring chunks are similar, other articles' chunks are not, so
  masked chunks can be predicted from context and spliced histories can be detected.
* ``synthetic:pairs?...`` (same keys) — an n-to-1 dataset: the inputs are an article's
  chunks and the target is the normalised, front-weighted sum ``Σ 0.75^k c_k``, which mean
  pooling only approximates (cosine about 0.97, like real embedders) and a position-aware
  merger can learn.

The data are a pure function of the spec, whose hash is the dataset fingerprint.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from vbert.errors import ConfigError

from .data import PairDataset, TrainingDataset, VectorSequenceDataset

DEFAULTS: dict[str, int] = {"n": 64, "dim": 32, "min_len": 4, "max_len": 24, "seed": 0}
KINDS = ("articles", "pairs")


def parse_spec(spec: str) -> tuple[str, dict[str, int]]:
    """Split ``synthetic:<kind>?k=v&...`` into the kind and its integer parameters (defaults filled in)."""
    parts = urlsplit(spec)
    if parts.scheme != "synthetic" or parts.path not in KINDS:
        raise ConfigError(
            f"bad synthetic dataset {spec!r}: write synthetic:articles?... or synthetic:pairs?..."
        )
    params = dict(DEFAULTS)
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)):
        if key not in DEFAULTS:
            raise ConfigError(f"unknown parameter {key!r} in {spec!r}; known: {sorted(DEFAULTS)}")
        try:
            params[key] = int(value)
        except ValueError as err:
            raise ConfigError(f"parameter {key}={value!r} in {spec!r} must be an integer") from err
    if params["n"] < 1 or params["dim"] < 2 or not 1 <= params["min_len"] <= params["max_len"]:
        raise ConfigError(f"{spec!r} needs n >= 1, dim >= 2 and 1 <= min_len <= max_len")
    return parts.path, params


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _articles(rng: np.random.Generator, n: int, dim: int, min_len: int, max_len: int) -> list[np.ndarray]:
    shared = _unit(rng.standard_normal(dim))
    articles = []
    for _ in range(n):
        length = int(rng.integers(min_len, max_len + 1))
        topic = _unit(rng.standard_normal(dim))
        drift = np.zeros(dim)
        chunks = np.empty((length, dim))
        for k in range(length):
            drift = 0.7 * drift + 1.5 * rng.standard_normal(dim) / np.sqrt(dim)
            chunks[k] = 0.8 * shared + topic + drift
        articles.append(_unit(chunks).astype(np.float32))
    return articles


def synthetic_dataset(spec: str) -> TrainingDataset:
    """Build the dataset a ``synthetic:`` spec describes."""
    kind, params = parse_spec(spec)
    rng = np.random.default_rng(params["seed"])
    articles = _articles(rng, params["n"], params["dim"], params["min_len"], params["max_len"])
    fingerprint = hashlib.sha256(f"{kind}:{sorted(params.items())}".encode()).hexdigest()[:16]
    if kind == "articles":
        dataset: TrainingDataset = VectorSequenceDataset.from_arrays(articles, source=spec)
    else:
        targets = np.stack(
            [_unit((a / (1.0 + np.arange(len(a))[:, None] / 2.0)).sum(axis=0)) for a in articles]
        )
        dataset = PairDataset.from_arrays(articles, targets.astype(np.float32), source=spec)
    dataset.fingerprint = fingerprint
    dataset.metadata = {"synthetic": params, "kind": kind}
    return dataset
