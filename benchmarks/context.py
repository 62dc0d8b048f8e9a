"""Sizes of a run (full, quick, or tiny ones for tests) and what every section shares."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vbert.model import SequenceMergerConfig, SequenceMergerModel


@dataclass(frozen=True)
class Settings:
    """How much each section measures. :meth:`full` and :meth:`quick` are the two presets.

    Attributes:
        embedder: ``"default"`` (multilingual-e5-small), ``"tiny"`` (random tiny BERT) or a folder.
        merger: ``None`` for the shipped default merger (or a random one of its size), or a
            :class:`SequenceMergerConfig` for a random merger of that size.
        clock: ``"wall"`` or ``"process"`` (CPU seconds; needs one torch thread).
    """

    embedder: str = "default"
    merger: SequenceMergerConfig | None = None
    clock: str = "wall"
    # 1. merge-only vs cold cost: chunk counts and timed cold runs per count
    cost_chunks: tuple[int, ...] = (4, 16, 64)
    cold_repeats: tuple[int, ...] = (3, 3, 1)
    merge_repeats: int = 20
    embed_batch: int = 32
    # 2. merger efficiency grid
    efficiency_batches: tuple[int, ...] = (1, 8, 64)
    efficiency_chunks: tuple[int, ...] = (4, 16, 64, 256)
    max_repeats: int = 20
    overhead_chunks: tuple[int, ...] = (1, 4, 16)
    # 3. embedding pipeline: documents x chunks with cache misses, and the cached path
    pipeline_documents: int = 4
    pipeline_chunks: int = 4
    pipeline_repeats: int = 3
    cached_documents: int = 64
    cached_chunks: int = 16
    cached_repeats: int = 3
    # 4. training throughput
    train_batch: int = 32
    train_chunks: int = 16
    train_repeats: int = 3
    train_sizes: tuple[str, ...] = ("tiny", "default")
    # 5. memory: documents per streaming `vbert merge` run (small first), the models ("double": a
    # cheap embedder double + mean merger; "tiny": tiny random BERT + random merger), and how many
    # counts also run the old whole-corpus path for comparison
    memory_documents: tuple[int, int] = (10_000, 100_000)
    memory_models: str = "tiny"
    memory_whole_runs: int = 2
    # documents of the in-turns throughput comparison of the streaming and the whole-corpus path
    memory_throughput_documents: int = 20_000
    # timed turns of each path: single runs of either path spread by about ±10% on this machine
    memory_throughput_repeats: int = 7
    # 6. scaling: chunk counts 2**0 .. 2**scaling_max_power
    scaling_max_power: int = 10
    # 7. ONNX vs PyTorch
    onnx_batches: tuple[int, ...] = (1, 64)
    onnx_chunks: tuple[int, ...] = (4, 16, 64)
    # 8. batched prefix merges (Finesse)
    prefix_lengths: tuple[int, ...] = (4, 16, 64, 128)
    prefix_padded: bool = True  # also time the old one-padded-batch way
    # 9. one long window vs chunks: document lengths in windows
    long_context_windows: tuple[int, ...] = (4, 8)
    long_context_repeats: int = 3
    # 10. dataset builds (benchmarks/data_throughput.py) on its toy corpus
    data_articles: int = 2
    data_datasets: tuple[str, ...] = ("articles", "n-to-1", "atomic")

    @classmethod
    def full(cls, **overrides: Any) -> Settings:
        return cls(**overrides)

    @classmethod
    def quick(cls, **overrides: Any) -> Settings:
        quick = {
            "cost_chunks": (16,),
            "cold_repeats": (1,),
            "merge_repeats": 10,
            "efficiency_batches": (1, 8, 64),
            "efficiency_chunks": (4, 16),
            "max_repeats": 5,
            "pipeline_documents": 2,
            "pipeline_chunks": 3,
            "pipeline_repeats": 2,
            "cached_documents": 16,
            "cached_repeats": 2,
            "train_batch": 16,
            "train_chunks": 16,
            "train_repeats": 2,
            "memory_documents": (2_000, 20_000),
            "memory_models": "double",
            "prefix_padded": False,
            "memory_whole_runs": 1,
            "memory_throughput_documents": 5_000,
            "scaling_max_power": 8,
            "onnx_batches": (1, 64),
            "onnx_chunks": (16,),
            "long_context_windows": (4,),
            "long_context_repeats": 1,
            "data_articles": 2,
            "data_datasets": ("articles",),
        }
        return cls(**{**quick, **overrides})

    def to_dict(self) -> dict[str, Any]:
        settings = asdict(self)
        settings["merger"] = None if self.merger is None else self.merger.to_dict()
        return settings


@dataclass
class Context:
    """The models and scratch space every section uses, plus a progress log on stderr."""

    settings: Settings
    embedder: Any
    embedder_note: str
    merger: SequenceMergerModel
    merger_note: str
    scratch: Path
    started: float = field(default_factory=time.perf_counter)

    def log(self, message: str) -> None:
        print(f"[bench {time.perf_counter() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)
