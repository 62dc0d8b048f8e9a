"""The Finesse tests' fake embedder: vbert.testing's word-hashing embedder in its Finesse settings."""

from __future__ import annotations

import pytest

from tests.fixtures.finesse import make_fake_embedder
from vbert.testing import WordHashEmbedder


@pytest.fixture
def fake_embedder() -> WordHashEmbedder:
    return make_fake_embedder()
