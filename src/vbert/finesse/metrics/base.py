"""The small base every Finesse metric implements, and the registry that lists them.

A metric says what it is (metadata), how a probe sample is laid out (chunks per sample), how
the raw arrays of one length are generated in merger mode and in native mode, how one length
is scored, how the scored lengths add up to a summary, and which columns its tables show.
Everything else (probes, resumable raw folders, hashing, results files, comparison tables,
the leaderboard) is shared and never asks which metric it runs.

Adding a metric is one file plus its registration (see docs/benchmark.md, "Adding a Finesse
metric")::

    @METRICS.register("my-metric")
    class MyMetric(FinesseMetric): ...
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from vbert.embedders.base import Embedder
from vbert.mergers import Merger
from vbert.registry import Registry

DECIMALS = 6
FORMULAS: tuple[str, ...] = ("q1q3", "q2q2")


def rounded(value: float) -> float:
    """A float as results store it: 6 decimals, ``-0.0`` as ``0.0``."""
    return round(float(value), DECIMALS) + 0.0


def rounded_list(values: Any) -> list[float]:
    return [rounded(v) for v in values]


def quartile_gap(memory: np.ndarray, noise: np.ndarray, formula: str) -> float:
    """Q0.25(memory) − Q0.75(noise) for ``q1q3``; median − median for ``q2q2``."""
    if formula == "q1q3":
        return float(np.quantile(memory, 0.25) - np.quantile(noise, 0.75))
    if formula == "q2q2":
        return float(np.median(memory) - np.median(noise))
    raise ValueError(f"unknown formula {formula!r}; use one of {FORMULAS}")


@dataclass(frozen=True)
class Column:
    """One column of a metric's Markdown table: its header and how a length row and the total
    row fill it from a per-length entry and from the summary of ``results.json``."""

    header: str
    cell: Callable[[dict[str, Any]], str]
    total: Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class LengthScore:
    """One scored length: ``entry`` goes into ``results.json``; ``pooled`` holds the unrounded
    per-sample values the summary is computed from."""

    entry: dict[str, Any]
    pooled: dict[str, Any]


def _no_progress() -> None:
    return None


@dataclass(frozen=True)
class GenerationSettings:
    """What generating one length needs besides the models and the texts: the length, the run's
    settings (``truncate``: native texts over the window are cut to it), and ``on_sample``,
    called once per finished sample (it moves the progress bar)."""

    length: int
    chunk_space: str
    group_amount: int
    batch_size: int
    merge_batch_size: int
    warmup: int
    truncate: bool = False
    on_sample: Callable[[], Any] = _no_progress


class FinesseMetric(ABC):
    """Base of every Finesse metric (RSS, SRS, …); subclasses fill the metadata and the methods."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    main_score: ClassVar[str]
    score_scale: ClassVar[float]
    #: Whether ``scoring.score_version`` applies (results record ``null`` otherwise).
    uses_score_version: ClassVar[bool] = False
    score_versions: ClassVar[tuple[str, ...]] = ()
    #: Whether raw outputs hold per-sample chunk/synthesis matrices (``finesse inspect``, Anatomy Laboratory).
    has_matrices: ClassVar[bool] = False
    #: Whether the leaderboard ranks results of this metric in its main table.
    ranked: ClassVar[bool] = False

    @classmethod
    def metadata(cls) -> dict[str, Any]:
        return {
            field: getattr(cls, field)
            for field in ("name", "title", "description", "main_score", "score_scale")
        }

    # -- probes -------------------------------------------------------------------------------
    def chunks_per_sample(self, length: int, group_amount: int) -> int:
        """Chunk texts one probe sample of ``length`` holds."""
        return length

    def run_key_fields(self, group_amount: int) -> dict[str, Any]:
        """Settings besides the probes and models that change this metric's raw outputs."""
        return {"group_amount": None}

    # -- generation ---------------------------------------------------------------------------
    @abstractmethod
    def generate_merger(
        self, merger: Merger, stored: dict[str, np.ndarray], settings: GenerationSettings
    ) -> dict[str, np.ndarray]:
        """Raw arrays of one length in merger mode, from the shared chunk store's arrays
        (``embeddings`` (S, n, d), ``n_tokens`` (S, n), ``embed_ms`` (S,))."""
        ...

    @abstractmethod
    def native_overflow(
        self, embedder: Embedder, texts: Sequence[Sequence[str]], settings: GenerationSettings
    ) -> tuple[int, int]:
        """(samples whose texts exceed the embedder's window, longest token count) for one length."""
        ...

    @abstractmethod
    def generate_native(
        self, embedder: Embedder, texts: Sequence[Sequence[str]], settings: GenerationSettings
    ) -> dict[str, np.ndarray]:
        """Raw arrays of one length in native mode (the embedder on joined chunk texts)."""
        ...

    # -- scoring ------------------------------------------------------------------------------
    @abstractmethod
    def score_length(
        self, arrays: dict[str, np.ndarray], formula: str, score_version: str
    ) -> LengthScore: ...

    @abstractmethod
    def summary(self, scored: dict[int, LengthScore]) -> dict[str, Any]:
        """The summary fields beyond ``samples`` over every scored length (in length order)."""
        ...

    @abstractmethod
    def columns(self) -> list[Column]:
        """The Markdown table's columns after ``L`` and ``samples``."""
        ...

    # -- comparison and leaderboard ------------------------------------------------------------
    def comparison_rows(self, summaries: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
        """Extra rows of ``finesse compare`` below the overall score: (title, one cell per result)."""
        return []

    def leaderboard_fields(
        self, results: dict[str, Any], number: Callable[[Any, str], float | None], where: str
    ) -> dict[str, Any]:
        """Fields a leaderboard entry adds for this metric; ``number`` checks a value is numeric."""
        return {}


#: Every Finesse metric by name; configs, the CLI's help and the scorer read it. Entries are
#: :class:`FinesseMetric` subclasses; ``package.module:Class`` specs work wherever a name does.
METRICS: Registry[type[FinesseMetric]] = Registry(
    "Finesse metric", builtins=("vbert.finesse.metrics.rss", "vbert.finesse.metrics.srs")
)


def get_metric(name: str) -> FinesseMetric:
    """An instance of the metric named ``name`` (or a ``module:Class`` spec)."""
    from vbert.errors import ConfigError

    entry = METRICS.get(name)
    if not (isinstance(entry, type) and issubclass(entry, FinesseMetric)):
        raise ConfigError(f"Finesse metric {name!r} is {entry!r}, not a FinesseMetric subclass")
    return entry()
