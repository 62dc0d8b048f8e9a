"""2. Merger efficiency: achieved GFLOP/s of the forward against torch.matmul on the same shapes.

The reference runs exactly the merger's matrix products (same shapes, same counts, through
``torch.matmul`` into preallocated outputs) and nothing else, so ``efficiency`` =
reference time / forward time: the share of the forward spent at matmul speed. The rest is
layer norms, GELU, softmax, residual adds, PPE, the input checks and Python.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from benchmarks.common import (
    matmul_flops,
    measure,
    merger_flops,
    merger_matmuls,
    sequence_length,
    unit_vectors,
)
from benchmarks.context import Context
from vbert.model import SequenceMergerConfig, SequenceMergerModel

WHAT = "achieved GFLOP/s of the merger forward (inference mode) against torch.matmul running the same matrix products alone; efficiency = matmul time / forward time"

# Timed runs are scaled so that each cell takes about this many FLOPs in all (within the repeat limits).
_FLOP_BUDGET = 3e10
_MIN_REPEATS = 3


def repeats_for(flops: float, max_repeats: int) -> int:
    return int(min(max_repeats, max(_MIN_REPEATS, _FLOP_BUDGET // max(flops, 1.0))))


def forward_pooled(merger: SequenceMergerModel, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return merger(x, attention_mask=mask).pooler_output


def matmul_reference_s(config: SequenceMergerConfig, batch: int, n_chunks: int, max_repeats: int) -> float:
    """Seconds for the merger's matrix products alone, each timed through torch.matmul."""
    total = 0.0
    with torch.inference_mode():
        for _, shape, count in merger_matmuls(config, batch, n_chunks):
            *lead, m, k, n = shape
            a = torch.randn(*lead, m, k)
            b = torch.randn(*lead, k, n)
            out = torch.empty(*lead, m, n)
            timing = measure(
                lambda _, a=a, b=b, out=out: torch.matmul(a, b, out=out),
                repeats=repeats_for(matmul_flops(shape), max_repeats * 2),
                warmup=1,
            )
            total += count * timing.median_s
    return total


def run(ctx: Context) -> dict[str, Any]:
    settings, merger = ctx.settings, ctx.merger
    config = merger.config
    rows = []
    for batch in settings.efficiency_batches:
        for n_chunks in settings.efficiency_chunks:
            ctx.log(f"efficiency: batch {batch}, {n_chunks} chunks")
            flops = merger_flops(config, batch, n_chunks)
            x = torch.from_numpy(
                unit_vectors((batch, n_chunks, config.d_model), seed=batch * 1000 + n_chunks)
            )
            mask = torch.ones(batch, n_chunks, dtype=torch.long)
            repeats = repeats_for(flops, settings.max_repeats)
            forward = measure(lambda _, x=x, mask=mask: forward_pooled(merger, x, mask), repeats=repeats)
            reference = matmul_reference_s(config, batch, n_chunks, settings.max_repeats)
            rows.append(
                {
                    "batch": batch,
                    "chunks": n_chunks,
                    "sequence_length": sequence_length(config, n_chunks),
                    "gflop": flops / 1e9,
                    "forward_s": forward.median_s,
                    "matmul_s": reference,
                    "forward_gflops": flops / forward.median_s / 1e9,
                    "matmul_gflops": flops / reference / 1e9,
                    "efficiency": reference / forward.median_s,
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
        repeats = settings.merge_repeats
        merge_batch = measure(
            lambda _, x=x, mask=mask: merger.merge_batch(x, mask), repeats=repeats, warmup=2
        )
        forward = measure(lambda _, x=xt, m=mt: forward_pooled(merger, x, m), repeats=repeats, warmup=2)
        reference = matmul_reference_s(config, 1, n_chunks, settings.max_repeats)
        rows.append(
            {
                "chunks": n_chunks,
                "merge_batch_s": merge_batch.median_s,
                "forward_s": forward.median_s,
                "matmul_s": reference,
                "non_matmul_share": 1.0 - reference / merge_batch.median_s,
            }
        )
    return rows
