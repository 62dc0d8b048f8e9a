"""Search latency of :class:`vbert.Index` over 10,000 documents, and how stable its chunking is.

    python -m benchmarks.search_latency [--documents 10000] [--embedder default|none] [--json FILE]

1. **Search latency.** An index of N documents (8 chunks each, synthetic unit vectors of the
   embedder's dimension written straight into the store: the store's speed does not depend on
   what the vectors mean) is searched with random unit queries: the store's top-k alone, the
   document-level hit list with its best chunk per hit (what ``vbert search`` shows), and the
   ``--rerank maxsim`` list. Medians over the queries, models already loaded. The query's own
   embedding (``encode_queries`` of the default embedder) is timed separately.
2. **Chunk stability.** Real documents (the Debian reference from the corpus cache, or
   generated text when it is absent) are chunked with the default embedder's tokenizer before
   and after an edit near the start (a sentence inserted in the first paragraph); reported:
   the share of the edited document's chunks whose text (cache key) existed before, for the
   index's content-defined chunking and for fixed windows (``embedder.split``).
3. **Ray throughput** (``--ray``; docs/scaling.md): chunks per second embedding the same documents
   in one process and on a local Ray instance with 1 and 2 embedder actors (actor start-up included:
   it is part of what a run costs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CHUNKS_PER_DOCUMENT = 8
DEBIAN_REFERENCE = Path.home() / ".cache/vbert/corpora/debian/converted/debian-reference-en/en.jsonl"
EDIT = "This sentence was inserted by the stability benchmark. "


class SyntheticEmbedder:
    """Stands in for the embedder when only the store is timed: the dimension and identity of a real one."""

    def __init__(self, dim: int) -> None:
        self.name, self.dim, self.fingerprint = f"synthetic-{dim}", dim, f"synthetic-{dim}"
        self.max_tokens, self.content_window = 512, 510

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        raise AssertionError("the latency benchmark writes vectors directly; nothing should be embedded")

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def split(self, text: str, max_tokens: int) -> list[str]:
        return [text]


def unit(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def build_index(folder: Path, documents: int, dim: int):
    """An index of ``documents`` synthetic documents, written in batches of 1,000."""
    from vbert.index import Index
    from vbert.index.store import DocumentRow
    from vbert.mergers import MeanPoolMerger

    index = Index(folder, SyntheticEmbedder(dim), MeanPoolMerger())
    rng = np.random.default_rng(0)
    for start in range(0, documents, 1000):
        ids = range(start, min(start + 1000, documents))
        chunk_vectors = unit((len(ids), CHUNKS_PER_DOCUMENT, dim), rng)
        keys = [[f"{i:06d}-{c}" for c in range(CHUNKS_PER_DOCUMENT)] for i in ids]
        flat = [k for row in keys for k in row]
        index.store.add_chunks(flat, [f"text of chunk {k}" for k in flat], chunk_vectors.reshape(-1, dim))
        merged = chunk_vectors.mean(axis=1)
        merged /= np.linalg.norm(merged, axis=1, keepdims=True)
        rows = [
            DocumentRow(
                id=f"doc-{i:06d}.md",
                source="synthetic",
                title=f"doc {i}",
                content_hash=f"{i:064x}",
                chunk_keys=keys[n],
                chunk_tokens=[400] * CHUNKS_PER_DOCUMENT,
                chunk_starts=[c * 2000 for c in range(CHUNKS_PER_DOCUMENT)],
                chunk_ends=[c * 2000 + 1999 for c in range(CHUNKS_PER_DOCUMENT)],
                added_at="2026-01-01T00:00:00+00:00",
                updated_at="2026-01-01T00:00:00+00:00",
                vector=merged[n],
            )
            for n, i in enumerate(ids)
        ]
        index.store.upsert_documents(rows)
    index.store.compact()
    index.store.create_key_index()
    return index


def median_ms(run, queries: np.ndarray) -> dict[str, float]:
    """Median milliseconds per call on the wall clock and on this process's CPU clock.

    On a shared, loaded machine the wall clock counts the time other programs hold the CPU;
    the CPU clock (all threads of this process) does not.
    """
    run(queries[0])  # warm-up: opens files, fills the page cache
    wall, cpu = [], []
    for query in queries[1:]:
        start, start_cpu = time.perf_counter(), time.process_time()
        run(query)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"wall_ms": 1000 * statistics.median(wall), "cpu_ms": 1000 * statistics.median(cpu)}


def search_latency(documents: int, dim: int, queries: int) -> dict:
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        index = build_index(Path(scratch) / "index", documents, dim)
        build_s = time.perf_counter() - start
        assert len(index) == documents
        q = unit((queries + 1, dim), rng)
        return {
            "documents": documents,
            "chunks": documents * CHUNKS_PER_DOCUMENT,
            "dim": dim,
            "queries": queries,
            "build_s": round(build_s, 1),
            "store_top10_ms": median_ms(lambda v: index.store.search_documents(v, 10), q),
            "hits_with_snippets_ms": median_ms(lambda v: index.search_vector(v, 10), q),
            "rerank_maxsim_ms": median_ms(lambda v: index.search_vector(v, 10, rerank="maxsim"), q),
        }


def query_embedding_ms(embedder, queries: int) -> dict[str, float]:
    texts = [f"how do I configure the network interface number {i}?" for i in range(queries + 1)]
    encode = getattr(embedder, "encode_queries", embedder.encode)
    return median_ms(lambda text: encode([text]), np.array(texts, dtype=object))


def stability_texts(limit: int) -> tuple[list[str], str]:
    if DEBIAN_REFERENCE.exists():
        rows = [json.loads(line) for line in DEBIAN_REFERENCE.read_text(encoding="utf-8").splitlines()]
        texts = sorted((row["text"] for row in rows), key=len, reverse=True)[:limit]
        return texts, f"the {len(texts)} longest sections of the Debian reference (English)"
    from benchmarks.common import pseudo_text

    texts = ["\n\n".join(pseudo_text(120, seed * 100 + p) for p in range(30)) for seed in range(limit)]
    return texts, f"{limit} generated documents of 30 paragraphs"


def chunk_stability(embedder, documents: int) -> dict:
    from vbert.index import ChunkingSpec, chunk_text

    spec = ChunkingSpec.for_embedder(embedder)
    texts, described = stability_texts(documents)

    def edited(text: str) -> str:
        cut = text.find(". ") + 2 if ". " in text[:2000] else 0
        return text[:cut] + EDIT + text[cut:]

    def reuse(chunker) -> tuple[float, float, float]:
        shares, new_chunks, sizes = [], [], []
        for text in texts:
            before = set(chunker(text))
            after = chunker(edited(text))
            fresh = sum(chunk not in before for chunk in after)
            shares.append(1 - fresh / len(after))
            new_chunks.append(fresh)
            sizes.append(len(after))
        return statistics.mean(shares), statistics.mean(new_chunks), statistics.mean(sizes)

    cdc = reuse(lambda t: [c.text for c in chunk_text(embedder, t, spec)])
    fixed = reuse(lambda t: embedder.split(t, spec.max_tokens))
    return {
        "documents": described,
        "chunking": spec.fingerprint,
        "content_defined": {"reused_share": cdc[0], "new_chunks": cdc[1], "chunks_per_document": cdc[2]},
        "fixed_windows": {"reused_share": fixed[0], "new_chunks": fixed[1], "chunks_per_document": fixed[2]},
    }


def ray_throughput(spec: str, documents: int) -> dict:
    """Chunks/s of the single-process path and of the Ray pipeline with 1 and 2 workers."""
    from vbert import load_embedder
    from vbert.index.ray_engine import connect, embed_on_ray
    from vbert.index.shards import ChunkRule

    embedder = load_embedder(spec)
    texts, described = stability_texts(documents)
    docs = [(f"doc-{i}", text) for i, text in enumerate(texts)]
    rule = ChunkRule("windows", embedder.content_window)
    start = time.perf_counter()
    chunks = [c.text for _, text in docs for c in rule.chunks(embedder, text)]
    embedder.encode(chunks)
    single_s = time.perf_counter() - start
    ray = connect(num_cpus=2)
    ray.data.DataContext.get_current().enable_progress_bars = False
    rows = {"documents": described, "chunks": len(chunks), "single_process": len(chunks) / single_s}
    with tempfile.TemporaryDirectory() as scratch:
        for workers in (1, 2):
            run = embed_on_ray(
                docs,
                Path(scratch) / f"w{workers}",
                embedder,
                spec,
                rule,
                workers=workers,
                documents_per_shard=4,
            )
            rows[f"ray_{workers}_workers"] = run.chunks_embedded / run.seconds
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--embedder", default="default", help="'default', a model folder, or 'none'")
    parser.add_argument("--stability-documents", type=int, default=40)
    parser.add_argument("--ray", action="store_true", help="only the Ray throughput (docs/scaling.md)")
    parser.add_argument("--ray-documents", type=int, default=24)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)

    import os

    import torch

    results: dict = {"load_average": list(os.getloadavg()), "cpus": os.cpu_count()}
    if args.ray:
        results["ray_throughput_chunks_per_s"] = ray_throughput(args.embedder, args.ray_documents)
        print(json.dumps(results, indent=2))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        return 0
    torch.set_num_threads(1)  # one query at a time: one thread, so CPU and wall clocks compare
    embedder = None
    if args.embedder != "none":
        from vbert import load_embedder

        embedder = load_embedder(args.embedder, device="cpu")
    dim = embedder.dim if embedder is not None else 384
    results["search"] = search_latency(args.documents, dim, args.queries)
    print(json.dumps(results["search"], indent=2), flush=True)
    if embedder is not None:
        results["query_embedding_ms"] = query_embedding_ms(embedder, 20)
        results["stability"] = chunk_stability(embedder, args.stability_documents)
        print(json.dumps({k: results[k] for k in ("query_embedding_ms", "stability")}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
