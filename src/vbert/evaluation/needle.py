"""Needle and passkey retrieval in the LongEmbed style, generated from corpus filler.

For each target length (in tokens) ``documents_per_length`` documents share ONE filler text
of that length; each hides a different fact (the needle) at a random depth. The query asks
for its document's fact, so only the needle tells the documents apart: a method scores
only if the merged vector still carries one sentence among thousands of tokens.

* passkey: "The pass key of {name} is {5 digits}. Remember it. {digits} is the pass key of {name}."
  query: "What is the pass key of {name}?"
* needle: "{name}'s favourite {thing} is the {colour} one from {city}."
  query: "What is {name}'s favourite {thing}?"

Acc@1 is the share of queries whose own document ranks first among the documents of that length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vbert.embedders.base import Embedder
from vbert.evaluation.metrics import ranks_of_targets, recall_at
from vbert.evaluation.retrieval import encode_documents, encode_queries, summarise
from vbert.mergers import Merger

LENGTHS = (256, 512, 1024, 2048, 4096, 8192)
NAMES = (
    "Amelia",
    "Bruno",
    "Chiara",
    "Dmitri",
    "Elif",
    "Farid",
    "Greta",
    "Hiroshi",
    "Ines",
    "Jonas",
    "Kavya",
    "Lorenzo",
    "Mei",
    "Nadia",
    "Oskar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tomasz",
    "Ulla",
    "Viktor",
    "Wanjiru",
    "Xavier",
    "Yara",
    "Zoltan",
)
THINGS = ("book", "bicycle", "teapot", "painting", "song", "garden", "lamp", "scarf")
COLOURS = ("red", "green", "blue", "yellow", "violet", "orange", "black", "white")
CITIES = ("Lisbon", "Osaka", "Nairobi", "Quito", "Tallinn", "Hanoi", "Perth", "Bergen")


def make_needles(kind: str, count: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(needle sentence, query) pairs; names are distinct within one length."""
    if count > len(NAMES):
        raise ValueError(f"at most {len(NAMES)} documents per length (one name each), asked for {count}")
    out = []
    for name in rng.permutation(NAMES)[:count]:
        if kind == "passkey":
            key = "".join(str(d) for d in rng.integers(0, 10, size=5))
            out.append(
                (
                    f"The pass key of {name} is {key}. Remember it. {key} is the pass key of {name}.",
                    f"What is the pass key of {name}?",
                )
            )
        elif kind == "needle":
            thing, colour, city = rng.choice(THINGS), rng.choice(COLOURS), rng.choice(CITIES)
            out.append(
                (
                    f"{name}'s favourite {thing} is the {colour} one from {city}.",
                    f"What is {name}'s favourite {thing}?",
                )
            )
        else:
            raise ValueError(f"kind must be 'passkey' or 'needle', got {kind!r}")
    return out


def filler_of_length(embedder: Embedder, texts: Sequence[str], tokens: int) -> list[str]:
    """Paragraphs taken in order from ``texts`` until they hold about ``tokens`` tokens."""
    paragraphs, total = [], 0
    for text in texts:
        for line in text.split("\n"):
            line = line.strip()
            if not line:
                continue
            n = embedder.count_tokens(line)
            if total + n > tokens:
                if total == 0:
                    return [embedder.split(line, tokens)[0]]
                return paragraphs
            paragraphs.append(line)
            total += n
    if total < tokens // 2:
        raise ValueError(f"the filler corpus holds only {total} tokens; {tokens} are needed for this length")
    return paragraphs


def evaluate_needles(
    filler_texts: Sequence[str],
    embedder: Embedder,
    mergers: dict[str, Merger],
    kind: str = "passkey",
    lengths: Sequence[int] = LENGTHS,
    documents_per_length: int = 20,
    seed: int = 0,
    cache: object = None,
) -> dict:
    rng = np.random.default_rng(seed)
    report: dict = {"task": kind, "documents_per_length": documents_per_length, "seed": seed, "lengths": {}}
    for length in lengths:
        paragraphs = filler_of_length(embedder, filler_texts, length)
        needles = make_needles(kind, documents_per_length, rng)
        documents = []
        for sentence, _ in needles:
            depth = int(rng.integers(0, len(paragraphs) + 1))
            documents.append("\n".join([*paragraphs[:depth], sentence, *paragraphs[depth:]]))
        encoded = encode_documents(documents, embedder, cache, show_progress=False)
        queries = encode_queries(embedder, [q for _, q in needles], cache)
        targets = np.arange(len(documents))
        report["lengths"][str(length)] = {
            name: summarise(recall_at(ranks_of_targets(queries, encoded.merge(merger), targets), 1))
            for name, merger in mergers.items()
        }
    return report
