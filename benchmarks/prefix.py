"""8. Batched prefix merges: all L prefixes of a Finesse sample at once vs L separate merges.

Finesse (and the lab) merge every prefix e_0..e_i of a sample. ``vbert.mergers.prefix_merges``
hands them to ``merge_sequences``, the package's one batched path (length-sorted batches bounded
in rows and padded positions; a trained merger's ``merge_batch`` skips the padding left). The
padded variant is the old way, one right-padded batch of all L prefixes, now also packed.
``max_abs_diff`` checks the shared path against one ``merge`` per prefix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.common import measure_interleaved, unit_vectors
from benchmarks.context import Context
from vbert.mergers import prefix_merges

WHAT = (
    "all L prefixes of a Finesse sample through vbert.mergers.prefix_merges (the merge_sequences fast path) and "
    "as one right-padded merge_batch, against L separate merge calls"
)


def one_by_one(merger: Any, embeddings: np.ndarray) -> np.ndarray:
    return np.stack([merger.merge(embeddings[: i + 1]) for i in range(embeddings.shape[0])])


def one_padded_batch(merger: Any, embeddings: np.ndarray) -> np.ndarray:
    n = embeddings.shape[0]
    mask = np.tril(np.ones((n, n), dtype=np.int64))
    return merger.merge_batch(embeddings[None] * mask[..., None].astype(np.float32), mask)


def run(ctx: Context) -> dict[str, Any]:
    merger, settings = ctx.merger, ctx.settings
    variants = {"shared": lambda x: prefix_merges(merger, x), "one_by_one": lambda x: one_by_one(merger, x)}
    if settings.prefix_padded:
        variants["one_padded_batch"] = lambda x: one_padded_batch(merger, x)
    rows = []
    for length in settings.prefix_lengths:
        ctx.log(f"prefix merges: L = {length}")
        x = unit_vectors((length, merger.config.d_model), seed=length)
        timings = measure_interleaved(
            {name: lambda _, f=f, x=x: f(x) for name, f in variants.items()},
            repeats=max(3, settings.max_repeats // 4),
        )
        reference = one_by_one(merger, x)
        rows.append(
            {
                "length": length,
                **{f"{name}_s": timing.median_s for name, timing in timings.items()},
                "speedup": timings["one_by_one"].median_s / timings["shared"].median_s,
                **(
                    {"padded_speedup": timings["one_by_one"].median_s / timings["one_padded_batch"].median_s}
                    if "one_padded_batch" in timings
                    else {}
                ),
                "max_abs_diff": float(np.abs(prefix_merges(merger, x) - reference).max()),
            }
        )
    return {"what": WHAT, "rows": rows}
