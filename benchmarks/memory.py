"""5. Memory: peak RSS of the streaming ``vbert merge`` path for few and many short documents.

Each run is its own process (``python -m benchmarks.memory --documents N ...``). It writes the
documents to a JSONL file, loads the models, resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``), then runs what ``vbert merge docs.jsonl -o out.npy`` runs: the
JSONL read lazily (``iter_documents``), ``merge_to_file`` embedding, merging and writing in
bounded batches (resumable work folder, then the ``.npy`` assembled through a memory map). A
peak that grows with the count is an unbounded buffer somewhere on that path. ``whole`` runs
the old way for comparison: every document read, encoded and written at once.

Throughput (``--mode turns``): one process runs the two paths in turns (stream, whole, stream,
whole, ...) on the same documents, each run with a fresh cache and output, after one warm-up
turn; the ratio of the medians is the streaming path's throughput against the whole-corpus path.
Separate one-off processes on a shared machine differ by more than the 5% target.

Models: ``double`` is a cheap embedder double (whitespace tokens, a hashed vector per word; no
Transformer) with the mean merger, so 100,000 documents stream in well under a minute and the
peak is the pipeline's own; ``tiny`` is the tiny random BERT (the default embedder's code path,
its tokenizer) with a random 2-layer merger of its width.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    CLOCKS,
    measure_interleaved,
    pseudo_text,
    random_merger,
    tiny_bert_folder,
    use_clock,
)
from benchmarks.context import Context
from vbert.model import SequenceMergerConfig

WHAT = (
    "peak RSS of the streaming `vbert merge` path (JSONL read lazily, merge_to_file: bounded batches, resumable "
    "work folder, .npy assembled through a memory map), each run in its own process"
)

REPO_ROOT = Path(__file__).resolve().parent.parent
# Peak growth tolerated as "flat": 10% of the smaller run's peak.
FLAT_TOLERANCE_SHARE = 0.10
# The streaming path's throughput against the whole-corpus path (issue 17: "within 5%").
STREAM_OVER_WHOLE_TARGET = 0.95


class HashEmbedder:
    """A cheap embedder double: whitespace tokens, each word's vector its sha256 bytes (32-d), no memo."""

    name = "hash-embedder-double"
    fingerprint = "hash-embedder-double-v1"
    dim = 32
    max_tokens = 66
    content_window = 64

    def _word(self, word: str) -> np.ndarray:
        return (
            np.frombuffer(hashlib.sha256(word.encode()).digest(), dtype=np.uint8).astype(np.float32) - 127.5
        )

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        out = np.stack([np.sum([self._word(w) for w in t.split()], axis=0) for t in texts])
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self.encode(texts, batch_size)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def split(self, text: str, max_tokens: int) -> list[str]:
        words = text.split()
        return [" ".join(words[i : i + max_tokens]) for i in range(0, len(words), max_tokens)]


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


def _models(kind: str, scratch: Path) -> tuple[Any, Any]:
    from vbert.mergers import MeanPoolMerger

    if kind == "double":
        return HashEmbedder(), MeanPoolMerger()
    from vbert.embedders import TransformersEmbedder

    embedder = TransformersEmbedder(
        tiny_bert_folder(scratch / "tiny-bert"), name="tiny-random-bert", device="cpu"
    )
    merger = random_merger(SequenceMergerConfig(d_model=embedder.dim, num_layers=2, num_heads=4, ffn_dim=128))
    return embedder, merger


def _write_documents(n_documents: int, scratch: Path) -> Path:
    rng = random.Random(0)
    source = scratch / "documents.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        for i in range(n_documents):
            handle.write(
                json.dumps({"id": f"doc-{i}", "text": pseudo_text(rng.randint(20, 60), seed=i)}) + "\n"
            )
    return source


def _merge(source: Path, output: Path, encoder: Any, mode: str, job: dict[str, Any]) -> int:
    """What ``vbert merge`` runs (``stream``), or the old whole-corpus path (``whole``); returns rows."""
    from vbert.data.corpora.files import iter_documents, read_documents
    from vbert.data.vector_stream import merge_to_file
    from vbert.data.vectors import write_vectors

    if mode == "stream":
        return merge_to_file(encoder, iter_documents([source]), output, job)
    documents = read_documents([source])
    vectors = encoder.encode([text for _, text in documents])
    write_vectors(output, [doc_id for doc_id, _ in documents], vectors, {})
    return len(documents)


def stream(
    n_documents: int, scratch: Path, models: str = "double", mode: str = "stream", clock: str = "wall"
) -> dict[str, Any]:
    """Merge ``n_documents`` short documents from a JSONL file into a .npy; return seconds and RSS figures.

    ``clock``: ``"wall"`` (elapsed) or ``"process"`` (CPU seconds of this one-thread process).
    """
    import torch

    from vbert.cache import ChunkCache
    from vbert.long_document import LongDocumentEncoder

    torch.set_num_threads(1)
    source = _write_documents(n_documents, scratch)
    embedder, merger = _models(models, scratch)
    output = scratch / "vectors.npy"
    timer = CLOCKS[clock]
    with ChunkCache(scratch / "memory.sqlite") as cache:
        encoder = LongDocumentEncoder(embedder, merger, cache=cache)
        setup_rss = _status_mib("VmRSS")
        streaming_peak_only = _reset_peak()
        start = timer()
        count = _merge(source, output, encoder, mode, {"benchmark": n_documents})
        seconds = timer() - start
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is KiB on Linux
    peak = _status_mib("VmHWM") if streaming_peak_only else None
    written = np.load(output, mmap_mode="r").shape
    return {
        "documents": count,
        "mode": mode,
        "rows_written": int(written[0]),
        "clock": clock,
        "seconds": seconds,
        "documents_per_s": count / seconds,
        "setup_rss_mib": setup_rss,
        "peak_rss_mib": peak if peak is not None else process_peak,
        "peak_covers": "after the models loaded" if peak is not None else "whole process",
    }


