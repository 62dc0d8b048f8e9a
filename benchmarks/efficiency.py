"""2. Merger efficiency: achieved GFLOP/s of the forward against torch.matmul on the same shapes.

The reference runs exactly the merger's matrix products in forward order (same shapes, each
layer with its own weight matrices, through ``torch.matmul`` into preallocated outputs) and
nothing else, so it moves the same weights through the caches as the forward does.
``efficiency`` = reference time / forward time: the share of the forward that runs at
matmul speed. The rest is layer norms, GELU, softmax, residual adds, PPE, the input checks
and Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from benchmarks.common import (
    Timing,
    measure_interleaved,
    merger_flops,
    merger_matmuls,
    sequence_length,
    unit_vectors,
)
from benchmarks.context import Context
from vbert.model import SequenceMergerConfig, SequenceMergerModel

WHAT = (
    "achieved GFLOP/s of the merger forward (inference mode) against torch.matmul running the same matrix"
    " products alone; efficiency = matmul time / forward time"
)

# Timed runs are scaled so that each cell takes about this many FLOPs in all (within the repeat limits).
_FLOP_BUDGET = 3e10
_MIN_REPEATS = 3
_NO_WARMUP_FLOPS = 5e10


def repeats_for(flops: float, max_repeats: int) -> int:
    return int(min(max_repeats, max(_MIN_REPEATS, _FLOP_BUDGET // max(flops, 1.0))))


def forward_pooled(merger: SequenceMergerModel, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return merger(x, attention_mask=mask).pooler_output


def matmul_program(config: SequenceMergerConfig, batch: int, n_chunks: int) -> Callable[[object], None]:
    """The merger's matrix products in forward order, with distinct right operands per layer."""
    per_layer, once = [], []
    for _, shape, count, transposed in merger_matmuls(config, batch, n_chunks):
        *lead, m, k, n = shape
        left, out = torch.randn(*lead, m, k), torch.empty(*lead, m, n)
        rights = [
            torch.randn(*lead, n, k).transpose(-1, -2) if transposed else torch.randn(*lead, k, n)
            for _ in range(count)
        ]
        (per_layer if count == config.num_layers else once).append((left, rights, out))

    def program(_: object) -> None:
        with torch.inference_mode():
            for layer in range(config.num_layers):
                for left, rights, out in per_layer:
                    torch.matmul(left, rights[layer], out=out)
            for left, rights, out in once:
                for right in rights:
                    torch.matmul(left, right, out=out)

    return program


def _warmup_for(flops: float) -> int:
    # A cell this large takes seconds per run: its first run is representative enough.
    return 0 if flops >= _NO_WARMUP_FLOPS else 1


def forward_and_matmuls(
    merger: SequenceMergerModel, batch: int, n_chunks: int, repeats: int
) -> tuple[Timing, Timing]:
    """Median times of the merger forward and of its matrix products alone, measured in turns."""
    config = merger.config
    x = torch.from_numpy(unit_vectors((batch, n_chunks, config.d_model), seed=batch * 1000 + n_chunks))
    mask = torch.ones(batch, n_chunks, dtype=torch.long)
    timings = measure_interleaved(
        {
            "forward": lambda _: forward_pooled(merger, x, mask),
            "matmuls": matmul_program(config, batch, n_chunks),
        },
        repeats=repeats,
        warmup=_warmup_for(merger_flops(config, batch, n_chunks)),
    )
    return timings["forward"], timings["matmuls"]


def run(ctx: Context) -> dict[str, Any]:
    settings, merger = ctx.settings, ctx.merger
    config = merger.config
    rows = []
    for batch in settings.efficiency_batches:
        for n_chunks in settings.efficiency_chunks:
            ctx.log(f"efficiency: batch {batch}, {n_chunks} chunks")
            flops = merger_flops(config, batch, n_chunks)
            forward, matmuls = forward_and_matmuls(
                merger, batch, n_chunks, repeats_for(flops, settings.max_repeats)
            )
            rows.append(
                {
                    "batch": batch,
                    "chunks": n_chunks,
                    "sequence_length": sequence_length(config, n_chunks),
                    "gflop": flops / 1e9,
                    "forward_s": forward.median_s,
                    "matmul_s": matmuls.median_s,
                    "forward_gflops": flops / forward.median_s / 1e9,
                    "matmul_gflops": flops / matmuls.median_s / 1e9,
                    "efficiency": matmuls.median_s / forward.median_s,
                }
            )
    return {"what": WHAT, "rows": rows, "overhead": per_call_overhead(ctx)}


def per_call_overhead(ctx: Context) -> list[dict[str, Any]]:
    """Where a batch-1 merge spends its time: merge_batch vs the bare forward vs its matmuls."""
    merger, settings = ctx.merger, ctx.settings
    config = merger.config
    rows = []
    for n_chunks in settings.overhead_chunks:
        x = unit_vectors((1, n_chunks, config.d_model), seed=n_chunks)
        mask = np.ones((1, n_chunks), dtype=np.int64)
        xt, mt = torch.from_numpy(x), torch.from_numpy(mask)
        timings = measure_interleaved(
            {
                "merge_batch": lambda _, x=x, mask=mask: merger.merge_batch(x, mask),
                "forward": lambda _, x=xt, m=mt: forward_pooled(merger, x, m),
                "matmuls": matmul_program(config, 1, n_chunks),
            },
            repeats=settings.merge_repeats,
            warmup=2,
        )
        merge_batch, forward, matmuls = (timings[k].median_s for k in ("merge_batch", "forward", "matmuls"))
        rows.append(
            {
                "chunks": n_chunks,
                "merge_batch_s": merge_batch,
                "forward_s": forward,
                "matmul_s": matmuls,
                "non_matmul_share": 1.0 - matmuls / merge_batch,
            }
        )
    return rows
