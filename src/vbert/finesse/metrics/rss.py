"""Robust Separation Score (RSS): Top-Down, Bottom-Up and the per-sample FINESSE score.

For one sample of L ≥ 3 chunks with chunk vectors c_0..c_{L-1} and cumulative syntheses
s_0..s_{L-1} (s_i merges c_0..c_i), let T[i, j] = cos(s_i, c_j).

* **Top-Down** asks every synthesis whether it remembers the chunks it was built from.
  For rows i = 1..L-2 (first and last synthesis skipped), memory X_i = {T[i, j] : j ≤ i},
  noise Y_i = {T[i, j] : j > i}; the row gap is Q0.25(X_i) − Q0.75(Y_i) (``q1q3``) or
  median(X_i) − median(Y_i) (``q2q2``). TD is the mean of the row gaps.
* **Bottom-Up** asks every chunk whether it recognises the syntheses that contain it.
  For anchors a = 1..L-1 (only the first is skipped), memory = {T[k, a] : k ≥ a}, noise =
  {T[k, a] : k < a}; same gap rule; BU is the mean over anchors.
* **Score** per sample, two named versions: ``balanced`` (the published FINESSE formula)
  = ((TD + BU)/2 − |TD − BU|) × 500 and ``sum`` (the reference's later formula)
  = (TD + BU) × 500.

Quantiles interpolate linearly (numpy's default); cosines are computed in float64. There
is no normalisation: gaps are raw cosine differences in [−2, 2].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vbert.embedders.base import Embedder
from vbert.finesse.batching import single_merges, truncate_to_window
from vbert.finesse.environment import timed
from vbert.finesse.metrics import METRICS, Column, FinesseMetric, GenerationSettings, LengthScore
from vbert.finesse.metrics.base import FORMULAS, quartile_gap, rounded, rounded_list
from vbert.mergers import Merger, prefix_merges

SCORE_VERSIONS: tuple[str, ...] = ("balanced", "sum")
SCORE_SCALE = 500.0


def to_numpy(x: Any, name: str = "array") -> np.ndarray:
    """Return ``x`` (numpy array, torch tensor or nested list) as a float64 numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor; avoids importing torch here
        x = x.detach().cpu().float().numpy()
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf values; check the embedder and merger outputs")
    return arr


def unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    """L2-normalise the rows of a float64 matrix, refusing zero vectors (their cosine is undefined)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name} contains an all-zero vector: its cosine similarity is undefined")
    return x / norms


def similarity_matrix(chunks: Any, synths: Any) -> np.ndarray:
    """T[i, j] = cos(s_i, c_j) in float64 for chunks and syntheses of shape (L, d)."""
    c = to_numpy(chunks, "chunks")
    s = to_numpy(synths, "synths")
    if c.ndim != 2 or s.ndim != 2:
        raise ValueError(f"chunks and synths must be 2-D (L, dim) arrays, got shapes {c.shape} and {s.shape}")
    if c.shape != s.shape:
        raise ValueError(
            f"chunks {c.shape} and synths {s.shape} must have the same shape: one synthesis per prefix"
        )
    if c.shape[0] < 3:
        raise ValueError(f"a sample needs at least 3 chunks for Top-Down and Bottom-Up, got {c.shape[0]}")
    return unit_rows(s, "synths") @ unit_rows(c, "chunks").T


@dataclass(frozen=True)
class Gaps:
    """Per-row Top-Down gaps (rows 1..L-2) and per-anchor Bottom-Up gaps (anchors 1..L-1)."""

    td_rows: tuple[int, ...]
    td_gaps: tuple[float, ...]
    bu_anchors: tuple[int, ...]
    bu_gaps: tuple[float, ...]

    @property
    def td(self) -> float:
        return float(np.mean(self.td_gaps)) if self.td_gaps else 0.0

    @property
    def bu(self) -> float:
        return float(np.mean(self.bu_gaps)) if self.bu_gaps else 0.0


def gaps_from_matrix(sim: np.ndarray, formula: str = "q1q3") -> Gaps:
    """All Top-Down and Bottom-Up gaps of a similarity matrix T[i, j] = cos(s_i, c_j)."""
    n = sim.shape[0]
    td_rows = tuple(range(1, n - 1))
    td_gaps = tuple(quartile_gap(sim[i, : i + 1], sim[i, i + 1 :], formula) for i in td_rows)
    bu_anchors = tuple(range(1, n))
    bu_gaps = tuple(quartile_gap(sim[a:, a], sim[:a, a], formula) for a in bu_anchors)
    return Gaps(td_rows, td_gaps, bu_anchors, bu_gaps)


def sample_gaps(chunks: Any, synths: Any, formula: str = "q1q3") -> Gaps:
    """Top-Down and Bottom-Up gaps of one sample (chunks and synths of shape (L, d))."""
    if formula not in FORMULAS:
        raise ValueError(f"unknown formula {formula!r}; use one of {FORMULAS}")
    return gaps_from_matrix(similarity_matrix(chunks, synths), formula)


def top_down(chunks: Any, synths: Any, formula: str = "q1q3") -> float:
    """Top-Down score: mean over rows i = 1..L-2 of the memory/noise gap of synthesis s_i.

    Args:
        chunks: (L, d) chunk vectors c_j (numpy array or torch tensor), L ≥ 3.
        synths: (L, d) cumulative syntheses s_i = merge(c_0..c_i).
        formula: ``"q1q3"`` (Q0.25(memory) − Q0.75(noise)) or ``"q2q2"`` (median − median).
    """
    return sample_gaps(chunks, synths, formula).td


def bottom_up(chunks: Any, synths: Any, formula: str = "q1q3") -> float:
    """Bottom-Up score: mean over anchors a = 1..L-1 of the gap between {cos(c_a, s_k): k ≥ a}
    (memory) and {cos(c_a, s_k): k < a} (noise). Arguments as :func:`top_down`."""
    return sample_gaps(chunks, synths, formula).bu


def sample_score(td: float, bu: float, version: str = "balanced") -> float:
    """Per-sample score: ``balanced`` = ((TD+BU)/2 − |TD−BU|) × 500, ``sum`` = (TD+BU) × 500."""
    if version == "balanced":
        return ((td + bu) / 2.0 - abs(td - bu)) * SCORE_SCALE
    if version == "sum":
        return (td + bu) * SCORE_SCALE
    raise ValueError(f"unknown score version {version!r}; use one of {SCORE_VERSIONS}")


def _quantile(values: list[float], q: float) -> float:
    """numpy's default (linear) quantile, including its interpolation rule, on a small list.

    ~100× faster than ``np.quantile`` on the short rows of a similarity matrix, which matters for
    leaderboard runs with thousands of rows.
    """
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    lo = int(h)
    hi = min(lo + 1, len(ordered) - 1)
    a, b, t = ordered[lo], ordered[hi], h - lo
    return b - (b - a) * (1.0 - t) if t >= 0.5 else a + (b - a) * t


def sample_anatomy(sim: np.ndarray, formula: str, score_version: str) -> dict[str, Any]:
    """Scores, per-row quartiles and gaps of one sample's similarity matrix T[i, j] = cos(s_i, c_j).

    ``td_rows`` holds ``[i, Q(memory), Q(noise), gap]`` for the scored Top-Down rows i = 1..L−2
    (memory j ≤ i) and ``bu_rows`` the same for the Bottom-Up anchors a = 1..L−1 (memory: the
    syntheses k ≥ a); Q is Q0.25/Q0.75 for ``q1q3`` and the median for ``q2q2``, exactly as
    :func:`gaps_from_matrix` defines them (the tests check the two agree).
    """
    if formula not in FORMULAS:
        raise ValueError(f"unknown formula {formula!r}; use one of {FORMULAS}")
    q_memory, q_noise = (0.25, 0.75) if formula == "q1q3" else (0.5, 0.5)
    rows = np.asarray(sim, dtype=np.float64).tolist()
    cols = np.asarray(sim, dtype=np.float64).T.tolist()
    n = len(rows)
    td_rows, bu_rows = [], []
    for i in range(1, n - 1):
        memory, noise = _quantile(rows[i][: i + 1], q_memory), _quantile(rows[i][i + 1 :], q_noise)
        td_rows.append([i, memory, noise, memory - noise])
    for a in range(1, n):
        memory, noise = _quantile(cols[a][a:], q_memory), _quantile(cols[a][:a], q_noise)
        bu_rows.append([a, memory, noise, memory - noise])
    td = float(np.mean([r[3] for r in td_rows])) if td_rows else 0.0
    bu = float(np.mean([r[3] for r in bu_rows])) if bu_rows else 0.0
    return {
        "td": td,
        "bu": bu,
        "score": sample_score(td, bu, score_version),
        "td_rows": td_rows,
        "bu_rows": bu_rows,
    }


def _latencies(values: Any) -> list[float | None]:
    """Rounded latencies; an untimed sample (NaN, see ``runtime.timed_samples``) becomes None."""
    return [None if np.isnan(v) else rounded(v) for v in np.asarray(values, dtype=np.float64)]


def _median(values: list[float | None]) -> float | None:
    timed_values = [v for v in values if v is not None]
    return rounded(np.median(timed_values)) if timed_values else None


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


@METRICS.register("rss")
class RSS(FinesseMetric):
    """Top-Down and Bottom-Up on the cumulative syntheses of L chunks; also records latency."""

    name = "rss"
    title = "Robust Separation Score (Top-Down / Bottom-Up)"
    description = (
        "Does a cumulative synthesis stay closer to the chunks it was built from than to the chunks "
        "that follow (Top-Down), and does each chunk stay closer to the syntheses containing it than "
        "to those before it (Bottom-Up)?"
    )
    main_score = "mean per-sample score over all evaluated lengths"
    score_scale = SCORE_SCALE
    uses_score_version = True
    score_versions = SCORE_VERSIONS
    has_matrices = True
    ranked = True

    def generate_merger(
        self, merger: Merger, stored: dict[str, np.ndarray], settings: GenerationSettings
    ) -> dict[str, np.ndarray]:
        """Chunks (S, L, d), syntheses s_i = merge(c_0..c_i) (S, L, d) and latencies (S,)."""
        embeddings, n_tokens = stored["embeddings"], stored["n_tokens"]
        for _ in range(settings.warmup):
            merger.merge(embeddings[0], n_tokens[0])
            prefix_merges(merger, embeddings[0], n_tokens[0])
        chunks, synths, merge_ms = [], [], []
        for vectors, weights in zip(embeddings, n_tokens, strict=True):
            _, ms = timed(lambda v=vectors, w=weights: merger.merge(v, w))
            merge_ms.append(ms)
            synths.append(prefix_merges(merger, vectors, weights))
            in_base_space = settings.chunk_space == "base"
            chunks.append(vectors if in_base_space else single_merges(merger, vectors, weights))
            settings.on_sample()
        merge = np.asarray(merge_ms, dtype=np.float64)
        return {
            "chunks": np.stack(chunks).astype(np.float32),
            "synths": np.stack(synths).astype(np.float32),
            "latency_full_ms": stored["embed_ms"] + merge,
            "latency_merge_ms": merge,
        }

    def native_overflow(
        self, embedder: Embedder, texts: Sequence[Sequence[str]], settings: GenerationSettings
    ) -> tuple[int, int]:
        counts = [embedder.count_tokens(" ".join(sample)) for sample in texts]
        return sum(c > embedder.content_window for c in counts), max(counts)

    def generate_native(
        self, embedder: Embedder, texts: Sequence[Sequence[str]], settings: GenerationSettings
    ) -> dict[str, np.ndarray]:
        """Chunks embedded alone, syntheses = the joined prefix texts embedded, latency of the full text."""
        batch = settings.batch_size
        for _ in range(settings.warmup):
            embedder.encode([" ".join(texts[0])], batch_size=1)
        chunks, synths, latency = [], [], []
        for sample in texts:
            prefixes = [" ".join(sample[: i + 1]) for i in range(len(sample))]
            if settings.truncate:
                prefixes, _ = truncate_to_window(embedder, prefixes)
            chunks.append(np.asarray(embedder.encode(list(sample), batch_size=batch), dtype=np.float32))
            synths.append(np.asarray(embedder.encode(prefixes, batch_size=batch), dtype=np.float32))
            _, ms = timed(lambda text=prefixes[-1]: embedder.encode([text], batch_size=1))
            latency.append(ms)
            settings.on_sample()
        ms_array = np.asarray(latency, dtype=np.float64)
        return {
            "chunks": np.stack(chunks),
            "synths": np.stack(synths),
            "latency_full_ms": ms_array,
            "latency_merge_ms": ms_array.copy(),
        }

    def score_length(self, arrays: dict[str, np.ndarray], formula: str, score_version: str) -> LengthScore:
        """Per-sample TD, BU, scores and latencies of one length, with their means and medians."""
        tds, bus, scores = [], [], []
        for chunks, synths in zip(arrays["chunks"], arrays["synths"], strict=True):
            gaps = sample_gaps(chunks, synths, formula)
            tds.append(gaps.td)
            bus.append(gaps.bu)
            scores.append(sample_score(gaps.td, gaps.bu, score_version))
        full = _latencies(arrays["latency_full_ms"])
        merge = _latencies(arrays["latency_merge_ms"])
        entry = {
            "samples": len(scores),
            "scores": rounded_list(scores),
            "td": rounded_list(tds),
            "bu": rounded_list(bus),
            "latency_full_ms": full,
            "latency_merge_ms": merge,
            "mean_score": rounded(np.mean(scores)),
            "mean_td": rounded(np.mean(tds)),
            "mean_bu": rounded(np.mean(bus)),
            "median_latency_full_ms": _median(full),
            "median_latency_merge_ms": _median(merge),
        }
        return LengthScore(entry, {"score": scores, "td": tds, "bu": bus, "full": full, "merge": merge})

    def summary(self, scored: dict[int, LengthScore]) -> dict[str, Any]:
        def pooled(key: str) -> list[Any]:
            return [value for length in scored.values() for value in length.pooled[key]]

        return {
            "mean_score": rounded(np.mean(pooled("score"))),
            "mean_td": rounded(np.mean(pooled("td"))),
            "mean_bu": rounded(np.mean(pooled("bu"))),
            "median_latency_full_ms": _median(pooled("full")),
            "median_latency_merge_ms": _median(pooled("merge")),
        }

    def columns(self) -> list[Column]:
        return [
            Column("score", lambda e: f"{e['mean_score']:.3f}", lambda s: f"**{s['mean_score']:.3f}**"),
            Column("TD", lambda e: f"{e['mean_td']:.4f}", lambda s: f"{s['mean_td']:.4f}"),
            Column("BU", lambda e: f"{e['mean_bu']:.4f}", lambda s: f"{s['mean_bu']:.4f}"),
            Column(
                "median full ms",
                lambda e: _ms(e["median_latency_full_ms"]),
                lambda s: _ms(s["median_latency_full_ms"]),
            ),
            Column(
                "median merge ms",
                lambda e: _ms(e["median_latency_merge_ms"]),
                lambda s: _ms(s["median_latency_merge_ms"]),
            ),
        ]

    def comparison_rows(self, summaries: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
        return [
            (title, [_ms(s.get(key)) for s in summaries])
            for key, title in (
                ("median_latency_full_ms", "median full ms"),
                ("median_latency_merge_ms", "median merge ms"),
            )
        ]

    def leaderboard_fields(
        self, results: dict[str, Any], number: Callable[[Any, str], float | None], where: str
    ) -> dict[str, Any]:
        summary = results["summary"]
        keys = {
            "td": "mean_td",
            "bu": "mean_bu",
            "latency_full_ms": "median_latency_full_ms",
            "latency_merge_ms": "median_latency_merge_ms",
        }
        return {field: number(summary.get(key), f"{where} summary.{key}") for field, key in keys.items()}
