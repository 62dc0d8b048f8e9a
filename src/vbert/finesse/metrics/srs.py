"""SRS (sequence recognition sensitivity) and its Position Bias Index (PBI).

Does a merged vector know the ORDER of its chunks? For a sample of length L there are
L−1 probe chunks e_0..e_{L-2} and ``group_amount`` (G) context groups of L−2 other chunks.
For every p = 2..L−1 the probe vector is P_p = merge(e_0..e_{p−1}); every context group is
cut to its first L−p elements and e_0..e_{p−1} are inserted at every position
pos = 0..L−p, in forward order (a *positive* sequence) and in reversed order (a *negative*
sequence), so every crafted sequence has exactly L elements. Per (p, pos):

    score = (Q0.25(cos(P_p, positives)) − Q0.75(cos(P_p, negatives))) × 1000    (q1q3)
    score = (median(cos to positives) − median(cos to negatives)) × 1000         (q2q2)

over the G groups. PBI = the mean, over every (L, p) with p ≤ L//2, of the population
standard deviation of that (L, p)'s position scores pooled across samples: how much the
score depends on WHERE the probe sits. Merger variant: sequences of base-embedder vectors
merged by the merger; native variant: the chunk texts joined by one space and embedded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from vbert.embedders.base import Embedder
from vbert.finesse.batching import merge_gathered, truncate_to_window, unit
from vbert.finesse.metrics import METRICS, Column, FinesseMetric, GenerationSettings, LengthScore
from vbert.finesse.metrics.base import quartile_gap, rounded, rounded_list
from vbert.mergers import Merger, prefix_merges

SRS_SCALE = 1000.0


def arrangements(length: int) -> np.ndarray:
    """All (p, pos) pairs of one length: p = 2..L−1, pos = 0..L−p. Shape (K, 2)."""
    return np.array([(p, pos) for p in range(2, length) for pos in range(length - p + 1)], dtype=np.int64)


def crafted_index(length: int, group_amount: int) -> np.ndarray:
    """Positions (into a sample's chunk list) of every crafted sequence, shape (K·2·G, L).

    A sample's chunk list holds the L−1 probe chunks, then G context groups of L−2 chunks.
    Rows are ordered by arrangement k, then direction (forward, reversed), then group g.
    """
    probe = np.arange(length - 1)
    rows = []
    for p, pos in arrangements(length):
        for reverse in (False, True):
            inserted = probe[:p][::-1] if reverse else probe[:p]
            for g in range(group_amount):
                context = (length - 1) + g * (length - 2) + np.arange(length - p)
                rows.append(np.concatenate([context[:pos], inserted, context[pos:]]))
    return np.stack(rows).astype(np.int64)


def _cosines(probes: np.ndarray, crafted: np.ndarray, keys: np.ndarray, group_amount: int) -> np.ndarray:
    """cos(P_p, crafted) per arrangement, direction and group: shape (K, 2, G)."""
    p_for_k = unit(probes)[keys[:, 0] - 2]
    v = unit(crafted).reshape(keys.shape[0], 2, group_amount, -1)
    return np.einsum("kd,kjgd->kjg", p_for_k, v)


def native_texts(texts: Sequence[str], length: int, group_amount: int) -> tuple[list[str], list[str]]:
    """Probe texts (p = 2..L−1) and crafted texts (rows of :func:`crafted_index`), joined by one space."""
    probe_texts = [" ".join(texts[:p]) for p in range(2, length)]
    crafted = [" ".join(texts[i] for i in row) for row in crafted_index(length, group_amount)]
    return probe_texts, crafted


def _collect(
    samples: Iterable[tuple[np.ndarray, np.ndarray]], settings: GenerationSettings
) -> dict[str, np.ndarray]:
    """The raw arrays of one length from each sample's (probe vectors (p, d), crafted vectors (K·2·G, d))."""
    keys = arrangements(settings.length)
    probes, pos_cos, neg_cos = [], [], []
    for probe_vectors, crafted in samples:
        cos = _cosines(probe_vectors, crafted, keys, settings.group_amount)
        probes.append(probe_vectors)
        pos_cos.append(cos[:, 0])
        neg_cos.append(cos[:, 1])
        settings.on_sample()
    return {
        "probe": np.stack(probes).astype(np.float32),
        "pos_cos": np.stack(pos_cos).astype(np.float64),
        "neg_cos": np.stack(neg_cos).astype(np.float64),
        "arrangements": keys,
    }


def position_scores(pos_cos: np.ndarray, neg_cos: np.ndarray, formula: str = "q1q3") -> np.ndarray:
    """Per-(p, pos) SRS scores of one sample: cosines (K, G) → scores (K,), × 1000."""
    return np.array(
        [quartile_gap(pos, neg, formula) * SRS_SCALE for pos, neg in zip(pos_cos, neg_cos, strict=True)]
    )


def score_length(arrays: dict[str, np.ndarray], formula: str = "q1q3") -> dict[str, Any]:
    """Per-sample position scores of one length, as {p: [score per position]} per sample."""
    keys = arrays["arrangements"]
    per_sample = []
    for pos_cos, neg_cos in zip(arrays["pos_cos"], arrays["neg_cos"], strict=True):
        scores = position_scores(pos_cos, neg_cos, formula)
        by_p: dict[str, list[float]] = {}
        for (p, _pos), value in zip(keys, scores, strict=True):
            by_p.setdefault(str(int(p)), []).append(float(value))
        per_sample.append(by_p)
    return {"position_scores": per_sample}


def position_bias_index(position_scores_by_length: dict[int, list[dict[str, list[float]]]]) -> float:
    """Mean over (L, p ≤ L//2) of the population std of the position scores pooled across samples."""
    stds = []
    for length, samples in position_scores_by_length.items():
        for p in range(2, length // 2 + 1):
            pooled = [value for sample in samples for value in sample.get(str(p), [])]
            if pooled:
                stds.append(float(np.std(pooled)))
    return float(np.mean(stds)) if stds else 0.0


@METRICS.register("srs")
class SRS(FinesseMetric):
    """Order sensitivity: forward vs reversed insertions of a merged prefix, and its position bias."""

    name = "srs"
    title = "Sequence Recognition Sensitivity and Position Bias Index"
    description = (
        "Is a merge of p chunks closer to sequences holding those chunks in forward order than in "
        "reversed order, wherever they are inserted among other chunks?"
    )
    main_score = "mean (p, position) score over all evaluated lengths"
    score_scale = SRS_SCALE

    def chunks_per_sample(self, length: int, group_amount: int) -> int:
        return (length - 1) + group_amount * (length - 2)

    def run_key_fields(self, group_amount: int) -> dict[str, Any]:
        return {"group_amount": group_amount}

    def generate_merger(
        self, merger: Merger, stored: dict[str, np.ndarray], settings: GenerationSettings
    ) -> dict[str, np.ndarray]:
        """Probe merges P_p and the crafted sequences merged, from base embeddings (S, n_chunks, d)."""
        length = settings.length
        index = crafted_index(length, settings.group_amount)

        def vectors(vecs: np.ndarray, ntok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            probe_vectors = prefix_merges(merger, vecs[: length - 1], ntok[: length - 1])[1:]
            return probe_vectors, merge_gathered(merger, vecs, index, ntok, settings.merge_batch_size)

        pairs = zip(stored["embeddings"], stored["n_tokens"], strict=True)
        return _collect((vectors(*pair) for pair in pairs), settings)

    def native_overflow(
        self, embedder: Embedder, texts: Sequence[Sequence[str]], settings: GenerationSettings
    ) -> tuple[int, int]:
        """(samples with a crafted text over the window, longest token count) for one length."""
        over, longest = 0, 0
        for sample in texts:
            probe_texts, crafted = native_texts(sample, settings.length, settings.group_amount)
            counts = [embedder.count_tokens(t) for t in (*probe_texts, *crafted)]
            longest = max(longest, *counts)
            over += max(counts) > embedder.content_window
        return over, longest

    def generate_native(
        self, embedder: Embedder, texts: Sequence[Sequence[str]], settings: GenerationSettings
    ) -> dict[str, np.ndarray]:
        """Probe texts and crafted texts joined by one space, embedded by the embedder."""

        def vectors(sample: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
            probe_texts, crafted_texts = native_texts(sample, settings.length, settings.group_amount)
            if settings.truncate:
                probe_texts, _ = truncate_to_window(embedder, probe_texts)
                crafted_texts, _ = truncate_to_window(embedder, crafted_texts)
            probe_vectors, crafted = (
                np.asarray(embedder.encode(batch, batch_size=settings.batch_size), dtype=np.float32)
                for batch in (probe_texts, crafted_texts)
            )
            return probe_vectors, crafted

        return _collect((vectors(sample) for sample in texts), settings)

    def score_length(self, arrays: dict[str, np.ndarray], formula: str, score_version: str) -> LengthScore:
        """Per-sample (p, position) SRS scores of one length and their means."""
        positions = score_length(arrays, formula)["position_scores"]
        flat_per_sample = [[v for values in s.values() for v in values] for s in positions]
        every = [v for values in flat_per_sample for v in values]
        entry = {
            "samples": len(flat_per_sample),
            "position_scores": [{p: rounded_list(v) for p, v in s.items()} for s in positions],
            "scores": rounded_list(np.mean(values) for values in flat_per_sample),
            "mean_score": rounded(np.mean(every)),
        }
        return LengthScore(entry, {"every": every, "positions": positions})

    def summary(self, scored: dict[int, LengthScore]) -> dict[str, Any]:
        every = [value for length in scored.values() for value in length.pooled["every"]]
        positions = {length: score.pooled["positions"] for length, score in scored.items()}
        return {"mean_score": rounded(np.mean(every)), "pbi": rounded(position_bias_index(positions))}

    def columns(self) -> list[Column]:
        return [
            Column(
                "SRS",
                lambda e: f"{e['mean_score']:.3f}",
                lambda s: f"**{s['mean_score']:.3f}** (PBI {s['pbi']:.3f})",
            )
        ]

    def comparison_rows(self, summaries: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
        return [("PBI", [f"{s['pbi']:.3f}" for s in summaries])]

    def leaderboard_fields(
        self, results: dict[str, Any], number: Callable[[Any, str], float | None], where: str
    ) -> dict[str, Any]:
        return {"pbi": number(results["summary"].get("pbi"), f"{where} summary.pbi")}
