"""Dataset build throughput vs. the embedder's raw forward throughput on the same texts.

For each dataset the build runs once into a temporary folder while every text it sends to the
embedder is recorded; then the same texts are embedded again in one ``embedder.encode`` call,
longest first (the embedder's best case: batches of equal length). The ratio
raw time / build time is the share of the embedder's throughput the builder keeps; the issue
asks for >= 0.90. The build time includes everything else: reading the corpus, tokenising,
splitting, Parquet writing, checksums and the manifest.

``--clock process`` (the default) times CPU seconds of this process rather than wall time, so
that other work on a shared machine does not skew the ratio; use one thread with it (CPU time of
idle-spinning worker threads would count). ``--clock wall`` is right on a dedicated machine or GPU.

    python benchmarks/data_throughput.py --embedder default --corpus debian --langs en,de,ko --articles 24
    python benchmarks/data_throughput.py --embedder toy --corpus toy --articles 200   # no weights needed
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vbert.data.article import Article
from vbert.data.datasets import (
    CommonOptions,
    ShardAssignment,
    build_article_sequences,
    build_atomic,
    build_n_to_one,
)
from vbert.files import atomic_write_json
from vbert.testing.toy import ToyEmbedder, toy_articles


class RecordingEmbedder:
    """Delegates to an embedder and keeps every text passed to ``encode``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.texts: list[str] = []
        for attr in ("name", "dim", "max_tokens", "content_window", "fingerprint", "prefix", "tokenizer"):
            if hasattr(inner, attr):
                setattr(self, attr, getattr(inner, attr))

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.encode(texts, batch_size=batch_size)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def split(self, text: str, max_tokens: int) -> list[str]:
        return self.inner.split(text, max_tokens)


def load_articles(corpus: str, path: str | None, langs: list[str] | None, n: int) -> list[Article]:
    if corpus == "toy":
        return toy_articles(n, min_words=300, max_words=1500)
    from vbert.data.corpora import load_corpus

    options: dict[str, Any] = {}
    if langs:
        options["langs"] = langs
    if path:
        options["path" if corpus == "files" else "corpus_dir"] = path
    articles: list[Article] = []
    per_lang: dict[str, int] = {}
    quota = -(-n // len(langs)) if langs else n
    for article in load_corpus(corpus, **options):
        if per_lang.get(article.lang, 0) < quota:
            per_lang[article.lang] = per_lang.get(article.lang, 0) + 1
            articles.append(article)
        if len(articles) >= n:
            break
    return articles


def build(kind: str, articles: list[Article], embedder: Any, out: Path, batch_size: int) -> Any:
    options = CommonOptions(batch_size=batch_size)
    one = ShardAssignment()
    if kind == "articles":
        return build_article_sequences(articles, embedder, out, min_tokens=0, options=options, assignment=one)
    if kind == "n-to-1":
        return build_n_to_one(articles, embedder, out, options=options, assignment=one)
    return build_atomic(articles, embedder, out, options=options, assignment=one)


def measure(
    kind: str, articles: list[Article], embedder: Any, batch_size: int, clock: Any, repeats: int = 1
) -> dict[str, Any]:
    """Alternate ``repeats`` builds and raw replays; report the median ratio (robust to load drift)."""
    builds, raws = [], []
    for _ in range(repeats):
        recorder = RecordingEmbedder(embedder)
        with tempfile.TemporaryDirectory() as folder:
            started = clock()
            result = build(kind, articles, recorder, Path(folder) / kind, batch_size)
            builds.append(clock() - started)
            size = sum(p.stat().st_size for p in Path(folder).rglob("*.parquet"))
        texts = sorted(recorder.texts, key=len, reverse=True)
        started = clock()
        embedder.encode(texts, batch_size=batch_size)
        raws.append(clock() - started)
    ratios = sorted(r / b for r, b in zip(raws, builds, strict=True))
    build_seconds, raw_seconds = float(np.median(builds)), float(np.median(raws))
    return {
        "dataset": kind,
        "articles": len(articles),
        "rows": sum(split["rows"] for split in result.manifest["splits"].values()),
        "texts_embedded": len(texts),
        "build_s": round(build_seconds, 2),
        "embed_in_build_wall_s": round(result.embed_seconds, 2),
        "raw_encode_s": round(raw_seconds, 2),
        "ratio": round(ratios[len(ratios) // 2], 3),
        "ratios": [round(r, 3) for r in ratios],
        "build_texts_per_s": round(len(texts) / build_seconds, 1),
        "raw_texts_per_s": round(len(texts) / raw_seconds, 1),
        "parquet_mb": round(size / 1e6, 2),
        "stats": result.manifest["stats"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="default", help="'toy', 'default', 'minilm' or a model folder")
    parser.add_argument(
        "--corpus", default="debian", help="'toy', 'debian', 'wikipedia', 'files' or a folder"
    )
    parser.add_argument("--path", help="corpus folder (files) or Debian corpus dir")
    parser.add_argument("--langs", help="comma-separated languages, e.g. en,de,ko")
    parser.add_argument(
        "--articles", type=int, default=24, help="articles to build from (spread over --langs)"
    )
    parser.add_argument("--datasets", default="articles,n-to-1,atomic")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=("process", "wall"), default="process")
    parser.add_argument(
        "--repeats", type=int, default=1, help="alternate builds and raw replays; median ratio"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    langs = [x.strip() for x in args.langs.split(",")] if args.langs else None
    if args.embedder == "toy":
        embedder: Any = ToyEmbedder(dim=384, max_tokens=512, layers=4)
    else:
        from vbert import load_embedder

        embedder = load_embedder(args.embedder)
    articles = load_articles(args.corpus, args.path, langs, args.articles)
    if not articles:
        print("the corpus gave no articles", file=sys.stderr)
        return 2
    embedder.encode([a.text[:400] for a in articles[:4]], batch_size=4)  # warm-up
    results = []
    for kind in args.datasets.split(","):
        clock = time.process_time if args.clock == "process" else time.perf_counter
        results.append(measure(kind.strip(), articles, embedder, args.batch_size, clock, args.repeats))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "stats"}), flush=True)
    report = {
        "embedder": getattr(embedder, "name", args.embedder),
        "corpus": args.corpus,
        "langs": langs,
        "threads": args.threads,
        "clock": args.clock,
        "batch_size": args.batch_size,
        "device": str(getattr(embedder, "device", "cpu")),
        "results": results,
    }
    if args.json:
        atomic_write_json(args.json, report, sort_keys=False)
    print("| dataset | articles | rows | texts | build s | raw encode s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['dataset']} | {r['articles']} | {r['rows']} | {r['texts_embedded']} | {r['build_s']} | "
            f"{r['raw_encode_s']} | {r['ratio']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
