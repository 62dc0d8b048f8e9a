"""Masks and easy synthetic articles for the objectives' tests."""

from __future__ import annotations

import numpy as np
import torch


def mask_of(lengths: list[int], n: int | None = None) -> torch.Tensor:
    n = n or max(lengths)
    return (torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]).long()


def topic_articles(rng: np.random.Generator, count: int, d: int = 16, noise: float = 0.3) -> list[np.ndarray]:
    """Articles whose chunks scatter around one random topic each: easy to tell apart."""
    articles = []
    for _ in range(count):
        x = rng.standard_normal(d) + noise * rng.standard_normal((int(rng.integers(4, 13)), d))
        articles.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
    return articles
