"""The main job (`make demo`): offline, end to end, on held-out data.

1. Fetch the Debian documentation corpus (cached after the first run).
2. Encode long multilingual test documents with the shipped merger and the baselines; time
   the cold path (embedding every chunk) against the cached path (merge only).
3. Run the Finesse benchmark on a held-out probe set (test split).
4. Run the retrieval evaluation (small size) on the test split.
5. Write the leaderboard site and Anatomy pictures; print where everything is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from vbert.data.article import Article

DEMO_FAMILIES = ("debian-handbook", "debian-reference", "installation-guide", "debian-faq")
SHOWCASE_LANGS = ("en", "de", "fr", "ja", "ko", "zh-CN", "es", "ru")


def _say(message: str) -> None:
    print(message, flush=True)


def _step(title: str) -> Callable[[], None]:
    _say(f"\n== {title}")
    started = time.perf_counter()
    return lambda: _say(f"   done in {time.perf_counter() - started:.1f} s")


def load_mergers(merger: str) -> dict:
    """The competitors: the chosen merger (shipped default if present) and every training-free baseline."""
    import torch

    from vbert import SequenceMergerConfig, SequenceMergerModel, load_merger
    from vbert.mergers import MERGERS, baseline_names

    try:
        main = load_merger(merger)
        label = "merger" if merger == "default" else Path(merger).name
    except FileNotFoundError as err:
        _say(
            f"   note: {err}\n   using an UNTRAINED merger instead (residual-to-mean: it equals mean pooling)"
        )
        torch.manual_seed(0)  # the same untrained weights every run, so a re-run resumes its outputs
        main = SequenceMergerModel(SequenceMergerConfig(d_model=384)).eval()
        label = "merger-untrained"
    return {label: main, **{name: MERGERS.get(name).factory() for name in baseline_names()}}


def showcase(embedder: object, mergers: dict, articles: list[Article], out: Path) -> None:
    """Encode a few long documents, cold and cached, with every merger; print timings."""
    from vbert import LongDocumentEncoder
    from vbert.cache import ChunkCache

    picked: dict[str, Article] = {}
    for article in sorted(articles, key=lambda a: -len(a.text)):
        if article.lang in SHOWCASE_LANGS and article.lang not in picked and len(article.text) < 40_000:
            picked[article.lang] = article
    documents = list(picked.values())
    cache = ChunkCache(out / "showcase-cache.sqlite")
    first = LongDocumentEncoder(embedder, next(iter(mergers.values())), cache=cache)
    started = time.perf_counter()
    chunked = [first.chunk(a.text) for a in documents]
    first.embed_chunks([c for chunks in chunked for c in chunks])
    cold = time.perf_counter() - started
    total_chunks = sum(len(c) for c in chunked)
    _say(f"   {len(documents)} test documents, {total_chunks} chunks of ≤{first.chunk_tokens} tokens")
    _say(f"   cold: embedding every chunk took {cold:.1f} s ({total_chunks / cold:.1f} chunks/s)")
    vectors = {}
    for name, merger in mergers.items():
        encoder = LongDocumentEncoder(embedder, merger, cache=cache)
        started = time.perf_counter()
        vectors[name] = encoder.encode([a.text for a in documents])
        _say(
            f"   cached: {name:<18} re-encoded all {len(documents)} documents (chunk, cache lookup, merge) in {1000 * (time.perf_counter() - started):8.1f} ms"
        )
    names = list(vectors)
    _say("\n   lang  chunks  " + "  ".join(f"cos({n[:12]},{names[1]})" for n in names if n != names[1]))
    for i, article in enumerate(documents):
        sims = [float(vectors[n][i] @ vectors[names[1]][i]) for n in names if n != names[1]]
        _say(
            f"   {article.lang:<5} {len(chunked[i]):>6}  "
            + "  ".join(f"{s:>{len(names[1]) + 17}.3f}" for s in sims)
        )
    cache.close()


def finesse_config(out: Path, corpus_dir: Path, samples: int, max_length: int) -> dict:
    return {
        "name": "demo",
        "metric": "rss",
        "seed": 42,
        "embedder": "default",
        "probes": {
            "file": str(out / "probes.parquet"),
            "source": {"kind": "corpus", "name": str(corpus_dir), "split": "test"},
            "tokenizer": "default",
            "sequence_length": {"min": 4, "max": max_length},
            "samples_per_length": samples,
            "token_per_sample": 256,
            "document_reuse": "across_samples",
        },
        "scoring": {"formula": "q1q3", "score_version": "balanced", "chunk_space": "base"},
        "runtime": {"progress": False},
    }


def run_demo(output: Path, merger: str = "default", quick: bool = False) -> None:
    from vbert import load_embedder
    from vbert.data.corpora import load_corpus
    from vbert.data.corpora.debian import default_corpus_dir, fetch_debian
    from vbert.data.splits import filter_split

    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    done = _step("Default embedder (multilingual-e5-small, offline)")
    embedder = load_embedder("default")
    _say(
        f"   {embedder.name}: {embedder.dim}-d, window {embedder.max_tokens} tokens, fingerprint {embedder.fingerprint}"
    )
    done()

    done = _step("Corpus: Debian documentation in many languages (cached after the first fetch)")
    # Its own folder: a subset fetched here must not replace the manifest of `vbert corpus fetch debian`.
    report = fetch_debian(
        default_corpus_dir().with_name("debian-demo"),
        families=DEMO_FAMILIES,
        log=lambda line: _say(f"   {line}"),
    )
    articles = list(load_corpus(report.corpus_dir))
    test = list(filter_split(articles, "test"))
    langs = sorted({a.lang for a in test})
    _say(
        f"   {len(articles)} documents; held-out test split: {len(test)} documents in {len(langs)} languages"
    )
    done()

    mergers = load_mergers(merger)

    done = _step("Long documents: cold (embed every chunk) vs cached (no embedding)")
    showcase(embedder, mergers, test, output)
    done()

    done = _step("Finesse benchmark on held-out probes (balanced score, q1q3, base chunk space)")
    from vbert.finesse import run_benchmark
    from vbert.mergers import baseline_names

    config = finesse_config(
        output, report.corpus_dir, samples=3 if quick else 5, max_length=8 if quick else 16
    )
    main_name = next(iter(mergers))
    config["competitors"] = [{"name": main_name, "kind": "merger", "merger": merger}] + [
        {"name": name, "kind": name} for name in baseline_names()
    ]
    run = run_benchmark(
        config, output / "finesse", embedder=embedder, mergers={main_name: mergers[main_name]}
    )
    _say(run.summary)
    done()

    done = _step("Retrieval on the held-out split (small size; 95% bootstrap intervals)")
    from vbert.evaluation.suite import format_markdown, run_retrieval_suite
    from vbert.files import atomic_write_json

    tasks = (
        ("deep-paragraph", "cross-lingual", "passkey")
        if quick
        else ("deep-paragraph", "cross-lingual", "passkey", "needle")
    )
    retrieval = run_retrieval_suite(test, embedder, mergers, tasks=tasks, size="small", cache=None)
    atomic_write_json(output / "retrieval.json", retrieval)
    _say(format_markdown(retrieval))
    done()

    done = _step("Leaderboard site and Anatomy pictures")
    from vbert.finesse.heatmaps import inspect_sample
    from vbert.finesse.leaderboard import build_site
    from vbert.finesse.raw import RawRun

    site = build_site(
        list(run.result_files.values()), output / "site", title="vbert demo: Finesse leaderboard"
    )
    pictures = output / "anatomy"
    for name in (main_name, "mean"):
        raw = RawRun.open(run.raw_dir / name)
        for flag in ("best", "worst"):
            inspect_sample(raw, config["probes"]["sequence_length"]["max"], pictures, **{flag: True})
    _say(f"   leaderboard: {site.index.resolve().as_uri()}")
    _say(f"   anatomy pictures (TD/BU heat-maps, best and worst sample): {pictures.resolve()}")
    done()

    _say(f"\nAll outputs are under {output.resolve()} ({time.perf_counter() - started:.0f} s in all).")
