"""The main job (`make demo`): offline, end to end, on held-out data.

1. Fetch the Debian documentation corpus (cached after the first run).
2. Encode long multilingual test documents with the shipped merger and the baselines; time
   the cold path (embedding every chunk) against the cached path (merge only).
3. Run the Finesse benchmark on a held-out probe set (test split).
4. Run the retrieval evaluation on the test split.
5. Write the leaderboard site and Anatomy pictures; print where everything is, and the seconds
   each section took.

Every section embeds through ONE chunk cache (:class:`vbert.cache.ChunkCache`, the default file
unless ``cache=`` says otherwise): the long documents of section 2 are documents of the
retrieval corpus, so section 4 finds their chunks already embedded; Finesse stores its probe
chunks there too; retrieval queries are cached beside them. No text is embedded twice, and a
second run embeds nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vbert.cache import ChunkCache
from vbert.data.article import Article
from vbert.embedders.base import Embedder

DEMO_FAMILIES = ("debian-handbook", "debian-reference", "installation-guide", "debian-faq")
SHOWCASE_MAX_CHARS = 40_000


@dataclass(frozen=True)
class DemoPlan:
    """How much each section does. :data:`PLANS` holds the two the CLI offers.

    The full plan keeps `make demo` under 8 minutes on 2 CPU cores: about 120,000 tokens are
    embedded on a first run (Finesse about 46,000, the long documents about 25,000, retrieval
    about 50,000 more) where the demo embedded 386,000 before its sections shared a cache.
    Cross-lingual retrieval is left out: on the demo corpus's test split (9 to 27 parallel
    documents per language) every method finds every translation (Recall@1 100% for en-de,
    en-ko and en-ru), so its table says nothing, and it cost a third of the embedding.
    """

    showcase_documents: int = 8
    finesse_samples: int = 5
    finesse_max_length: int = 16
    finesse_chunk_tokens: int = 256
    retrieval_size: str = "demo"
    retrieval_tasks: tuple[str, ...] = ("deep-paragraph", "passkey", "needle")


PLANS = {
    "full": DemoPlan(),
    "quick": DemoPlan(
        showcase_documents=4,
        finesse_samples=3,
        finesse_max_length=8,
        retrieval_tasks=("deep-paragraph", "passkey"),
    ),
}


def _say(message: str) -> None:
    print(message, flush=True)


class Sections:
    """Times each section and counts the vectors it added to the shared cache (what it embedded)."""

    def __init__(self, cache: ChunkCache) -> None:
        self.cache = cache
        self.rows: list[tuple[str, float, int]] = []

    def start(self, title: str, short: str) -> Callable[[], None]:
        _say(f"\n== {title}")
        started, before = time.perf_counter(), len(self.cache)

        def done() -> None:
            seconds, embedded = time.perf_counter() - started, len(self.cache) - before
            self.rows.append((short, seconds, embedded))
            _say(f"   done in {seconds:.1f} s")

        return done

    def summary(self) -> str:
        total = sum(seconds for _, seconds, _ in self.rows)
        lines = [f"   {'section':<22} {'seconds':>8} {'texts embedded':>15}"]
        lines += [f"   {name:<22} {seconds:>8.1f} {embedded:>15,}" for name, seconds, embedded in self.rows]
        lines.append(f"   {'total':<22} {total:>8.1f} {sum(e for _, _, e in self.rows):>15,}")
        return "\n".join(lines)

    def to_dict(self) -> list[dict]:
        return [{"section": n, "seconds": round(s, 1), "texts_embedded": e} for n, s, e in self.rows]


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


def pick_showcase(articles: Sequence[Article], texts: Sequence[str], count: int) -> list[Article]:
    """Up to ``count`` of the ``articles`` whose text is among ``texts`` (what retrieval embeds):
    one per language first, then the longest; none over :data:`SHOWCASE_MAX_CHARS` characters."""
    wanted = set(texts)
    pool = sorted(
        (a for a in articles if a.text in wanted and len(a.text) < SHOWCASE_MAX_CHARS),
        key=lambda a: (-len(a.text), a.id),
    )
    picked: dict[str, Article] = {}
    for article in pool:
        if article.lang not in {a.lang for a in picked.values()}:
            picked[article.id] = article
    for article in pool:
        if len(picked) >= count:
            break
        picked.setdefault(article.id, article)
    return list(picked.values())[:count]


def showcase(embedder: Embedder, mergers: dict, documents: list[Article], cache: ChunkCache) -> None:
    """Encode a few long documents, cold and cached, with every merger; print timings."""
    from vbert import LongDocumentEncoder
    from vbert.cache import text_key

    first = LongDocumentEncoder(embedder, next(iter(mergers.values())), cache=cache)
    chunked = [first.chunk(a.text) for a in documents]
    chunks = [c for pieces in chunked for c in pieces]
    cached = len(cache.get_vectors(embedder.fingerprint, {text_key(c) for c in chunks}))
    started = time.perf_counter()
    first.embed_chunks(chunks)
    cold = time.perf_counter() - started
    _say(f"   {len(documents)} test documents, {len(chunks)} chunks of ≤{first.chunk_tokens} tokens")
    fresh = len(set(chunks)) - cached
    if cached:
        _say(f"   ({cached} of these chunks were in the cache already, from an earlier run)")
    if fresh:
        _say(f"   cold: embedding {fresh} chunks took {cold:.1f} s ({fresh / cold:.1f} chunks/s)")
    vectors = {}
    for name, merger in mergers.items():
        encoder = LongDocumentEncoder(embedder, merger, cache=cache)
        started = time.perf_counter()
        vectors[name] = encoder.encode([a.text for a in documents])
        _say(
            f"   cached: {name:<18} re-encoded all {len(documents)} documents (cache lookup, merge) in "
            f"{1000 * (time.perf_counter() - started):8.1f} ms"
        )
    names = list(vectors)
    _say("\n   lang  chunks  " + "  ".join(f"cos({n[:12]},{names[1]})" for n in names if n != names[1]))
    for i, article in enumerate(documents):
        sims = [float(vectors[n][i] @ vectors[names[1]][i]) for n in names if n != names[1]]
        _say(
            f"   {article.lang:<5} {len(chunked[i]):>6}  "
            + "  ".join(f"{s:>{len(names[1]) + 17}.3f}" for s in sims)
        )


def finesse_config(out: Path, corpus_dir: Path, plan: DemoPlan) -> dict:
    return {
        "name": "demo",
        "metric": "rss",
        "seed": 42,
        "embedder": "default",
        "probes": {
            "file": str(out / "probes.parquet"),
            "source": {"kind": "corpus", "name": str(corpus_dir), "split": "test"},
            "tokenizer": "default",
            "sequence_length": {"min": 4, "max": plan.finesse_max_length},
            "samples_per_length": plan.finesse_samples,
            "token_per_sample": plan.finesse_chunk_tokens,
            "document_reuse": "across_samples",
        },
        "scoring": {"formula": "q1q3", "score_version": "balanced", "chunk_space": "base"},
        # No timed embedding: a timed sample embeds its chunks again, and the long-documents
        # section already shows what embedding costs against merging.
        "runtime": {"progress": False, "timed_samples": 0},
    }


def fetch_corpus() -> Path:
    from vbert.data.corpora.debian import default_corpus_dir, fetch_debian

    # Its own folder: a subset fetched here must not replace the manifest of `vbert corpus fetch debian`.
    report = fetch_debian(
        default_corpus_dir().with_name("debian-demo"),
        families=DEMO_FAMILIES,
        log=lambda line: _say(f"   {line}"),
    )
    return report.corpus_dir


def run_demo(
    output: Path,
    merger: str = "default",
    quick: bool = False,
    *,
    embedder: Embedder | None = None,
    mergers: dict | None = None,
    corpus_dir: Path | None = None,
    cache: ChunkCache | str | Path | None = None,
    plan: DemoPlan | None = None,
) -> list[dict]:
    """Run every section; returns the per-section seconds and texts embedded (also printed).

    ``embedder``, ``mergers`` (competitor name → merger; the first is the one showcased),
    ``corpus_dir`` (a corpus folder, instead of fetching the Debian subset) and ``plan`` replace
    what the demo loads or chooses; ``cache`` is the chunk cache every section shares (default:
    the default cache file, so a second run embeds nothing).
    """
    from vbert.data.corpora import load_corpus
    from vbert.data.splits import filter_split
    from vbert.files import atomic_write_json

    plan = plan or PLANS["quick" if quick else "full"]
    output.mkdir(parents=True, exist_ok=True)
    shared = cache if isinstance(cache, ChunkCache) else ChunkCache(cache)
    sections = Sections(shared)

    done = sections.start("Default embedder (multilingual-e5-small, offline)", "embedder")
    if embedder is None:
        from vbert import load_embedder

        embedder = load_embedder("default")
    _say(
        f"   {embedder.name}: {embedder.dim}-d, window {embedder.max_tokens} tokens, fingerprint {embedder.fingerprint}"
    )
    _say(f"   chunk cache shared by every section: {shared.path} ({len(shared):,} vectors)")
    done()

    done = sections.start(
        "Corpus: Debian documentation in many languages (cached after the first fetch)", "corpus"
    )
    corpus_dir = corpus_dir or fetch_corpus()
    articles = list(load_corpus(corpus_dir))
    test = list(filter_split(articles, "test"))
    langs = sorted({a.lang for a in test})
    _say(
        f"   {len(articles)} documents; held-out test split: {len(test)} documents in {len(langs)} languages"
    )
    done()

    mergers = mergers or load_mergers(merger)
    main_name = next(iter(mergers))

    done = sections.start(
        "Long documents: cold (embed every chunk) vs cached (no embedding)", "long documents"
    )
    from vbert.evaluation.suite import deep_paragraph_task

    # Documents of the retrieval corpus, so the retrieval section finds their chunks embedded.
    task = deep_paragraph_task(test, embedder, plan.retrieval_size)
    showcase(embedder, mergers, pick_showcase(test, task.documents, plan.showcase_documents), shared)
    done()

    done = sections.start(
        "Finesse benchmark on held-out probes (balanced score, q1q3, base chunk space)", "Finesse"
    )
    from vbert.finesse import run_benchmark
    from vbert.mergers import baseline_names

    config = finesse_config(output, corpus_dir, plan)
    config["competitors"] = [{"name": main_name, "kind": "merger", "merger": merger}] + [
        {"name": name, "kind": name} for name in baseline_names() if name in mergers
    ]
    run = run_benchmark(
        config,
        output / "finesse",
        embedder=embedder,
        mergers={main_name: mergers[main_name]},
        cache=shared,
    )
    _say(run.summary)
    done()

    done = sections.start(
        f"Retrieval on the held-out split ({plan.retrieval_size} size; 95% bootstrap intervals)", "retrieval"
    )
    from vbert.evaluation.suite import format_markdown, run_retrieval_suite

    retrieval = run_retrieval_suite(
        test, embedder, mergers, tasks=plan.retrieval_tasks, size=plan.retrieval_size, cache=shared
    )
    atomic_write_json(output / "retrieval.json", retrieval)
    _say(format_markdown(retrieval))
    done()

    done = sections.start("Leaderboard site and Anatomy pictures", "site")
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
            inspect_sample(raw, plan.finesse_max_length, pictures, **{flag: True})
    _say(f"   leaderboard: {site.index.resolve().as_uri()}")
    _say(f"   anatomy pictures (TD/BU heat-maps, best and worst sample): {pictures.resolve()}")
    done()

    _say("\n== Time per section (texts embedded = new vectors in the shared chunk cache)")
    _say(sections.summary())
    timings = sections.to_dict()
    atomic_write_json(output / "timings.json", timings)
    if shared is not cache:
        shared.close()
    _say(f"\nAll outputs are under {output.resolve()}.")
    return timings
