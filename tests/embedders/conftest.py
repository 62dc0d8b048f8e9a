"""Fixtures for the embedder tests: a tiny random BERT folder and an embedder over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.tiny_models import save_tiny_model

from vbert.embedders import TransformersEmbedder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BertModel + Unigram tokenizer folder (built once per session)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_embedder(tiny_model_dir: Path) -> TransformersEmbedder:
    """A CPU :class:`TransformersEmbedder` over ``tiny_model_dir`` (E5 prefixes, mean pooling)."""
    return TransformersEmbedder(tiny_model_dir, device="cpu", name="tiny")
