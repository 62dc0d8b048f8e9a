"""Long-document retrieval: every method scored on the same documents and queries.

* Deep-paragraph retrieval: the query is one paragraph of a long document (2k–16k tokens);
  the corpus is every document encoded whole. Reported overall and by where the paragraph
  sits: in the first window, the last window, or in between.
* Cross-lingual parallel-document retrieval: the query is a whole English document, the
  target its translation among all documents of the other language.

Chunk embeddings are computed once (and cached); each merger then only merges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from vbert.cache import text_key
from vbert.chunk_layouts import embed_chunk_texts, open_cache
from vbert.data.article import Article
from vbert.embedders.base import Embedder
from vbert.evaluation.metrics import bootstrap_ci, ndcg_at, ranks_of_targets, recall_at
from vbert.long_document import LongDocumentEncoder
from vbert.mergers import MeanPoolMerger, Merger, merge_sequences

POSITIONS = ("first", "middle", "last")


@dataclass
class EncodedDocuments:
    """Chunk embeddings of documents, ready to be merged by any number of mergers."""

    sequences: list[np.ndarray]
    token_counts: list[np.ndarray]

    def merge(self, merger: Merger) -> np.ndarray:
        weights = self.token_counts if getattr(merger, "weighted", False) else None
        return merge_sequences(merger, self.sequences, weights)


def encode_documents(
    texts: Sequence[str], embedder: Embedder, cache: object = None, show_progress: bool = True
) -> EncodedDocuments:
    """Chunk at the full window and embed every document once (through the chunk cache)."""
    encoder = LongDocumentEncoder(embedder, MeanPoolMerger(), cache=cache)
    sequences, counts = [], []
    stream = encoder.iter_chunk_embeddings(texts, documents_per_batch=16)
    for chunks, vectors in tqdm(
        stream, total=len(texts), desc="embedding documents", disable=not show_progress
    ):
        sequences.append(vectors)
        counts.append(np.asarray(chunks.tokens, dtype=np.float32))
    return EncodedDocuments(sequences, counts)


def encode_queries(embedder: Embedder, texts: Sequence[str], cache: object = False) -> np.ndarray:
    """Queries with the embedder's query prefix where it has one (e5: ``"query: "``), through the
    chunk cache's query vectors when ``cache`` names one (:func:`vbert.chunk_layouts.embed_chunk_texts`)."""
    keys = [text_key(text) for text in texts]
    vectors, _ = embed_chunk_texts(
        embedder, open_cache(cache), dict(zip(keys, texts, strict=True)), queries=True
    )
    return np.stack([vectors[key] for key in keys]).astype(np.float32)


def summarise(values: np.ndarray, seed: int = 0) -> dict[str, float]:
    mean, low, high = bootstrap_ci(values, seed=seed)
    return {"mean": mean, "ci_low": low, "ci_high": high, "n": int(np.asarray(values).size)}


@dataclass
class DeepParagraphTask:
    documents: list[str]
    document_ids: list[str]
    queries: list[str]
    targets: np.ndarray
    positions: list[str]
    settings: dict = field(default_factory=dict)


