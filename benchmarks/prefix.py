"""8. Batched prefix merges: all L prefixes of a Finesse sample in one padded batch vs L calls.

Finesse scores every prefix e_0..e_i of a sample; ``prefix_merges`` does it as one
right-padded ``merge_batch``. ``max_abs_diff`` checks it against one ``merge`` per prefix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.common import measure, unit_vectors
from benchmarks.context import Context

WHAT = "all L prefixes of a Finesse sample as one right-padded merge_batch (vbert.finesse.batching.prefix_merges) against L separate merge calls"


def one_by_one(merger: Any, embeddings: np.ndarray) -> np.ndarray:
    return np.stack([merger.merge(embeddings[: i + 1]) for i in range(embeddings.shape[0])])


def run(ctx: Context) -> dict[str, Any]:
    try:
        from vbert.finesse.batching import prefix_merges
    except ImportError as err:
        return {"status": "not measured", "reason": f"vbert.finesse.batching is not available: {err}"}
    merger, settings = ctx.merger, ctx.settings
    rows = []
    for length in settings.prefix_lengths:
        ctx.log(f"prefix merges: L = {length}")
        x = unit_vectors((length, merger.config.d_model), seed=length)
        repeats = max(3, settings.max_repeats // 4)
        batched = measure(lambda _, x=x: prefix_merges(merger, x), repeats=repeats)
        single = measure(lambda _, x=x: one_by_one(merger, x), repeats=repeats)
        diff = float(np.abs(prefix_merges(merger, x) - one_by_one(merger, x)).max())
        rows.append(
            {
                "length": length,
                "batched_s": batched.median_s,
                "one_by_one_s": single.median_s,
                "speedup": single.median_s / batched.median_s,
                "max_abs_diff": diff,
            }
        )
    return {"what": WHAT, "rows": rows}
