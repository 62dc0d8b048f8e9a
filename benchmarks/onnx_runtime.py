"""7. ONNX: the exported merger in onnxruntime beside PyTorch (same inputs, same threads).

Both sides are timed through their ``merge_batch`` (numpy in, unit vectors out), so the
comparison includes each side's per-call cost. ``max_abs_diff`` is over every timed batch.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from benchmarks.common import measure_interleaved, merger_flops, unit_vectors
from benchmarks.context import Context
from benchmarks.efficiency import repeats_for

WHAT = (
    "the exported merger in onnxruntime beside PyTorch, both through merge_batch (numpy in, unit vectors "
    "out), same threads"
)


def run(ctx: Context) -> dict[str, Any]:
    try:
        from vbert.onnx_export import OnnxMerger, export_onnx
    except ImportError as err:
        return {"status": "not measured", "reason": f"onnx or onnxruntime is not installed: {err}"}
    merger, settings = ctx.merger, ctx.settings
    config = merger.config
    path = ctx.scratch / "merger.onnx"
    ctx.log("onnx: exporting the merger")
    start = time.perf_counter()
    parity = export_onnx(merger, path)
    export_s = time.perf_counter() - start
    onnx_merger = OnnxMerger(path, threads=torch.get_num_threads())
    rows = []
    worst = 0.0
    for batch in settings.onnx_batches:
        for n_chunks in settings.onnx_chunks:
            ctx.log(f"onnx: batch {batch}, {n_chunks} chunks")
            x = unit_vectors((batch, n_chunks, config.d_model), seed=batch + n_chunks)
            mask = np.ones((batch, n_chunks), dtype=np.int64)
            if batch > 1:  # a padded batch: the second half is half as long
                mask[batch // 2 :, (n_chunks + 1) // 2 :] = 0
                x[mask == 0] = 0.0
            repeats = repeats_for(merger_flops(config, batch, n_chunks), settings.max_repeats)
            timings = measure_interleaved(
                {
                    "torch": lambda _, x=x, m=mask: merger.merge_batch(x, m),
                    "onnx": lambda _, x=x, m=mask: onnx_merger.merge_batch(x, m),
                },
                repeats=repeats,
            )
            torch_timing, onnx_timing = timings["torch"], timings["onnx"]
            diff = float(np.abs(onnx_merger.merge_batch(x, mask) - merger.merge_batch(x, mask)).max())
            worst = max(worst, diff)
            rows.append(
                {
                    "batch": batch,
                    "chunks": n_chunks,
                    "padded": batch > 1,
                    "torch_s": torch_timing.median_s,
                    "onnx_s": onnx_timing.median_s,
                    "onnx_speedup": torch_timing.median_s / onnx_timing.median_s,
                    "max_abs_diff": diff,
                }
            )
    return {
        "what": WHAT,
        "export_s": export_s,
        "export_parity_max_abs_diff": parity,
        "max_abs_diff": worst,
        "file_mib": path.stat().st_size / 2**20,
        "rows": rows,
    }
