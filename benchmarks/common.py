"""Shared pieces of the suite: timing, the machine, synthetic documents, FLOP counts, models."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vbert.model import SequenceMergerConfig, SequenceMergerModel

# ---------------------------------------------------------------------------------------------
# Timing


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "process": time.process_time}
_clock = CLOCKS["wall"]


def use_clock(name: str) -> None:
    """Time with ``"wall"`` (elapsed seconds) or ``"process"`` (CPU seconds of this process, every thread).

    On a shared machine the process clock does not count the time other programs hold the
    CPU; with one thread it is the closest to what an idle machine would show.
    """
    global _clock
    if name not in CLOCKS:
        raise ValueError(f"unknown clock {name!r}; choose one of {sorted(CLOCKS)}")
    _clock = CLOCKS[name]


def clock() -> float:
    """The current reading of the clock in use (see :func:`use_clock`)."""
    return _clock()


@dataclass(frozen=True)
class Timing:
    """Seconds of the timed runs (warm-up excluded) and their median, on the clock in use."""

    median_s: float
    min_s: float
    max_s: float
    runs: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def measure(
    run: Callable[[Any], object],
    *,
    repeats: int,
    warmup: int = 1,
    setup: Callable[[], Any] | None = None,
) -> Timing:
    """Time ``run(setup())`` ``repeats`` times after ``warmup`` untimed calls; ``setup`` is not timed."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        run(setup() if setup else None)
    times = []
    for _ in range(repeats):
        state = setup() if setup else None
        start = _clock()
        run(state)
        times.append(_clock() - start)
    return Timing(statistics.median(times), min(times), max(times), len(times))


def measure_interleaved(
    runs: dict[str, Callable[[Any], object]],
    *,
    repeats: int,
    warmup: int = 1,
    setups: dict[str, Callable[[], Any]] | None = None,
) -> dict[str, Timing]:
    """Time alternatives in turns (A, B, A, B, ...), so a change in machine load hits them alike.

    ``setups`` optionally gives, per name, an untimed setup whose result is passed to the run.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    setups = setups or {}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for turn in range(warmup + repeats):
        for name, run in runs.items():
            state = setups[name]() if name in setups else None
            start = _clock()
            run(state)
            if turn >= warmup:
                times[name].append(_clock() - start)
    return {
        name: Timing(statistics.median(values), min(values), max(values), len(values))
        for name, values in times.items()
    }


# ---------------------------------------------------------------------------------------------
# The machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (a noise indicator on a shared machine)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import transformers

    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    flags = ""
    with contextlib.suppress(OSError, StopIteration):
        flags = next(
            line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
        )
    simd = [name for name in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f" {name}" in flags]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": _cpu_model(),
        "cpu_simd": simd,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpu": gpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "onnxruntime": ort_version,
    }


# ---------------------------------------------------------------------------------------------
# Synthetic documents

_SYLLABLES = (
    "ka", "lo", "min", "ter", "sa", "vel", "dor", "pi", "ne", "rus", "tal", "en", "bo", "qui",
    "stra", "ge", "mar", "fen", "ol", "yth", "cro", "da", "li", "um", "se", "par", "no", "vi",
    "ast", "hel", "mo", "re", "zu", "ban", "tor", "cal", "is", "fre", "gol", "ni",
)  # fmt: skip


def pseudo_text(n_words: int, seed: int) -> str:
    """Deterministic text of ``n_words`` made-up words with sentence punctuation.

    The timing of a Transformer does not depend on what the tokens mean, only on how many
    there are; distinct seeds give distinct texts, so the chunk cache never dedupes them.
    """
    rng = random.Random(seed)
    words = []
    for i in range(n_words):
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3)))
        if i % 12 == 11:
            word += rng.choice((".", ",", ";", "?"))
        words.append(word)
    return " ".join(words)


def documents(
    embedder: Any, n_documents: int, n_chunks: int, chunk_tokens: int, seed: int
) -> list[tuple[str, list[str]]]:
    """Documents that each split into exactly ``n_chunks`` full chunks of ``chunk_tokens`` tokens.

    One long text is split once and its pieces are grouped; returns (text, chunks) pairs,
    the chunks as ``embedder.split`` cuts each document.
    """
    probe = pseudo_text(200, seed)
    tokens_per_word = max(embedder.count_tokens(probe) / 200, 0.1)
    needed = n_documents * n_chunks + 1
    n_words = int(needed * chunk_tokens / tokens_per_word * 1.15) + 20
    pieces = embedder.split(pseudo_text(n_words, seed), chunk_tokens)
    if len(pieces) < needed:
        raise RuntimeError(f"generated text gave {len(pieces)} chunks, fewer than the {needed} needed")
    out = []
    for i in range(n_documents):
        text = "".join(pieces[i * n_chunks : (i + 1) * n_chunks])
        chunks = embedder.split(text, chunk_tokens)
        if len(chunks) != n_chunks:
            raise RuntimeError(f"a document meant to have {n_chunks} chunks re-split into {len(chunks)}")
        out.append((text, chunks))
    return out


def unit_vectors(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random float32 unit vectors along the last axis (stand-ins for cached chunk embeddings)."""
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# FLOPs of the merger forward


