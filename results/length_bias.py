"""Why the shipped merger loses deep-paragraph retrieval once short distractors join (docs/results.md).

Reads the chunk vectors of the retrieval-deep.json corpus from the chunk-vector store (nothing is
embedded when that evaluation ran before) and prints, by document length in chunks, the cosine
between the shipped merger's vector and the mean of the chunks, and each one's cosine to the
corpus's mean chunk direction (the direction e5 vectors share).

    PYTHONPATH=src python results/length_bias.py
"""

from __future__ import annotations

import numpy as np

from vbert import MeanPoolMerger, load_embedder, load_merger
from vbert.data.corpora import load_corpus
from vbert.data.splits import filter_split
from vbert.evaluation.deep_retrieval import select_corpus
from vbert.evaluation.retrieval import encode_documents
from vbert.evaluation.suite import deep_plan_for


def main() -> None:
    embedder = load_embedder("default")
    articles = list(load_corpus("debian"))
    corpus = select_corpus(
        filter_split(articles, "test"), filter_split(articles, "train"), embedder, deep_plan_for("small")
    )
    encoded = encode_documents([a.text for a in corpus.articles], embedder, None, False)
    merged = encoded.merge(load_merger("default"))
    mean = encoded.merge(MeanPoolMerger())
    chunks = np.array([len(s) for s in encoded.sequences])
    centre = np.concatenate(encoded.sequences).mean(axis=0)
    centre /= np.linalg.norm(centre)
    print("| chunks | documents | cos(merger, mean) | merger · common direction | mean · common direction |")
    print("|---|---|---|---|---|")
    for low, high in ((1, 1), (2, 3), (4, 8), (9, 16)):
        rows = (chunks >= low) & (chunks <= high)
        if rows.any():
            print(
                f"| {low}-{high} | {rows.sum()} | {(merged[rows] * mean[rows]).sum(1).mean():.4f} | "
                f"{(merged[rows] @ centre).mean():.4f} | {(mean[rows] @ centre).mean():.4f} |"
            )


if __name__ == "__main__":
    main()