def throughput(
    n_documents: int, scratch: Path, models: str = "double", repeats: int = 3, clock: str = "wall"
) -> dict[str, Any]:
    """The streaming and the whole-corpus path timed in turns on the same documents (medians)."""
    import torch

    from vbert.cache import ChunkCache
    from vbert.long_document import LongDocumentEncoder

    torch.set_num_threads(1)
    use_clock(clock)
    source = _write_documents(n_documents, scratch)
    embedder, merger = _models(models, scratch)
    runs = itertools.count()

    def fresh(mode: str) -> Callable[[], tuple[Path, LongDocumentEncoder]]:
        def setup() -> tuple[Path, LongDocumentEncoder]:
            folder = scratch / f"run-{next(runs)}-{mode}"
            folder.mkdir()
            return folder, LongDocumentEncoder(embedder, merger, cache=ChunkCache(folder / "cache.sqlite"))

        return setup

    def run(mode: str) -> Callable[[tuple[Path, LongDocumentEncoder]], None]:
        def timed(state: tuple[Path, LongDocumentEncoder]) -> None:
            folder, encoder = state
            assert _merge(source, folder / "vectors.npy", encoder, mode, {"run": folder.name}) == n_documents
            encoder.cache.close()
            shutil.rmtree(folder)

        return timed

    timings = measure_interleaved(
        {mode: run(mode) for mode in ("stream", "whole")},
        repeats=repeats,
        setups={mode: fresh(mode) for mode in ("stream", "whole")},
    )
    stream_s, whole_s = timings["stream"].median_s, timings["whole"].median_s
    return {
        "documents": n_documents,
        "clock": clock,
        "repeats": repeats,
        "stream": timings["stream"].to_dict(),
        "whole": timings["whole"].to_dict(),
        "stream_documents_per_s": n_documents / stream_s,
        "whole_documents_per_s": n_documents / whole_s,
        "stream_over_whole": whole_s / stream_s,
    }


def _worker(ctx: Context, n_documents: int, mode: str) -> dict[str, Any]:
    models = ctx.settings.memory_models
    ctx.log(f"memory: {mode} {n_documents} documents ({models} models) in a subprocess")
    with tempfile.TemporaryDirectory(prefix="vbert-bench-memory-", dir=ctx.scratch) as scratch:
        command = [sys.executable, "-m", "benchmarks.memory", "--documents", str(n_documents)]
        command += ["--scratch", scratch, "--models", models, "--mode", mode, "--clock", ctx.settings.clock]
        command += ["--repeats", str(ctx.settings.memory_throughput_repeats)]
        completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"the memory worker for {n_documents} documents failed:\n{completed.stderr[-2000:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> dict[str, Any]:
    counts = ctx.settings.memory_documents
    rows = [_worker(ctx, n, "stream") for n in counts]
    whole = [_worker(ctx, n, "whole") for n in counts[: ctx.settings.memory_whole_runs]]
    turns = _worker(ctx, ctx.settings.memory_throughput_documents, "turns")
    small, large = rows[0], rows[-1]
    growth = large["peak_rss_mib"] - small["peak_rss_mib"]
    tolerance = FLAT_TOLERANCE_SHARE * small["peak_rss_mib"]
    return {
        "what": WHAT,
        "setup": (
            "cheap embedder double (hashed word vectors, 32-d) + mean merger"
            if ctx.settings.memory_models == "double"
            else "tiny random BERT embedder (32-d, 2 layers) + random 2-layer 32-d merger"
        )
        + ", 1 thread, fresh SQLite cache, short documents of 20-60 words",
        "rows": rows,
        "whole": whole,
        "throughput": turns,
        "stream_over_whole": turns["stream_over_whole"],
        "stream_over_whole_target": STREAM_OVER_WHOLE_TARGET,
        "growth_mib": growth,
        "tolerance_mib": tolerance,
        "flat": abs(growth) <= tolerance,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One `vbert merge` run; prints its peak RSS as JSON.")
    parser.add_argument("--documents", type=int, required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--models", choices=("double", "tiny"), default="double")
    parser.add_argument("--mode", choices=("stream", "whole", "turns"), default="stream")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--repeats", type=int, default=3, help="timed turns of --mode turns")
    args = parser.parse_args(argv)
    if args.documents < 1:
        parser.error("--documents must be at least 1")
    if args.mode == "turns":
        result = throughput(args.documents, args.scratch, args.models, args.repeats, args.clock)
    else:
        result = stream(args.documents, args.scratch, args.models, args.mode, args.clock)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
