from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.index_corpus import counting_embedder, write_corpus
from vbert.mergers import MeanPoolMerger
from vbert.testing import WordHashEmbedder


@pytest.fixture
def embedder() -> WordHashEmbedder:
    return counting_embedder()


@pytest.fixture
def merger() -> MeanPoolMerger:
    return MeanPoolMerger(weighted=True)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Five markdown files of 12 paragraphs and one text file in a subfolder."""
    return write_corpus(tmp_path / "docs")