def sequence_length(config: SequenceMergerConfig, n_chunks: int) -> int:
    """Encoder length for ``n_chunks`` chunks: CLS + both PPE copies (2N + 1), else N + 1."""
    return 2 * n_chunks + 1 if config.position_mode == "ppe" else n_chunks + 1


def merger_matmuls(
    config: SequenceMergerConfig, batch: int, n_chunks: int
) -> list[tuple[str, tuple[int, ...], int, bool]]:
    """The matrix products of one merger forward: (name, (batch dims..., m, k, n), count, transposed).

    A product of shape (..., m, k) @ (..., k, n) costs 2·m·k·n FLOPs per batch element.
    ``transposed``: the right operand is stored as (n, k), like ``nn.Linear`` weights and
    attention keys. Layer norms, GELU, softmax and residual adds are not counted (O(T·d)).
    """
    d, f, h, layers = config.d_model, config.ffn_dim, config.num_heads, config.num_layers
    t = sequence_length(config, n_chunks)
    rows = batch * t
    return [
        ("qkv projection", (rows, d, 3 * d), layers, True),
        ("attention scores QK^T", (batch * h, t, d // h, t), layers, True),
        ("attention values PV", (batch * h, t, t, d // h), layers, False),
        ("output projection", (rows, d, d), layers, True),
        ("MLP up", (rows, d, f), layers, True),
        ("MLP down", (rows, f, d), layers, True),
        ("pooler", (batch, d, d), 1, True),
    ]


def matmul_flops(shape: tuple[int, ...]) -> int:
    *batch, m, k, n = shape
    return 2 * int(np.prod(batch or [1])) * m * k * n


def merger_flops(config: SequenceMergerConfig, batch: int, n_chunks: int) -> int:
    """FLOPs of one merger forward for ``batch`` sequences of ``n_chunks`` real chunks."""
    return sum(matmul_flops(shape) * count for _, shape, count, _ in merger_matmuls(config, batch, n_chunks))


# ---------------------------------------------------------------------------------------------
# Models


def default_size_merger(seed: int = 0) -> tuple[SequenceMergerModel, str]:
    """The shipped default merger if this installation has one, else a random one of its size.

    Returns the model (eval mode, CPU) and a sentence saying which it is.
    """
    from vbert.loading import load_merger

    try:
        merger = load_merger("default")
    except FileNotFoundError:
        return random_merger(SequenceMergerConfig(), seed), (
            "randomly initialised merger of the default config (no shipped default merger in this installation); "
            "timings do not depend on the weights"
        )
    if not isinstance(merger, SequenceMergerModel):
        raise TypeError(f"load_merger('default') gave {type(merger).__name__}, not a SequenceMergerModel")
    return merger, f"shipped default merger ({merger.name}, fingerprint {merger.fingerprint})"


def random_merger(config: SequenceMergerConfig, seed: int = 0) -> SequenceMergerModel:
    """A merger with random weights and a non-zero pooler (so outputs depend on every layer)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SequenceMergerModel(config)
        torch.nn.init.normal_(model.pooler.weight, std=config.initializer_range)
    return model.eval()


def describe_merger(model: SequenceMergerModel) -> dict[str, Any]:
    config = model.config
    return {
        "d_model": config.d_model,
        "num_layers": config.num_layers,
        "num_heads": config.num_heads,
        "ffn_dim": config.ffn_dim,
        "position_mode": config.position_mode,
        "ppe_dim": config.ppe_dim,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def tiny_bert_folder(folder: Path, hidden: int = 32, layers: int = 2, max_tokens: int = 96) -> Path:
    """Write a random BERT with a character-level WordPiece tokenizer into ``folder``.

    A stand-in for the default embedder with the same code path (TransformersEmbedder:
    fast tokenizer, offsets, ``tokenize_batch``/``forward_batch``), small enough for tests.
    """
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *".,;:?!", *letters, *(f"##{c}" for c in letters)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    tokenizer.model_max_length = max_tokens
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=4 * hidden,
        max_position_embeddings=max_tokens,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


def load_bench_embedder(spec: str, scratch: Path) -> tuple[Any, str]:
    """``"default"`` (multilingual-e5-small), ``"tiny"`` (random tiny BERT) or a model folder."""
    from vbert.embedders import TransformersEmbedder, load_embedder

    if spec == "tiny":
        folder = tiny_bert_folder(scratch / "tiny-bert")
        embedder = TransformersEmbedder(folder, name="tiny-random-bert", device="cpu")
        return embedder, "tiny random BERT (2 layers, 32-d, character tokenizer): a code-path stand-in"
    embedder = load_embedder(spec, device="cpu")
    return embedder, f"{embedder.name} ({embedder.dim}-d, {embedder.max_tokens}-token window)"
