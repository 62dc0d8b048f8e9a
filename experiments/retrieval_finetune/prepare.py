"""Vectors for the retrieval fine-tune experiment (issue 12): validation, test and training sets.

Every chunk vector goes through the persistent chunk-vector store ($VBERT_HOME/chunk-cache.sqlite),
so only chunks never embedded before cost time. Writes one .npz per part into --out:

* ``validation.npz`` / ``test.npz``: the deep-paragraph task of ``vbert evaluate retrieval --task
  deep-paragraph-distractors --task cross-lingual-deep`` (size small: en+de documents of 2k-8k
  tokens, 100 train-split distractors, 4 queries per document), the same corpus and queries;
* ``train.npz``: the next ``--train-documents`` train-split documents in the distractors' seeded
  order (512-8k tokens, en+de), never used as distractors, with their own deep-paragraph and
  cross-lingual queries (query prefix) as training queries.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from vbert import load_embedder
from vbert.cache import ChunkCache, default_cache_path
from vbert.data.corpora import load_corpus
from vbert.data.splits import filter_split
from vbert.evaluation.deep_retrieval import DEEP, DeepCorpus, build_queries, select_corpus
from vbert.evaluation.retrieval import encode_documents, encode_queries
from vbert.evaluation.suite import deep_plan_for
from vbert.files import atomic_path, vbert_home

TASK_IDS = {DEEP: 0, "cross-lingual-deep": 1}


def save(path: Path, corpus: DeepCorpus, queries: dict, embedder, store: ChunkCache) -> None:
    encoded = encode_documents([a.text for a in corpus.articles], embedder, store)
    q_vectors, q_targets, q_langs, q_task, q_cluster = [], [], [], [], []
    for name, qs in queries.items():
        q_vectors.append(encode_queries(embedder, qs.texts))
        q_targets += qs.targets
        q_langs += qs.langs
        q_task += [TASK_IDS[name]] * len(qs.texts)
        q_cluster += qs.clusters
    arrays = {
        "chunks": np.concatenate(encoded.sequences).astype(np.float32),
        "chunk_tokens": np.concatenate(encoded.token_counts).astype(np.float32),
        "lengths": np.array([len(s) for s in encoded.sequences]),
        "doc_langs": np.array([a.lang for a in corpus.articles]),
        "doc_ids": np.array([a.id for a in corpus.articles]),
        "heldout": np.array(corpus.heldout),
        "queries": np.concatenate(q_vectors).astype(np.float32),
        "query_targets": np.array(q_targets),
        "query_langs": np.array(q_langs),
        "query_task": np.array(q_task),
        "query_clusters": np.array(q_cluster),
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(
        f"{path.name}: {len(corpus.articles)} documents ({int(sum(corpus.heldout))} held out), "
        f"{len(arrays['chunks'])} chunks, {len(arrays['queries'])} queries, sha256 {digest[:16]}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=vbert_home() / "experiments" / "retrieval-finetune")
    parser.add_argument("--train-documents", type=int, default=200)
    parser.add_argument("--parts", default="validation,test,train")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    embedder = load_embedder("default")
    store = ChunkCache(default_cache_path())
    articles = list(load_corpus("debian"))
    train = list(filter_split(articles, "train"))
    plan = deep_plan_for("small")
    distractor_ids: set[str] = set()
    for split in ("validation", "test"):
        corpus = select_corpus(filter_split(articles, split), train, embedder, plan)
        distractor_ids |= {a.id for a, held in zip(corpus.articles, corpus.heldout, strict=True) if not held}
        if split in args.parts:
            save(args.out / f"{split}.npz", corpus, build_queries(corpus, embedder, plan), embedder, store)
    if "train" in args.parts:
        # the distractors' own seeded order, continued past them: never a validation/test distractor
        wide = select_corpus(
            filter_split(articles, "validation"),
            train,
            embedder,
            deep_plan_for("small", distractors=len(distractor_ids) + args.train_documents),
        )
        picked = [
            a
            for a, held in zip(wide.articles, wide.heldout, strict=True)
            if not held and a.id not in distractor_ids
        ]
        tokens = [
            t
            for a, t, held in zip(wide.articles, wide.tokens, wide.heldout, strict=True)
            if not held and a.id not in distractor_ids
        ]
        corpus = DeepCorpus(picked, [True] * len(picked), tokens)
        save(args.out / "train.npz", corpus, build_queries(corpus, embedder, plan), embedder, store)


if __name__ == "__main__":
    main()
