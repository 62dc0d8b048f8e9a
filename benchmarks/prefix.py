"""8. Batched prefix merges: all L prefixes of a Finesse sample in padded batches vs L calls.

Finesse scores every prefix e_0..e_i of a sample; ``prefix_merges`` does it as one
right-padded ``merge_batch``. The grouped variant hands the prefixes to
``merge_sequences`` (length-sorted batches of ``PREFIX_GROUP``), so short prefixes are not
padded to L. ``max_abs_diff`` checks both against one ``merge`` per prefix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.common import measure_interleaved, unit_vectors
from benchmarks.context import Context
from vbert.mergers import merge_sequences

WHAT = (
    "all L prefixes of a Finesse sample as one right-padded merge_batch (vbert.finesse.batching.prefix_merges) "
    "and as length-sorted batches of 16 (vbert.mergers.merge_sequences) against L separate merge calls"
)
PREFIX_GROUP = 16


def one_by_one(merger: Any, embeddings: np.ndarray) -> np.ndarray:
    return np.stack([merger.merge(embeddings[: i + 1]) for i in range(embeddings.shape[0])])


def grouped(merger: Any, embeddings: np.ndarray) -> np.ndarray:
    prefixes = [embeddings[: i + 1] for i in range(embeddings.shape[0])]
    return merge_sequences(merger, prefixes, batch_size=PREFIX_GROUP)


def run(ctx: Context) -> dict[str, Any]:
    try:
        from vbert.finesse.batching import prefix_merges
    except ImportError as err:
        return {"status": "not measured", "reason": f"vbert.finesse.batching is not available: {err}"}
    merger, settings = ctx.merger, ctx.settings
    variants = {
        "one_padded_batch": lambda x: prefix_merges(merger, x),
        "grouped": lambda x: grouped(merger, x),
        "one_by_one": lambda x: one_by_one(merger, x),
    }
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
                "speedup": timings["one_by_one"].median_s / timings["one_padded_batch"].median_s,
                "grouped_speedup": timings["one_by_one"].median_s / timings["grouped"].median_s,
                "max_abs_diff": float(np.abs(prefix_merges(merger, x) - reference).max()),
                "grouped_max_abs_diff": float(np.abs(grouped(merger, x) - reference).max()),
            }
        )
    return {"what": WHAT, "rows": rows}
