"""6. Scaling: merge time of one document against its number of chunks N, with log-log fits.

The merger's work is linear in the encoder length 2N + 1 (projections, MLP) plus a
quadratic attention term, so the fitted exponent is about 1 until attention dominates;
at small N a fixed per-call cost flattens the curve.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.common import measure, merger_flops, unit_vectors
from benchmarks.context import Context
from benchmarks.efficiency import repeats_for

WHAT = "merge time of one document (batch 1) against its number of chunks N"

# Fits over this N and above describe the compute-bound regime.
LARGE_N = 32


def fit_exponent(n_chunks: list[int], seconds: list[float]) -> float | None:
    """Slope of log(seconds) against log(N) by least squares; None with fewer than two points."""
    if len(n_chunks) < 2:
        return None
    slope, _ = np.polyfit(np.log(n_chunks), np.log(seconds), 1)
    return float(slope)


def run(ctx: Context) -> dict[str, Any]:
    merger, settings = ctx.merger, ctx.settings
    config = merger.config
    rows = []
    for power in range(settings.scaling_max_power + 1):
        n_chunks = 2**power
        ctx.log(f"scaling: N = {n_chunks}")
        x = unit_vectors((n_chunks, config.d_model), seed=n_chunks)
        flops = merger_flops(config, 1, n_chunks)
        timing = measure(
            lambda _, x=x: merger.merge(x), repeats=repeats_for(flops, settings.max_repeats), warmup=1
        )
        rows.append(
            {
                "chunks": n_chunks,
                "merge_s": timing.median_s,
                "gflop": flops / 1e9,
                "gflops": flops / timing.median_s / 1e9,
            }
        )
    n = [row["chunks"] for row in rows]
    t = [row["merge_s"] for row in rows]
    large = [(a, b) for a, b in zip(n, t, strict=True) if a >= LARGE_N]
    flop_exponent = fit_exponent(n, [row["gflop"] for row in rows])
    return {
        "what": WHAT,
        "rows": rows,
        "exponent_all": fit_exponent(n, t),
        "exponent_large_n": fit_exponent([a for a, _ in large], [b for _, b in large]),
        "large_n_from": LARGE_N,
        "flop_exponent_all": flop_exponent,
    }
