"""Prefix-merge time of a leaderboard-size Finesse run, before and after the shared fast path.

``python -m benchmarks.finesse_prefix_estimate`` (one thread, CPU clock, shipped merger). A
leaderboard run (preset ``leaderboard``: lengths 4–64, 25 samples each) merges every prefix of
every sample twice (RSS syntheses and SRS probes). Timing all 3,050 samples would take an hour,
so a few lengths are timed (median of 3, the two ways in turns) and the rest interpolated.
"Before" is the previous ``prefix_merges``: one right-padded batch whose padding is computed.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from vbert.loading import load_merger
from vbert.mergers import prefix_merges

LENGTHS = (4, 8, 16, 24, 32, 40, 48, 56, 64)
SAMPLES, PASSES = 25, 2


def padded_prefix_merges(merger, x: np.ndarray) -> np.ndarray:
    n = len(x)
    mask = np.tril(np.ones((n, n), np.int64))
    batch = torch.from_numpy(x[None] * mask[..., None].astype(np.float32))
    with torch.inference_mode():
        out = merger(batch, attention_mask=torch.from_numpy(mask), pooled_only=True).pooler_output
    return F.normalize(out, dim=-1).numpy()


def main() -> None:
    torch.set_num_threads(1)
    merger = load_merger("default")
    rng = np.random.default_rng(0)
    timed = {}
    for length in LENGTHS:
        x = rng.standard_normal((length, merger.config.d_model)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        ways = {
            "before": lambda v: padded_prefix_merges(merger, v),
            "after": lambda v: prefix_merges(merger, v),
        }
        runs = {name: [] for name in ways}
        for way in ways.values():  # warm-up
            way(x)
        for _ in range(3):
            for name, way in ways.items():
                start = time.process_time()
                way(x)
                runs[name].append(time.process_time() - start)
        assert np.abs(ways["before"](x) - ways["after"](x)).max() <= 1e-5
        timed[length] = {name: float(np.median(r)) for name, r in runs.items()}
        print(f"L={length}: before {timed[length]['before']:.3f} s, after {timed[length]['after']:.3f} s")
    every = np.arange(LENGTHS[0], LENGTHS[-1] + 1)
    total = {
        name: float(np.interp(every, LENGTHS, [timed[n][name] for n in LENGTHS]).sum() * SAMPLES * PASSES)
        for name in ("before", "after")
    }
    print(
        f"leaderboard run, prefix merges: before {total['before']:.0f} s, after {total['after']:.0f} s "
        f"({total['before'] / total['after']:.2f}x)"
    )


if __name__ == "__main__":
    main()
