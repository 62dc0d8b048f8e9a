"""Test doubles shared by vbert's tests, benchmarks and dry runs: one copy of each.

Importing this module loads nothing beyond ``import vbert`` (numpy and the standard library) and
builds no model. The heavier doubles live in submodules, imported when they are used:

- :mod:`vbert.testing.toy`: :class:`~vbert.testing.toy.ToyEmbedder` (a seeded random Transformer
  that follows the Embedder protocol to the letter) and ``toy_articles`` (a multilingual corpus).
- :mod:`vbert.testing.tiny_models`: tiny random BERT folders with a real tokenizer, tiny E5S1
  files, and tiny ``SequenceMergerModel`` builders.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from vbert.registry import Registry

TOPICS = (
    "star orbit planet comet galaxy nebula telescope moon sun eclipse",
    "bread flour oven butter salt pepper onion garlic soup spoon",
    "boat wind mast rope harbor anchor wave tide deck keel",
    "python compiler function loop variable module test bug stack heap",
    "cow barn tractor wheat field fence goat seed harvest soil",
    "piano violin chord melody rhythm tempo choir drum scale note",
)


class WordHashEmbedder:
    """Whitespace 'tokens'; a text's vector is the normalised sum of fixed per-word random vectors.

    Deterministic across processes and fast: good enough to test chunking, caching, merging and the
    benchmark pipelines. Words past ``content_window`` are dropped, like a real model's window.
    ``calls`` counts ``encode`` calls, ``texts`` the texts embedded, ``counts`` each text.
    """

    def __init__(
        self,
        dim: int = 16,
        content_window: int = 60,
        name: str = "word-hash",
        fingerprint: str | None = None,
        max_tokens: int | None = None,
    ) -> None:
        self.name = name
        self.dim = dim
        self.content_window = content_window
        self.max_tokens = content_window + 4 if max_tokens is None else max_tokens
        self.fingerprint = fingerprint or hashlib.sha256(f"{name}:{content_window}".encode()).hexdigest()[:16]
        self.calls = 0
        self.texts = 0
        self.counts: Counter[str] = Counter()
        self._vectors: dict[str, np.ndarray] = {}

    def _word(self, word: str) -> np.ndarray:
        if word not in self._vectors:
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
            self._vectors[word] = np.random.default_rng(seed).standard_normal(self.dim)
        return self._vectors[word]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        self.counts.update(texts)
        out = np.zeros((len(texts), self.dim))  # (texts, dim)
        for row, text in enumerate(texts):
            for word in text.split()[: self.content_window]:
                out[row] += self._word(word)
        return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self.encode(texts, batch_size)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def split(self, text: str, max_tokens: int) -> list[str]:
        words = text.split()
        return [" ".join(words[i : i + max_tokens]) for i in range(0, len(words), max_tokens)]


class CountingEmbedder:
    """Wraps an embedder and counts how often each text is embedded (``counts``) and how often its
    tokenizer runs (``tokenised``: calls of ``count_tokens`` and ``split``)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()
        self.tokenised = 0
        for attr in ("name", "dim", "max_tokens", "content_window", "fingerprint", "prefix"):
            if hasattr(inner, attr):
                setattr(self, attr, getattr(inner, attr))

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.counts.update(texts)
        return self.inner.encode(texts, batch_size)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self.encode(texts, batch_size)

    def count_tokens(self, text: str) -> int:
        self.tokenised += 1
        return self.inner.count_tokens(text)

    def split(self, text: str, max_tokens: int) -> list[str]:
        self.tokenised += 1
        return self.inner.split(text, max_tokens)


class DecayMerger:
    """Order-aware fake merger: a position-decayed sum of the chunk vectors plus ``mix`` · tanh(sum).

    ``merge`` is written independently of ``merge_batch`` (a loop over one sequence), so tests that
    compare batched prefix merges with one-by-one merges compare two codes.
    """

    def __init__(
        self,
        decay: float = 0.7,
        mix: float = 0.1,
        name: str = "decay-merger",
        fingerprint: str = "decay-merger-v1",
    ) -> None:
        self.decay = decay
        self.mix = mix
        self.name = name
        self.fingerprint = fingerprint

    def merge(self, embeddings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float64)  # (chunks, dim)
        total = np.zeros(x.shape[1])
        for i, row in enumerate(x):
            total += self.decay**i * row
        total = total + self.mix * np.tanh(x.sum(axis=0))
        return (total / np.linalg.norm(total)).astype(np.float32)

    def merge_batch(
        self, embeddings: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float64)  # (batch, chunks, dim)
        m = np.asarray(mask, dtype=np.float64)  # (batch, chunks)
        decay = self.decay ** np.arange(x.shape[1])[None, :] * m
        total = (x * decay[..., None]).sum(axis=1) + self.mix * np.tanh((x * m[..., None]).sum(axis=1))
        return (total / np.linalg.norm(total, axis=1, keepdims=True)).astype(np.float32)


def write_topic_corpus(
    folder: Path, n_docs: int, words_per_doc: int = 30, seed: int = 0, topics: int = len(TOPICS)
) -> Path:
    """``n_docs`` text files, each mostly from one topic's vocabulary plus document-specific words."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        vocab = TOPICS[i % topics].split() + [f"w{i}x{k}" for k in range(6)]
        words = rng.choice(vocab, size=words_per_doc)
        (folder / f"doc{i:04d}.txt").write_text(" ".join(words) + "\n", encoding="utf-8")
    return folder


@contextmanager
def undo_registrations(registry: Registry, module: str) -> Iterator[None]:
    """On exit, forget ``module`` and whatever was registered in ``registry`` meanwhile.

    For tests of the toy extensions, which register when imported: their names must not leak
    into what other tests see (the CLI's help, ``baseline_names()``), and a later import must
    register again.
    """
    before = dict(registry.items())
    try:
        yield
    finally:
        sys.modules.pop(module, None)
        registry._entries.clear()
        registry._entries.update(before)
