"""Fixtures for the leaderboard and lab tests: a tiny real benchmark run (fake embedder and
merger through the Finesse pipeline), and headless Chromium from the system packages.

Browser tests use Debian's ``chromium`` (never a browser downloaded by a test tool). Without
it, or without the ``playwright`` package, they are skipped with the reason, unless the
environment variable ``CI`` is set, in which case they fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

DIM = 24
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
TOPICS = [
    "star orbit planet comet galaxy nebula telescope moon",
    "bread flour oven butter salt pepper onion garlic",
    "boat wind mast rope harbor anchor wave tide",
    "python compiler function loop variable module stack heap",
    "cow barn tractor wheat field fence goat seed",
]


class WordEmbedder:
    """Whitespace tokens; a text is the normalised sum of fixed per-word random vectors."""

    def __init__(self, content_window: int = 64, name: str = "words") -> None:
        self.name = name
        self.dim = DIM
        self.content_window = content_window
        self.max_tokens = content_window + 2
        self.fingerprint = hashlib.sha256(f"{name}:{content_window}".encode()).hexdigest()[:16]

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self.dim)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), self.dim))
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


class DecayMerger:
    """Order-aware fake merger: a position-decayed sum of the chunk vectors."""

    name = "decay"
    fingerprint = "decay-v1"

    def merge(self, embeddings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float64)
        return self.merge_batch(x[None], np.ones((1, x.shape[0])))[0]

    def merge_batch(
        self, embeddings: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float64)
        decay = 0.75 ** np.arange(x.shape[1])[None, :] * np.asarray(mask, dtype=np.float64)
        total = (x * decay[..., None]).sum(axis=1)
        return (total / np.linalg.norm(total, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="session")
def fakes() -> SimpleNamespace:
    """The fake embedder and merger classes and the corpus writer, for tests that build their own runs."""
    return SimpleNamespace(WordEmbedder=WordEmbedder, DecayMerger=DecayMerger, write_corpus=write_corpus)


@dataclass
class BenchmarkFixture:
    root: Path
    results: dict[str, Path]  # competitor name -> results.json
    raw: Path

    def load(self, name: str) -> dict:
        return json.loads(self.results[name].read_text(encoding="utf-8"))


def write_corpus(folder: Path, n_docs: int = 80) -> Path:
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        vocab = TOPICS[i % len(TOPICS)].split() + [f"d{i}w{k}" for k in range(5)]
        (folder / f"doc{i:03d}.txt").write_text(" ".join(rng.choice(vocab, size=20)) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def finesse_run(tmp_path_factory: pytest.TempPathFactory) -> BenchmarkFixture:
    """A real (tiny) Finesse run: lengths 4–10, 3 samples, four competitors, one native model
    whose 40-token window leaves lengths 7–10 not evaluated."""
    from vbert.finesse import run_benchmark

    root = tmp_path_factory.mktemp("finesse-run")
    corpus = write_corpus(root / "corpus")
    config = {
        "name": "leaderboard-test",
        "seed": 5,
        "embedder": "default",
        "probes": {
            "file": str(root / "probes.parquet"),
            "source": {"kind": "files", "path": str(corpus)},
            "tokenizer": "default",
            "sequence_length": {"min": 4, "max": 10},
            "samples_per_length": 3,
            "token_per_sample": 6,
            "document_reuse": "across_samples",
        },
        "competitors": [
            {"name": "decay", "kind": "merger", "merger": "default"},
            {"name": "mean", "kind": "mean"},
            {"name": "truncation", "kind": "truncation"},
            {"name": "native", "kind": "native", "embedder": "default"},
        ],
        "runtime": {"batch_size": 8, "warmup": 1, "progress": False},
    }
    embedder = WordEmbedder()
    run = run_benchmark(
        config,
        root / "out",
        embedder=embedder,
        tokenizer=embedder,
        mergers={"decay": DecayMerger()},
        native_embedders={"native": WordEmbedder(content_window=40, name="words-native")},
    )
    return BenchmarkFixture(root=root, results=dict(run.result_files), raw=run.raw_dir)


@pytest.fixture(scope="session")
def tampered(finesse_run: BenchmarkFixture, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the decay results with one number changed after scoring (hash no longer matches)."""
    data = finesse_run.load("decay")
    data["competitor"]["name"] = "decay-edited"
    data["summary"]["mean_score"] = 999.0
    path = tmp_path_factory.mktemp("edited") / "results.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ---------------------------------------------------------------- browser


def chromium_executable() -> str | None:
    override = os.environ.get("VBERT_CHROMIUM")
    if override:
        return override if Path(override).is_file() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return shutil.which("chromium")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(
            f"{reason}; browser tests must run in CI (apt-get install chromium; pip install playwright)"
        )
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser_context() -> Iterator[object]:
    """A headless Chromium (system package) driven by Playwright, with a fresh profile folder."""
    executable = chromium_executable()
    if executable is None:
        _unavailable("Debian's chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable(
            "the playwright package is not installed (pip install playwright; no browser download needed)"
        )
    profile = tempfile.mkdtemp(prefix="vbert-chromium-")
    try:
        with sync_playwright() as driver:
            context = driver.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 1280, "height": 900},
            )
            yield context
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Browser:
    page: object
    errors: list[str]
    requests: list[str]


@pytest.fixture
def browser(browser_context) -> Iterator[Browser]:
    """A fresh page that records script errors and every URL it requests; other hosts are refused."""
    page = browser_context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))

    def route(route) -> None:
        url = route.request.url
        requests.append(url)
        if url.startswith(("file://", "http://127.0.0.1", "data:")):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", route)
    yield Browser(page, errors, requests)
    page.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def screenshot(screenshot_dir: Path):
    def take(page, name: str) -> Path:
        path = screenshot_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        assert path.stat().st_size > 5000
        return path

    return take
