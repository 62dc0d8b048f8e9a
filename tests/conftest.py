"""Shared fixtures: a deterministic fake embedder for fast pipeline tests, and a tiny real BERT embedder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from vbert.embedders import TransformersEmbedder
from vbert.testing import WordHashEmbedder
from vbert.testing.tiny_models import save_tiny_model

pytest_plugins = ["tests.fixtures.finesse", "tests.fixtures.leaderboard"]

torch.set_num_threads(min(2, os.cpu_count() or 1))

# Fuzz tests explore new random inputs on every local run; CI replays a fixed sequence, so a
# submission's result does not depend on the draw (run `CI=true pytest` to reproduce CI's examples).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def fake_embedder() -> WordHashEmbedder:
    return WordHashEmbedder(16, content_window=60, name="fake-embedder", fingerprint="fake-16", max_tokens=64)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT (32-d, 128-token window) with a real tokenizer, saved once per session."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_embedder(tiny_model_dir: Path) -> TransformersEmbedder:
    return TransformersEmbedder(tiny_model_dir, device="cpu", name="tiny")
