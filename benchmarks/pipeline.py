"""3. Embedding pipeline efficiency (cache misses) and the cache-hit path.

Misses: chunk embeddings/s through ``LongDocumentEncoder.encode`` with an empty cache
(split, cache lookup, tokenise, forward, cache write, merge) against a bare loop of the
embedder's ``forward_batch`` over the same chunks, tokenised beforehand and batched the
way the embedder batches them (longest first). Hits: documents/s of
``LongDocumentEncoder.encode`` for documents seen before (their chunk keys are recorded, so
they are not cut again), timed in turns with ``merge_sequences`` of their cached vectors alone:
``cached_over_merge`` is the share of merge-only throughput the cached path keeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.common import clock, documents, measure, measure_interleaved, unit_vectors
from benchmarks.context import Context
from vbert.cache import ChunkCache, text_key
from vbert.long_document import LongDocumentEncoder
from vbert.mergers import merge_sequences

WHAT = (
    "chunk embeddings/s through LongDocumentEncoder with an empty cache against a bare forward_batch loop"
    " over the same chunks, tokenised beforehand and batched longest first like the embedder does; the "
    "two are timed in turns"
)


def _pre_tokenised_batches(embedder: Any, chunks: list[str], batch_size: int) -> list[Any]:
    lengths = [embedder.count_tokens(c) for c in chunks]
    order = sorted(range(len(chunks)), key=lambda i: (-lengths[i], i))
    return [
        embedder.tokenize_batch([chunks[i] for i in order[start : start + batch_size]])
        for start in range(0, len(order), batch_size)
    ]


def run(ctx: Context) -> dict[str, Any]:
    return {"what": WHAT, "misses": misses(ctx), "hits": hits(ctx)}


def misses(ctx: Context) -> dict[str, Any]:
    settings, embedder, merger = ctx.settings, ctx.embedder, ctx.merger
    window = embedder.content_window
    ctx.log(f"pipeline (misses): {settings.pipeline_documents} documents x {settings.pipeline_chunks} chunks")
    pairs = documents(embedder, settings.pipeline_documents, settings.pipeline_chunks, window, seed=5000)
    texts = [text for text, _ in pairs]
    chunks = [chunk for _, doc_chunks in pairs for chunk in doc_chunks]
    embedder.encode(chunks[:1], batch_size=1)  # warm-up outside the timed runs
    caches: list[Path] = []

    def fresh_encoder(_: object = None) -> LongDocumentEncoder:
        caches.append(ctx.scratch / f"pipeline-misses-{len(caches)}.sqlite")
        return LongDocumentEncoder(
            embedder, merger, cache=ChunkCache(caches[-1]), batch_size=settings.embed_batch
        )

    def encode_and_close(encoder: LongDocumentEncoder) -> None:
        encoder.encode(texts)
        encoder.cache.close()

    runs: dict[str, Any] = {"pipeline": encode_and_close}
    hooks = hasattr(embedder, "tokenize_batch") and hasattr(embedder, "forward_batch")
    if hooks:
        batches = _pre_tokenised_batches(embedder, chunks, settings.embed_batch)
        runs["bare"] = lambda _: [embedder.forward_batch(batch) for batch in batches]
    timings = measure_interleaved(
        runs, repeats=settings.pipeline_repeats, warmup=0, setups={"pipeline": fresh_encoder}
    )
    pipeline = timings["pipeline"]
    cache_bytes = sum(p.stat().st_size for p in caches[-1].parent.glob(caches[-1].name + "*"))
    result: dict[str, Any] = {
        "documents": len(texts),
        "chunks": len(chunks),
        "pipeline_s": pipeline.median_s,
        "pipeline_chunks_per_s": len(chunks) / pipeline.median_s,
        "cache_bytes_per_chunk": cache_bytes / len(chunks),
        "stages_s": _miss_stages(ctx, texts),
    }
    if not hooks:
        result["bare"] = f"not measured: {type(embedder).__name__} has no tokenize_batch/forward_batch hooks"
        return result
    bare = timings["bare"]
    result.update(
        {
            "bare_s": bare.median_s,
            "bare_chunks_per_s": len(chunks) / bare.median_s,
            "pipeline_over_bare": bare.median_s / pipeline.median_s,
        }
    )
    return result


def _miss_stages(ctx: Context, texts: list[str]) -> dict[str, float]:
    """The stages of a cold encode other than the forward pass, each timed once on its own."""
    embedder, merger = ctx.embedder, ctx.merger
    window = embedder.content_window
    stages: dict[str, float] = {}
    start = clock()
    chunked = [embedder.split(t, window) for t in texts]
    stages["split"] = clock() - start
    flat = [c for doc in chunked for c in doc]
    vectors = unit_vectors((len(flat), embedder.dim), seed=5)
    with ChunkCache(ctx.scratch / "pipeline-stages.sqlite") as cache:
        start = clock()
        cache.get_many(embedder.fingerprint, flat)
        cache.put_many(embedder.fingerprint, flat, vectors)
        stages["cache_read_write"] = clock() - start
    sequences, offset = [], 0
    for doc in chunked:
        sequences.append(vectors[offset : offset + len(doc)])
        offset += len(doc)
    start = clock()
    merge_sequences(merger, sequences)
    stages["merge"] = clock() - start
    return stages


def hits(ctx: Context) -> dict[str, Any]:
    """The cache-hit path: documents seen before, timed in turns with merging their cached vectors alone."""
    settings, embedder, merger = ctx.settings, ctx.embedder, ctx.merger
    window = embedder.content_window
    n_docs, n_chunks = settings.cached_documents, settings.cached_chunks
    ctx.log(f"pipeline (hits): {n_docs} documents x {n_chunks} chunks, all cached")
    pairs = documents(embedder, n_docs, n_chunks, window, seed=7000)
    texts = [text for text, _ in pairs]
    chunks = [chunk for _, doc_chunks in pairs for chunk in doc_chunks]
    # Random unit vectors stand in for the chunk embeddings: the hit path only reads them.
    vectors = unit_vectors((len(chunks), embedder.dim), seed=3)
    sequences = [vectors[i * n_chunks : (i + 1) * n_chunks] for i in range(n_docs)]
    with ChunkCache(ctx.scratch / "pipeline-hits.sqlite") as cache:
        cache.put_many(embedder.fingerprint, chunks, vectors)
        encoder = LongDocumentEncoder(embedder, merger, cache=cache, batch_size=settings.embed_batch)
        start = clock()
        encoder.encode(texts)  # the first encode cuts the documents and records their chunk keys
        first_s = clock() - start
        timings = measure_interleaved(
            {
                "encode": lambda _: encoder.encode(texts),
                "merge": lambda _: merge_sequences(merger, sequences),
            },
            repeats=settings.cached_repeats,
        )
        split = measure(lambda _: [embedder.split(t, window) for t in texts], repeats=1)
        lookup = measure(
            lambda _: cache.get_vectors(embedder.fingerprint, [text_key(c) for c in chunks]),
            repeats=settings.cached_repeats,
        )
    encode_s, merge_s = timings["encode"].median_s, timings["merge"].median_s
    return {
        "documents": n_docs,
        "chunks_per_document": n_chunks,
        "documents_per_s": n_docs / encode_s,
        "merge_documents_per_s": n_docs / merge_s,
        "cached_over_merge": merge_s / encode_s,
        "first_encode_documents_per_s": n_docs / first_s,
        "stages_documents_per_s": {
            "split (what a hit no longer does)": n_docs / split.median_s,
            "cache lookup": n_docs / lookup.median_s,
            "merge (merge_sequences)": n_docs / merge_s,
        },
    }
