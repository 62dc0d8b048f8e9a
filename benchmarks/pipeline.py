"""3. Embedding pipeline efficiency (cache misses) and the cache-hit path.

Misses: chunk embeddings/s through ``LongDocumentEncoder.encode`` with an empty cache
(split, cache lookup, tokenise, forward, cache write, merge) against a bare loop of the
embedder's ``forward_batch`` over the same chunks, tokenised beforehand and batched the
way the embedder batches them (longest first). Hits: documents/s of
``LongDocumentEncoder.encode`` when every chunk is already in the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import clock, documents, measure, measure_interleaved, unit_vectors
from benchmarks.context import Context
from vbert.cache import ChunkCache
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
    settings, embedder, merger = ctx.settings, ctx.embedder, ctx.merger
    window = embedder.content_window
    n_docs, n_chunks = settings.cached_documents, settings.cached_chunks
    ctx.log(f"pipeline (hits): {n_docs} documents x {n_chunks} chunks, all cached")
    pairs = documents(embedder, n_docs, n_chunks, window, seed=7000)
    texts = [text for text, _ in pairs]
    chunks = [chunk for _, doc_chunks in pairs for chunk in doc_chunks]
    with ChunkCache(ctx.scratch / "pipeline-hits.sqlite") as cache:
        # Random unit vectors stand in for the chunk embeddings: the hit path only reads them.
        cache.put_many(embedder.fingerprint, chunks, unit_vectors((len(chunks), embedder.dim), seed=3))
        encoder = LongDocumentEncoder(embedder, merger, cache=cache, batch_size=settings.embed_batch)
        encode = measure(lambda _: encoder.encode(texts), repeats=settings.cached_repeats, warmup=1)
        split = measure(lambda _: [embedder.split(t, window) for t in texts], repeats=settings.cached_repeats)
        lookup = measure(
            lambda _: cache.get_many(embedder.fingerprint, chunks), repeats=settings.cached_repeats
        )
    x = unit_vectors((n_docs, n_chunks, embedder.dim), seed=4)
    mask = np.ones((n_docs, n_chunks), dtype=np.int64)
    merge = measure(lambda _: merger.merge_batch(x, mask), repeats=settings.cached_repeats)
    return {
        "documents": n_docs,
        "chunks_per_document": n_chunks,
        "documents_per_s": n_docs / encode.median_s,
        "stages_documents_per_s": {
            "split": n_docs / split.median_s,
            "cache_lookup": n_docs / lookup.median_s,
            "merge": n_docs / merge.median_s,
        },
    }
