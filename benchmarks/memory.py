"""5. Memory: peak RSS of the streaming ``vbert merge`` path for few and many short documents.

Each run is its own process (``python -m benchmarks.memory --documents N ...``). It writes the
documents to a JSONL file, loads the models, resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``), then runs what ``vbert merge docs.jsonl -o out.npy`` runs: the
JSONL read lazily (``iter_documents``), ``merge_to_file`` embedding, merging and writing in
bounded batches (resumable work folder, then the ``.npy`` assembled through a memory map). A
peak that grows with the count is an unbounded buffer somewhere on that path. ``whole`` runs
the old way for comparison: every document read, encoded and written at once.

Models: ``double`` is a cheap embedder double (whitespace tokens, a hashed vector per word; no
Transformer) with the mean merger, so 100,000 documents stream in well under a minute and the
peak is the pipeline's own; ``tiny`` is the tiny random BERT (the default embedder's code path,
its tokenizer) with a random 2-layer merger of its width.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import pseudo_text, random_merger, tiny_bert_folder
from benchmarks.context import Context
from vbert.model import SequenceMergerConfig

WHAT = (
    "peak RSS of the streaming `vbert merge` path (JSONL read lazily, merge_to_file: bounded batches, resumable "
    "work folder, .npy assembled through a memory map), each run in its own process"
)

REPO_ROOT = Path(__file__).resolve().parent.parent
# Peak growth tolerated as "flat": 10% of the smaller run's peak.
FLAT_TOLERANCE_SHARE = 0.10


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


def stream(n_documents: int, scratch: Path, models: str = "double", mode: str = "stream") -> dict[str, Any]:
    """Merge ``n_documents`` short documents from a JSONL file into a .npy; return seconds and RSS figures."""
    import torch

    from vbert.cache import ChunkCache
    from vbert.data.corpora.files import iter_documents, read_documents
    from vbert.data.vector_stream import merge_to_file
    from vbert.data.vectors import write_vectors
    from vbert.long_document import LongDocumentEncoder

    torch.set_num_threads(1)
    rng = random.Random(0)
    source = scratch / "documents.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        for i in range(n_documents):
            handle.write(
                json.dumps({"id": f"doc-{i}", "text": pseudo_text(rng.randint(20, 60), seed=i)}) + "\n"
            )
    embedder, merger = _models(models, scratch)
    output = scratch / "vectors.npy"
    with ChunkCache(scratch / "memory.sqlite") as cache:
        encoder = LongDocumentEncoder(embedder, merger, cache=cache)
        setup_rss = _status_mib("VmRSS")
        streaming_peak_only = _reset_peak()
        start = time.perf_counter()
        if mode == "stream":
            count = merge_to_file(encoder, iter_documents([source]), output, {"benchmark": n_documents})
        else:
            documents = read_documents([source])
            vectors = encoder.encode([text for _, text in documents])
            write_vectors(output, [doc_id for doc_id, _ in documents], vectors, {})
            count = len(documents)
        seconds = time.perf_counter() - start
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is KiB on Linux
    peak = _status_mib("VmHWM") if streaming_peak_only else None
    written = np.load(output, mmap_mode="r").shape
    return {
        "documents": count,
        "mode": mode,
        "rows_written": int(written[0]),
        "seconds": seconds,
        "documents_per_s": count / seconds,
        "setup_rss_mib": setup_rss,
        "peak_rss_mib": peak if peak is not None else process_peak,
        "peak_covers": "after the models loaded" if peak is not None else "whole process",
    }


def _worker(ctx: Context, n_documents: int, mode: str) -> dict[str, Any]:
    models = ctx.settings.memory_models
    ctx.log(f"memory: {mode} {n_documents} documents ({models} models) in a subprocess")
    with tempfile.TemporaryDirectory(prefix="vbert-bench-memory-", dir=ctx.scratch) as scratch:
        command = [sys.executable, "-m", "benchmarks.memory", "--documents", str(n_documents)]
        command += ["--scratch", scratch, "--models", models, "--mode", mode]
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
        "stream_over_whole": (rows[0]["documents_per_s"] / whole[0]["documents_per_s"] if whole else None),
        "growth_mib": growth,
        "tolerance_mib": tolerance,
        "flat": abs(growth) <= tolerance,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One `vbert merge` run; prints its peak RSS as JSON.")
    parser.add_argument("--documents", type=int, required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--models", choices=("double", "tiny"), default="double")
    parser.add_argument("--mode", choices=("stream", "whole"), default="stream")
    args = parser.parse_args(argv)
    if args.documents < 1:
        parser.error("--documents must be at least 1")
    print(json.dumps(stream(args.documents, args.scratch, args.models, args.mode)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
