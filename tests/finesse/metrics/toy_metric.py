"""A toy Finesse metric in one short file, as docs/benchmark.md ("Adding a Finesse metric") shows.

Recency: is the merge of all L chunks closer to the last chunk than to the first? Importing
this file registers it as ``recency``; a config can also name it ``tests.finesse.metrics.toy_metric:Recency``.
"""

from __future__ import annotations

import numpy as np

from vbert.finesse.batching import unit
from vbert.finesse.metrics import METRICS, Column, FinesseMetric, LengthScore
from vbert.finesse.metrics.base import rounded, rounded_list
from vbert.mergers import merge_sequences


@METRICS.register("recency")
class Recency(FinesseMetric):
    name = "recency"
    title = "Recency bias of the full merge"
    description = "How much closer the merge of all L chunks is to the last chunk than to the first."
    main_score = "mean per-sample (cos(s, c_last) − cos(s, c_first)) × 100"
    score_scale = 100.0

    def generate_merger(self, merger, stored, settings):
        chunks = stored["embeddings"]  # (S, L, d)
        merged = merge_sequences(merger, list(chunks), list(stored["n_tokens"]))  # (S, d)
        for _ in chunks:
            settings.on_sample()
        return {"first": chunks[:, 0], "last": chunks[:, -1], "merged": merged}

    def native_overflow(self, embedder, texts, settings):
        counts = [embedder.count_tokens(" ".join(sample)) for sample in texts]
        return sum(c > embedder.content_window for c in counts), max(counts)

    def generate_native(self, embedder, texts, settings):
        merged = embedder.encode([" ".join(sample) for sample in texts])
        ends = embedder.encode([text for sample in texts for text in (sample[0], sample[-1])])
        for _ in texts:
            settings.on_sample()
        return {"first": ends[0::2], "last": ends[1::2], "merged": merged}

    def score_length(self, arrays, formula, score_version):
        merged = unit(arrays["merged"])
        gaps = (merged * unit(arrays["last"])).sum(1) - (merged * unit(arrays["first"])).sum(1)
        scores = list(gaps * self.score_scale)
        entry = {
            "samples": len(scores),
            "scores": rounded_list(scores),
            "mean_score": rounded(np.mean(scores)),
        }
        return LengthScore(entry, {"score": scores})

    def summary(self, scored):
        return {
            "mean_score": rounded(np.mean([s for length in scored.values() for s in length.pooled["score"]]))
        }

    def columns(self):
        return [Column("recency", lambda e: f"{e['mean_score']:.2f}", lambda s: f"**{s['mean_score']:.2f}**")]
