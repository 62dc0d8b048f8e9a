"""5. Memory: peak RSS of streaming encodes (``iter_encode``) of few and many documents.

Each count runs in its own process (``python -m benchmarks.memory --documents N``). After
the models are loaded it resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), so
the peak it reports is the high-water mark while streaming, not while importing. Documents are generated lazily, every vector
is consumed as it comes, and the chunk cache is a fresh SQLite file, so a peak that grows
with the count is a leak or an unbounded buffer in the encoder, cache, embedder or merger.
The embedder is the tiny random BERT (the default embedder's code path at a size that
streams thousands of documents in seconds) and the merger a random one of its width.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import pseudo_text, random_merger, tiny_bert_folder
from benchmarks.context import Context
from vbert.model import SequenceMergerConfig

WHAT = (
    "peak RSS of a streaming encode (iter_encode over lazily generated documents), each count in its own "
    "process"
)

REPO_ROOT = Path(__file__).resolve().parent.parent
# Peak growth tolerated as "flat": 5% of the smaller run's peak, at least this many MiB.
FLAT_TOLERANCE_MIB = 16.0
FLAT_TOLERANCE_SHARE = 0.05


def _status_mib(key: str) -> float | None:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MiB; None where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the peak-RSS mark (Linux); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def stream(n_documents: int, scratch: Path) -> dict[str, Any]:
    """Encode ``n_documents`` lazily generated documents; return the count, seconds and RSS figures."""
    import torch

    from vbert.cache import ChunkCache
    from vbert.embedders import TransformersEmbedder
    from vbert.long_document import LongDocumentEncoder

    torch.set_num_threads(1)
    embedder = TransformersEmbedder(
        tiny_bert_folder(scratch / "tiny-bert"), name="tiny-random-bert", device="cpu"
    )
    merger = random_merger(SequenceMergerConfig(d_model=embedder.dim, num_layers=2, num_heads=4, ffn_dim=128))
    rng = random.Random(0)
    documents = (pseudo_text(rng.randint(20, 60), seed=i) for i in range(n_documents))
    with ChunkCache(scratch / "memory.sqlite") as cache:
        encoder = LongDocumentEncoder(embedder, merger, cache=cache)
        setup_rss = _status_mib("VmRSS")
        streaming_peak_only = _reset_peak()
        start = time.perf_counter()
        count = 0
        for vector in encoder.iter_encode(documents):
            count += int(vector.shape[0] == embedder.dim)
        seconds = time.perf_counter() - start
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is KiB on Linux
    peak = _status_mib("VmHWM") if streaming_peak_only else None
    return {
        "documents": count,
        "seconds": seconds,
        "setup_rss_mib": setup_rss,
        "peak_rss_mib": peak if peak is not None else process_peak,
        "peak_covers": "streaming only" if peak is not None else "whole process",
    }


def run(ctx: Context) -> dict[str, Any]:
    rows = []
    for n_documents in ctx.settings.memory_documents:
        ctx.log(f"memory: streaming {n_documents} documents in a subprocess")
        with tempfile.TemporaryDirectory(prefix="vbert-bench-memory-", dir=ctx.scratch) as scratch:
            completed = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.memory",
                    "--documents",
                    str(n_documents),
                    "--scratch",
                    scratch,
                ],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
        if completed.returncode != 0:
            raise RuntimeError(
                f"the memory worker for {n_documents} documents failed:\n{completed.stderr[-2000:]}"
            )
        rows.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    small, large = rows[0], rows[-1]
    growth = large["peak_rss_mib"] - small["peak_rss_mib"]
    tolerance = max(FLAT_TOLERANCE_MIB, FLAT_TOLERANCE_SHARE * small["peak_rss_mib"])
    return {
        "what": WHAT,
        "setup": "tiny random BERT embedder (32-d, 2 layers) + random 32-d merger, 1 thread, fresh SQLite cache",
        "rows": rows,
        "growth_mib": growth,
        "tolerance_mib": tolerance,
        "flat": growth <= tolerance,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One streaming-encode run; prints its peak RSS as JSON.")
    parser.add_argument("--documents", type=int, required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.documents < 1:
        parser.error("--documents must be at least 1")
    print(json.dumps(stream(args.documents, args.scratch)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
