"""The Anatomy Laboratory's data: which samples of a raw run are kept, and their matrices and gaps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vbert.finesse.leaderboard.codec import MATRIX_SCALE, encode_matrix
from vbert.finesse.leaderboard.entries import LeaderboardError
from vbert.finesse.metrics import get_metric
from vbert.finesse.metrics.rss import sample_anatomy, similarity_matrix
from vbert.finesse.raw import RawRun

DEFAULT_ANATOMY_SAMPLES = 5


def pick_samples(scores: Sequence[float], limit: int) -> list[int]:
    """Up to ``limit`` sample indices (0 = all), always including the best and the worst."""
    best, worst = int(np.argmax(scores)), int(np.argmin(scores))
    if limit <= 0 or limit >= len(scores):
        return list(range(len(scores)))
    chosen = {best, worst}
    for index in range(len(scores)):
        if len(chosen) >= max(limit, 2):
            break
        chosen.add(index)
    return sorted(chosen)


def _rounded(detail: dict[str, Any], decimals: int = 6) -> dict[str, Any]:
    # The page shows 3–4 decimals; full float precision would double the anatomy files.
    def r(value: float) -> float:
        return round(float(value), decimals) + 0.0

    return {
        "td": r(detail["td"]),
        "bu": r(detail["bu"]),
        "score": r(detail["score"]),
        "td_rows": [[row, r(q1), r(q3), r(gap)] for row, q1, q3, gap in detail["td_rows"]],
        "bu_rows": [[row, r(q1), r(q3), r(gap)] for row, q1, q3, gap in detail["bu_rows"]],
    }


def anatomy_payload(run: RawRun, formula: str, score_version: str, max_samples: int) -> dict[str, Any]:
    """Matrices of up to ``max_samples`` samples per length (0 = all; the best and worst always)."""
    if not get_metric(run.metric).has_matrices:
        raise LeaderboardError(
            f"{run.folder} holds {run.metric} outputs, which record no chunk/synthesis matrices for the "
            "Anatomy Laboratory"
        )
    lengths: dict[str, Any] = {}
    for length in run.lengths:
        arrays = run.arrays(length)
        sims = [similarity_matrix(c, s) for c, s in zip(arrays["chunks"], arrays["synths"], strict=True)]
        details = [sample_anatomy(sim, formula, score_version) for sim in sims]
        scores = [d["score"] for d in details]
        keep = pick_samples(scores, max_samples)
        lengths[str(length)] = {
            "samples_total": len(sims),
            "best": int(np.argmax(scores)),
            "worst": int(np.argmin(scores)),
            "samples": [{"index": i, "matrix": encode_matrix(sims[i]), **_rounded(details[i])} for i in keep],
        }
    return {"formula": formula, "score_version": score_version, "scale": MATRIX_SCALE, "lengths": lengths}


def match_raw(results: dict[str, Any], runs: Sequence[RawRun]) -> RawRun | None:
    """The raw run whose per-length file hashes are exactly the ones ``results`` were scored from."""
    wanted = {str(k): str(v) for k, v in (results.get("raw_files") or {}).items()}
    if not wanted:
        return None
    for run in runs:
        have = {str(k): str(v.get("sha256")) for k, v in run.manifest.get("lengths", {}).items()}
        if have == wanted:
            return run
    return None
