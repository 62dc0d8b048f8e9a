"""Fakes and fixtures for the Finesse tests: a tiny word-hashing embedder, an order-aware merger,
and a small text corpus. The factories at module level are also used from YAML configs as
``py:<this file>:make_fake_embedder`` etc. (the CLI end-to-end test)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

FAKE_DIM = 32
TOPICS = {
    "astro": "star orbit planet comet galaxy nebula telescope moon sun eclipse",
    "cook": "bread flour oven butter salt pepper onion garlic soup spoon",
    "sail": "boat wind mast rope harbor anchor wave tide deck keel",
    "code": "python compiler function loop variable module test bug stack heap",
    "farm": "cow barn tractor wheat field fence goat seed harvest soil",
    "music": "piano violin chord melody rhythm tempo choir drum scale note",
}


class FakeEmbedder:
    """Whitespace tokens; each word has a fixed random vector; a text is the normalised sum."""

    def __init__(self, content_window: int = 64, name: str = "fake-words") -> None:
        self.name = name
        self.dim = FAKE_DIM
        self.content_window = content_window
        self.max_tokens = content_window + 2
        self.fingerprint = hashlib.sha256(f"{name}:{content_window}".encode()).hexdigest()[:16]
        self.encoded_texts = 0
        self._vectors: dict[str, np.ndarray] = {}

    def _word(self, word: str) -> np.ndarray:
        if word not in self._vectors:
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
            self._vectors[word] = np.random.default_rng(seed).standard_normal(self.dim)
        return self._vectors[word]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.encoded_texts += len(texts)
        out = np.zeros((len(texts), self.dim))
        for row, text in enumerate(texts):
            words = text.split()[: self.content_window]  # the window truncates, like a real model
            for word in words:
                out[row] += self._word(word)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self.encode(texts, batch_size)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def split(self, text: str, max_tokens: int) -> list[str]:
        words = text.split()
        return [" ".join(words[i : i + max_tokens]) for i in range(0, len(words), max_tokens)]


class DecayMerger:
    """Order-aware fake merger: position-decayed weighted sum plus a small nonlinear mix.

    ``merge`` is written independently of ``merge_batch`` (a loop over one sequence), so
    tests comparing the batched prefix merges with one-by-one merges compare two codes.
    """

    name = "decay-merger"
    fingerprint = "decay-merger-v1"

    def __init__(self, decay: float = 0.7) -> None:
        self.decay = decay

    def merge(self, embeddings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float64)
        total = np.zeros(x.shape[1])
        for i, row in enumerate(x):
            total += self.decay**i * row
        total = total + 0.1 * np.tanh(x.sum(axis=0))
        return (total / np.linalg.norm(total)).astype(np.float32)

    def merge_batch(
        self, embeddings: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float64)
        m = np.asarray(mask, dtype=np.float64)
        decay = self.decay ** np.arange(x.shape[1])[None, :] * m
        total = (x * decay[..., None]).sum(axis=1) + 0.1 * np.tanh((x * m[..., None]).sum(axis=1))
        return (total / np.linalg.norm(total, axis=1, keepdims=True)).astype(np.float32)


def make_fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


def make_native_embedder() -> FakeEmbedder:
    """A 'native' long-context fake whose 40-token window fits L·8-token samples up to L = 5."""
    return FakeEmbedder(content_window=40, name="fake-native")


def make_decay_merger() -> DecayMerger:
    return DecayMerger()


def write_corpus(folder: Path, n_docs: int, words_per_doc: int = 30, seed: int = 0) -> Path:
    """``n_docs`` text files, each mostly from one topic's vocabulary plus document-specific words."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    topics = list(TOPICS.values())
    for i in range(n_docs):
        vocab = topics[i % len(topics)].split() + [f"w{i}x{k}" for k in range(6)]
        words = rng.choice(vocab, size=words_per_doc)
        (folder / f"doc{i:04d}.txt").write_text(" ".join(words) + "\n", encoding="utf-8")
    return folder


CONFTEST = Path(__file__).resolve()


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def native_embedder() -> FakeEmbedder:
    return make_native_embedder()


@pytest.fixture
def decay_merger() -> DecayMerger:
    return DecayMerger()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus", 120)


@pytest.fixture
def corpus_factory():
    return write_corpus


@pytest.fixture
def make_config(tmp_path: Path, corpus: Path):
    """Build a tiny benchmark config dict (see :func:`small_config`) in this test's tmp folder."""
    return lambda competitors=None, **overrides: small_config(tmp_path, corpus, competitors, **overrides)


def small_config(
    tmp_path: Path, corpus: Path, competitors: list[dict] | None = None, **overrides: object
) -> dict:
    """A tiny benchmark config dict: lengths 3–6, 2 samples, 8-token chunks, no progress bars."""
    config: dict = {
        "name": "test",
        "seed": 7,
        "embedder": f"py:{CONFTEST}:make_fake_embedder",
        "probes": {
            "file": str(tmp_path / "probes.parquet"),
            "source": {"kind": "files", "path": str(corpus)},
            "tokenizer": f"py:{CONFTEST}:make_fake_embedder",
            "sequence_length": {"min": 3, "max": 6},
            "samples_per_length": 2,
            "token_per_sample": 8,
        },
        "competitors": competitors
        or [
            {"name": "merger", "kind": "merger", "merger": f"py:{CONFTEST}:make_decay_merger"},
            {"name": "mean", "kind": "mean"},
            {"name": "mean-weighted", "kind": "mean-weighted"},
            {"name": "truncation", "kind": "truncation"},
        ],
        "runtime": {"batch_size": 8, "warmup": 1, "progress": False},
    }
    for key, value in overrides.items():
        config[key] = value
    return config
