"""Shared fixtures: a deterministic fake embedder for fast pipeline tests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.tiny_models import save_tiny_model

from vbert.embedders import TransformersEmbedder

torch.set_num_threads(min(2, os.cpu_count() or 1))


class FakeEmbedder:
    """Whitespace 'tokens'; a text's vector is the normalised sum of per-word random vectors.

    Deterministic across processes, fast, and good enough to test chunking, caching and merging logic.
    """

    name = "fake-embedder"
    max_tokens = 64
    content_window = 60

    def __init__(self, dim: int = 16) -> None:
        self.dim = dim
        self.fingerprint = f"fake-{dim}"
        self.calls = 0

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self.dim)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.calls += 1
        out = np.stack([sum((self._word(w) for w in t.split()), np.zeros(self.dim)) for t in texts])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self.encode(texts, batch_size)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def split(self, text: str, max_tokens: int) -> list[str]:
        words = text.split()
        return [" ".join(words[i : i + max_tokens]) for i in range(0, len(words), max_tokens)]


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT (32-d, 128-token window) with a real tokenizer, saved once per session."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_embedder(tiny_model_dir: Path) -> TransformersEmbedder:
    return TransformersEmbedder(tiny_model_dir, device="cpu", name="tiny")