def build_deep_paragraph_task(
    articles: Sequence[Article],
    embedder: Embedder,
    min_tokens: int = 2000,
    max_tokens: int = 16000,
    max_documents: int | None = None,
    query_tokens: tuple[int, int] = (24, 160),
    seed: int = 0,
) -> DeepParagraphTask:
    """Pick long documents and, per document, up to one query paragraph per position band."""
    rng = np.random.default_rng(seed)
    window = embedder.content_window
    documents, ids, queries, targets, positions = [], [], [], [], []
    for article in articles:
        total = embedder.count_tokens(article.text)
        if not min_tokens <= total <= max_tokens:
            continue
        bands: dict[str, list[str]] = defaultdict(list)
        offset = 0
        for line in article.text.split("\n"):
            start = article.text.find(line, offset)
            offset = start + len(line)
            if not query_tokens[0] <= embedder.count_tokens(line) <= query_tokens[1]:
                continue
            before = embedder.count_tokens(article.text[:start])
            band = "first" if before < window else "last" if before >= total - window else "middle"
            bands[band].append(line.strip())
        if not bands:
            continue
        doc_index = len(documents)
        documents.append(article.text)
        ids.append(article.id)
        for band in POSITIONS:
            if bands[band]:
                queries.append(bands[band][rng.integers(len(bands[band]))])
                targets.append(doc_index)
                positions.append(band)
        if max_documents is not None and len(documents) >= max_documents:
            break
    if len(documents) < 2:
        raise ValueError(
            f"deep-paragraph retrieval needs at least 2 documents of {min_tokens}-{max_tokens} tokens, "
            f"found {len(documents)}; use a larger corpus split or lower min_tokens"
        )
    settings = {
        "min_tokens": min_tokens,
        "max_tokens": max_tokens,
        "query_tokens": list(query_tokens),
        "seed": seed,
    }
    return DeepParagraphTask(documents, ids, queries, np.array(targets), positions, settings)


def evaluate_deep_paragraph(
    task: DeepParagraphTask, embedder: Embedder, mergers: dict[str, Merger], cache: object = None
) -> dict:
    encoded = encode_documents(task.documents, embedder, cache)
    query_vectors = encode_queries(embedder, task.queries, cache)
    positions = np.array(task.positions)
    report: dict = {"task": "deep-paragraph", "documents": len(task.documents), "queries": len(task.queries)}
    report["settings"] = task.settings
    report["methods"] = {}
    for name, merger in mergers.items():
        ranks = ranks_of_targets(query_vectors, encoded.merge(merger), task.targets)
        method = {"recall@1": summarise(recall_at(ranks, 1)), "ndcg@10": summarise(ndcg_at(ranks, 10))}
        method["by_position"] = {
            band: {
                "recall@1": summarise(recall_at(ranks[positions == band], 1)),
                "ndcg@10": summarise(ndcg_at(ranks[positions == band], 10)),
            }
            for band in POSITIONS
            if (positions == band).any()
        }
        method["per_query_ndcg@10"] = ndcg_at(ranks, 10).round(6).tolist()
        report["methods"][name] = method
    return report


def evaluate_cross_lingual(
    articles: Sequence[Article],
    embedder: Embedder,
    mergers: dict[str, Merger],
    source_lang: str = "en",
    min_pairs: int = 5,
    cache: object = None,
) -> dict:
    """Query = an English document, target = its translation among all documents of language X."""
    by_lang: dict[str, list[Article]] = defaultdict(list)
    for article in articles:
        by_lang[article.lang].append(article)
    sources = {a.group: a for a in by_lang.get(source_lang, []) if a.group}
    pairs = {}
    for lang, docs in sorted(by_lang.items()):
        if lang == source_lang:
            continue
        queries = [(sources[d.group], i) for i, d in enumerate(docs) if d.group in sources]
        if len(queries) >= min_pairs:
            pairs[lang] = (docs, queries)
    if not pairs:
        raise ValueError(
            f"no language has {min_pairs}+ documents parallel to '{source_lang}' (same group id); "
            "cross-lingual retrieval needs a parallel corpus such as debian-handbook"
        )
    report: dict = {"task": "cross-lingual", "source_lang": source_lang, "pairs": {}}
    for lang, (docs, queries) in pairs.items():
        corpus = encode_documents([d.text for d in docs], embedder, cache)
        query_docs = encode_documents([q.text for q, _ in queries], embedder, cache)
        targets = np.array([i for _, i in queries])
        entry: dict = {"queries": len(queries), "corpus": len(docs), "methods": {}}
        for name, merger in mergers.items():
            ranks = ranks_of_targets(query_docs.merge(merger), corpus.merge(merger), targets)
            entry["methods"][name] = {
                "recall@1": summarise(recall_at(ranks, 1)),
                "ndcg@10": summarise(ndcg_at(ranks, 10)),
            }
        report["pairs"][f"{source_lang}-{lang}"] = entry
    return report
