"""1. Merge-only vs cold cost: merging cached chunk vectors against embedding the chunks."""

from __future__ import annotations

from typing import Any

from benchmarks.common import documents, measure
from benchmarks.context import Context
from vbert.cache import ChunkCache
from vbert.long_document import LongDocumentEncoder


def run(ctx: Context) -> dict[str, Any]:
    settings, embedder, merger = ctx.settings, ctx.embedder, ctx.merger
    if len(settings.cold_repeats) != len(settings.cost_chunks):
        raise ValueError("cold_repeats needs one entry per cost_chunks entry")
    window = embedder.content_window
    # One untimed pass first, so lazy initialisation is not billed to the first size.
    [(_, warm_chunks)] = documents(embedder, 1, 2, window, seed=999)
    embedder.encode(warm_chunks, batch_size=settings.embed_batch)
    rows = []
    for n_chunks, cold_repeats in zip(settings.cost_chunks, settings.cold_repeats, strict=True):
        ctx.log(f"merge cost: {n_chunks} chunks of {window} tokens")
        [(text, chunks)] = documents(embedder, 1, n_chunks, window, seed=1000 + n_chunks)
        outputs: list = []
        embed = measure(
            lambda _, c=chunks, out=outputs: out.append(embedder.encode(c, batch_size=settings.embed_batch)),
            repeats=cold_repeats,
            warmup=0,
        )
        vectors = outputs[-1]
        merge = measure(lambda _, v=vectors: merger.merge(v), repeats=settings.merge_repeats, warmup=2)
        with ChunkCache(ctx.scratch / f"merge-cost-{n_chunks}.sqlite") as cache:
            cache.put_many(embedder.fingerprint, chunks, vectors)
            encoder = LongDocumentEncoder(embedder, merger, cache=cache, batch_size=settings.embed_batch)
            cached = measure(
                lambda _, t=text, e=encoder: e.encode([t]), repeats=max(3, cold_repeats), warmup=1
            )
        split = measure(lambda _, t=text: embedder.split(t, window), repeats=max(3, cold_repeats), warmup=0)
        rows.append(
            {
                "chunks": n_chunks,
                "tokens": sum(embedder.count_tokens(c) for c in chunks),
                "embed_s": embed.median_s,
                "embed_runs": embed.runs,
                "merge_s": merge.median_s,
                "cached_encode_s": cached.median_s,
                "split_s": split.median_s,
                "embed_over_merge": embed.median_s / merge.median_s,
                "embed_over_cached_encode": embed.median_s / cached.median_s,
            }
        )
    return {
        "what": (
            "embed_s: embedder.encode of the document's chunks (tokenise + forward + pool), batch "
            f"{settings.embed_batch}; merge_s: merger.merge of the cached chunk vectors (batch 1); "
            "cached_encode_s: LongDocumentEncoder.encode of a document seen before (its chunk keys are "
            "recorded: one lookup + one merge, no tokenisation); split_s: cutting the text into chunks, "
            "which a cached document no longer needs"
        ),
        "rows": rows,
    }
