"""Deep-paragraph retrieval at a size that tells methods apart, with max-sim as the upper reference.

The corpus holds every long document of the held-out split (in the chosen languages and token
range) plus **distractors**: documents of the training split, drawn in a seeded order. Two tasks
share its chunk vectors (embedded once, through the chunk cache):

* ``deep-paragraph-distractors``: the query is a paragraph from past the first window of a held-out
  document (so truncation cannot see it); the target is that document; the candidates are every
  corpus document in the target's language (translations of the target in other languages are
  not candidates, so they cannot steal the query).
* ``cross-lingual-deep``: the query is a deep paragraph of a held-out document in language A;
  the target is its translation (same ``Article.group``) in language B; the candidates are every
  corpus document in B. Both directions between the pivot language and each other language.
  Paragraphs that occur verbatim in another corpus document (boilerplate, or strings left
  untranslated) are never used as queries.

Every method ranks the same candidates for the same queries: each merger (one vector per
document), and ``max-sim`` (a document scores its best chunk's cosine), the multi-vector
reference. Per method: nDCG@10, Recall@1 and MRR@10; the paired Δ vs the baseline (mean pooling)
and the share of the baseline→max-sim gap recovered, with 95% intervals from a bootstrap over
target documents (deep-paragraph) or translation groups (cross-lingual), because queries of one
document are not independent.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from vbert.data.article import Article
from vbert.embedders.base import Embedder
from vbert.evaluation.paired import paired_report
from vbert.evaluation.retrieval import EncodedDocuments, encode_documents, encode_queries
from vbert.mergers import MeanPoolMerger, Merger

DEEP = "deep-paragraph-distractors"
CROSS = "cross-lingual-deep"
DEEP_TASKS = (DEEP, CROSS)
MAX_SIM = "max-sim"
BASELINE = "mean"
METRICS = ("ndcg@10", "recall@1", "mrr@10")
WINDOW_BANDS = ((2, 2), (3, 4), (5, 8), (9, 10**9))  # 1-based window of the paragraph's start


@dataclass(frozen=True)
class DeepPlan:
    """What the corpus and the queries are made of (recorded in the report)."""

    langs: tuple[str, ...] = ("en", "de", "fr", "es", "it", "ja")
    min_tokens: int = 2000
    max_tokens: int = 16000
    distractors: int = 400
    distractor_min_tokens: int = 512
    queries_per_document: int = 3
    query_tokens: tuple[int, int] = (24, 160)
    pivot: str = "en"
    seed: int = 0

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


@dataclass
class Paragraph:
    text: str
    line: int
    window: int  # 1-based window of the embedder's content window the paragraph starts in


@dataclass
class QuerySet:
    """Queries of one task: text, target corpus index, the language candidates must have, cluster."""

    task: str
    texts: list[str] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    langs: list[str] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)
    windows: list[int] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)


@dataclass
class DeepCorpus:
    articles: list[Article]
    heldout: list[bool]
    tokens: list[int]

    @property
    def langs(self) -> np.ndarray:
        return np.array([a.lang for a in self.articles])


def _order_key(seed: int, article: Article) -> str:
    return hashlib.sha256(f"{seed}\x00{article.id}".encode()).hexdigest()


def select_corpus(
    heldout: Iterable[Article], distractor_pool: Iterable[Article], embedder: Embedder, plan: DeepPlan
) -> DeepCorpus:
    """Held-out documents in ``plan.langs`` and the token range, then ``plan.distractors`` others.

    Distractors are taken in the order of sha256(seed, id) among pool documents of the same
    languages with ``distractor_min_tokens``..``max_tokens`` tokens, so the choice does not depend
    on the corpus order and a larger count only adds documents.
    """
    langs = set(plan.langs)
    articles, flags, tokens = [], [], []
    for article in heldout:
        if article.lang in langs:
            n = embedder.count_tokens(article.text)
            if plan.min_tokens <= n <= plan.max_tokens:
                articles.append(article)
                flags.append(True)
                tokens.append(n)
    held_ids = {a.id for a in articles}
    pool = sorted(
        (a for a in distractor_pool if a.lang in langs and a.id not in held_ids),
        key=lambda a: _order_key(plan.seed, a),
    )
    added = 0
    for article in pool:
        if added >= plan.distractors:
            break
        n = embedder.count_tokens(article.text)
        if plan.distractor_min_tokens <= n <= plan.max_tokens:
            articles.append(article)
            flags.append(False)
            tokens.append(n)
            added += 1
    if sum(flags) < 2:
        raise ValueError(
            f"deep-paragraph retrieval needs at least 2 held-out documents of {plan.min_tokens}-"
            f"{plan.max_tokens} tokens in {sorted(langs)}, found {sum(flags)}; fetch the corpus, widen the "
            "languages or lower min_tokens"
        )
    return DeepCorpus(articles, flags, tokens)


def deep_paragraphs(text: str, embedder: Embedder, query_tokens: tuple[int, int]) -> list[Paragraph]:
    """Paragraphs (lines) of ``query_tokens`` tokens that start past the first content window.

    A line's start is placed by summing the token counts of the lines before it (exact up to
    tokens that span a line break).
    """
    window = embedder.content_window
    found, offset = [], 0
    for index, line in enumerate(text.split("\n")):
        n = embedder.count_tokens(line)
        if offset >= window and query_tokens[0] <= n <= query_tokens[1]:
            found.append(Paragraph(line.strip(), index, offset // window + 1))
        offset += n
    return found


def _pick(paragraphs: list[Paragraph], k: int, seed: int, key: str) -> list[Paragraph]:
    if len(paragraphs) <= k:
        return paragraphs
    rng = np.random.default_rng(int(hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()[:16], 16))
    return [paragraphs[i] for i in sorted(rng.choice(len(paragraphs), size=k, replace=False))]


def _shared_lines(corpus: DeepCorpus) -> set[str]:
    """Lines that occur in more than one corpus document: boilerplate no query may use."""
    counts = Counter(line.strip() for a in corpus.articles for line in set(a.text.split("\n")))
    return {line for line, n in counts.items() if n > 1}


def build_queries(corpus: DeepCorpus, embedder: Embedder, plan: DeepPlan) -> dict[str, QuerySet]:
    """The deep-paragraph and cross-lingual-deep query sets over ``corpus`` (see the module doc)."""
    shared = _shared_lines(corpus)
    deep = QuerySet(DEEP)
    cross = QuerySet(CROSS)
    by_group: dict[str, dict[str, int]] = defaultdict(dict)
    paragraphs: dict[int, list[Paragraph]] = {}
    for index, (article, held) in enumerate(zip(corpus.articles, corpus.heldout, strict=True)):
        if not held:
            continue
        if article.group:
            by_group[article.group][article.lang] = index
        found = [
            p for p in deep_paragraphs(article.text, embedder, plan.query_tokens) if p.text not in shared
        ]
        paragraphs[index] = found
        for p in _pick(found, plan.queries_per_document, plan.seed, article.id):
            _add(deep, p, index, index, article, corpus, cluster=article.id)
    for group, members in sorted(by_group.items()):
        if plan.pivot not in members:
            continue
        pivot = members[plan.pivot]
        for lang, index in sorted(members.items()):
            if lang == plan.pivot:
                continue
            for source, target in ((index, pivot), (pivot, index)):
                # lines shared with the translation (untranslated strings) are already left out
                key = f"{corpus.articles[source].id}->{corpus.articles[target].lang}"
                for p in _pick(paragraphs[source], plan.queries_per_document, plan.seed, key):
                    _add(cross, p, source, target, corpus.articles[source], corpus, cluster=group)
    return {q.task: q for q in (deep, cross) if q.texts}


def _add(
    queries: QuerySet,
    p: Paragraph,
    source: int,
    target: int,
    article: Article,
    corpus: DeepCorpus,
    cluster: str,
) -> None:
    queries.texts.append(p.text)
    queries.targets.append(target)
    queries.langs.append(corpus.articles[target].lang)
    queries.clusters.append(cluster)
    queries.windows.append(p.window)
    queries.records.append(
        {
            "source": article.id,
            "line": p.line,
            "window": p.window,
            "target": corpus.articles[target].id,
            "pair": f"{article.lang}-{corpus.articles[target].lang}",
        }
    )


def max_sim_scores(queries: np.ndarray, encoded: EncodedDocuments, block: int = 256) -> np.ndarray:
    """(q, n_docs): each document's best chunk cosine to each query."""
    chunks = np.concatenate(encoded.sequences).astype(np.float32)  # (total chunks, d)
    starts = np.cumsum([0] + [len(s) for s in encoded.sequences[:-1]])
    out = np.empty((len(queries), len(encoded.sequences)), dtype=np.float32)
    for begin in range(0, len(queries), block):
        sims = queries[begin : begin + block] @ chunks.T  # (block, total chunks)
        out[begin : begin + block] = np.maximum.reduceat(sims, starts, axis=1)
    return out


def ranks_among_candidates(scores: np.ndarray, targets: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """1-based rank of each target among its query's candidates (bool (q, n)); ties count against it."""
    target_scores = scores[np.arange(len(targets)), targets]
    return ((scores >= target_scores[:, None]) & candidates).sum(axis=1)


def per_query_metrics(ranks: np.ndarray) -> dict[str, np.ndarray]:
    top10 = ranks <= 10
    return {
        "ndcg@10": np.where(top10, 1.0 / np.log2(ranks + 1.0), 0.0),
        "recall@1": (ranks <= 1).astype(np.float64),
        "mrr@10": np.where(top10, 1.0 / ranks, 0.0),
    }


def evaluate_deep_tasks(
    corpus: DeepCorpus,
    queries: dict[str, QuerySet],
    embedder: Embedder,
    mergers: dict[str, Merger],
    plan: DeepPlan,
    cache: object = None,
    resamples: int = 2000,
    show_progress: bool = True,
) -> dict:
    """Score every merger and max-sim on every query set; a JSON-ready report."""
    mergers = dict(mergers)
    if BASELINE not in mergers:
        mergers = {BASELINE: MeanPoolMerger(), **mergers}
    if MAX_SIM in mergers:
        raise ValueError(f"{MAX_SIM!r} is the multi-vector reference; do not pass a merger under that name")
    encoded = encode_documents([a.text for a in corpus.articles], embedder, cache, show_progress)
    merged = {name: encoded.merge(merger) for name, merger in mergers.items()}
    doc_langs = corpus.langs
    chunks = np.array([len(s) for s in encoded.sequences])
    report: dict = {
        "plan": plan.to_dict(),
        "corpus": {
            "documents": len(corpus.articles),
            "heldout": int(sum(corpus.heldout)),
            "distractors": int(len(corpus.heldout) - sum(corpus.heldout)),
            "chunks": int(chunks.sum()),
            "tokens": int(sum(corpus.tokens)),
            "by_lang": dict(sorted(Counter(doc_langs.tolist()).items())),
            "ids_sha256": hashlib.sha256("\n".join(a.id for a in corpus.articles).encode()).hexdigest(),
        },
        "tasks": {},
    }
    for name, qs in queries.items():
        q_vectors = encode_queries(embedder, qs.texts, cache)
        targets = np.array(qs.targets)
        candidates = doc_langs[None, :] == np.array(qs.langs)[:, None]
        scores = {m: q_vectors @ vectors.T for m, vectors in merged.items()}
        scores[MAX_SIM] = max_sim_scores(q_vectors, encoded)
        ranks = {m: ranks_among_candidates(s, targets, candidates) for m, s in scores.items()}
        metrics = {m: per_query_metrics(r) for m, r in ranks.items()}
        clusters = np.array(qs.clusters)
        task: dict = {
            "queries": len(qs.texts),
            "clusters": int(len(set(qs.clusters))),
            "candidates_per_query": float(candidates.sum(axis=1).mean()),
            "pairs": dict(sorted(Counter(r["pair"] for r in qs.records).items())),
            "bootstrap": {
                "unit": "document" if name == DEEP else "group",
                "resamples": resamples,
            },
            "metrics": {
                metric: paired_report(
                    {m: v[metric] for m, v in metrics.items()},
                    clusters,
                    BASELINE,
                    MAX_SIM,
                    resamples,
                    plan.seed,
                )
                for metric in METRICS
            },
            "by_window": _by_band(metrics, np.array(qs.windows), targets, chunks),
            "distractor_effect": _distractor_effect(
                scores, targets, candidates, np.array(corpus.heldout), chunks
            ),
            "query_records": qs.records,
            "per_query_rank": {m: r.tolist() for m, r in ranks.items()},
        }
        report["tasks"][name] = task
    return report


def _distractor_effect(
    scores: dict[str, np.ndarray],
    targets: np.ndarray,
    candidates: np.ndarray,
    heldout: np.ndarray,
    chunks: np.ndarray,
) -> dict:
    """Per method: nDCG@10 among held-out candidates only, and what its wrong top-1 documents are.

    A method that loses much more than another when distractors join, and whose wrong top-1s are
    mostly short distractors, scores documents of different lengths on different scales.
    """
    effect = {}
    for method, s in scores.items():
        alone = ranks_among_candidates(s, targets, candidates & heldout[None, :])
        top = np.where(candidates, s, -np.inf).argmax(axis=1)
        wrong = top != targets
        effect[method] = {
            "ndcg@10_without_distractors": float(per_query_metrics(alone)["ndcg@10"].mean()),
            "wrong_top1": int(wrong.sum()),
            "wrong_top1_distractors": int((~heldout[top[wrong]]).sum()),
            "wrong_top1_mean_chunks": float(chunks[top[wrong]].mean()) if wrong.any() else None,
            "target_mean_chunks": float(chunks[targets].mean()),
        }
    return effect


def _by_band(
    metrics: dict[str, dict[str, np.ndarray]], windows: np.ndarray, targets: np.ndarray, chunks: np.ndarray
) -> dict:
    """Mean nDCG@10 per method by the paragraph's window and by the target's length in chunks."""
    bands: dict[str, np.ndarray] = {}
    for low, high in WINDOW_BANDS:
        label = (
            f"window {low}" if low == high else f"window {low}+" if high > 10**6 else f"window {low}-{high}"
        )
        bands[label] = (windows >= low) & (windows <= high)
    target_chunks = chunks[targets]
    for low, high in ((1, 8), (9, 16), (17, 10**9)):
        label = f"target {low}+ chunks" if high > 10**6 else f"target {low}-{high} chunks"
        bands[label] = (target_chunks >= low) & (target_chunks <= high)
    return {
        label: {"n": int(mask.sum()), **{m: float(v["ndcg@10"][mask].mean()) for m, v in metrics.items()}}
        for label, mask in bands.items()
        if mask.any()
    }


def run_deep_retrieval(
    heldout: Iterable[Article],
    distractor_pool: Iterable[Article],
    embedder: Embedder,
    mergers: dict[str, Merger],
    plan: DeepPlan | None = None,
    cache: object = None,
    tasks: Sequence[str] = DEEP_TASKS,
    show_progress: bool = True,
) -> dict:
    plan = plan or DeepPlan()
    corpus = select_corpus(heldout, distractor_pool, embedder, plan)
    queries = {k: v for k, v in build_queries(corpus, embedder, plan).items() if k in tasks}
    if not queries:
        raise ValueError(f"no queries for {list(tasks)}: no held-out document has a deep paragraph")
    return evaluate_deep_tasks(corpus, queries, embedder, mergers, plan, cache, show_progress=show_progress)


def _cell(stat: dict, scale: float = 100.0, signed: bool = False) -> str:
    fmt = "{:+.1f}" if signed else "{:.1f}"
    mean, low, high = (
        "?" if stat[k] is None else fmt.format(scale * stat[k]) for k in ("mean", "ci_low", "ci_high")
    )
    return f"{mean} [{low}, {high}]"


def format_deep_markdown(report: dict) -> str:
    """One table per task: score, Δ vs mean and gap recovered, all with 95% intervals."""
    corpus = report["corpus"]
    lines = [
        f"Corpus: {corpus['documents']} documents ({corpus['heldout']} held-out, {corpus['distractors']} "
        f"distractors), {corpus['chunks']} chunks.",
        "",
    ]
    for name, task in report["tasks"].items():
        ndcg, r1 = task["metrics"]["ndcg@10"], task["metrics"]["recall@1"]
        lines += [
            f"### {name} ({task['queries']} queries, {task['clusters']} {task['bootstrap']['unit']}s, "
            f"{task['candidates_per_query']:.0f} candidates per query)",
            "",
            "| method | nDCG@10 | Δ vs mean | gap to max-sim recovered | Recall@1 |",
            "|---|---|---|---|---|",
        ]
        for method, entry in ndcg.items():
            delta = entry.get(f"delta_vs_{BASELINE}")
            gap = entry.get("gap_recovered")
            delta_cell = f"{_cell(delta, signed=True)} (±{100 * delta['half_width']:.1f})" if delta else "—"
            gap_cell = f"{_cell(gap)} %" if gap and gap["mean"] is not None else "n/a"
            lines.append(
                f"| {method} | {_cell(entry['score'])} | {delta_cell} | {gap_cell} | {_cell(r1[method]['score'])} |"
            )
        lines += [
            "",
            "| method | nDCG@10 without distractors | wrong top-1 | of which distractors | their mean chunks (targets') |",
            "|---|---|---|---|---|",
        ]
        for method, e in task.get("distractor_effect", {}).items():
            chunks = "–" if e["wrong_top1_mean_chunks"] is None else f"{e['wrong_top1_mean_chunks']:.1f}"
            lines.append(
                f"| {method} | {100 * e['ndcg@10_without_distractors']:.1f} | {e['wrong_top1']} | "
                f"{e['wrong_top1_distractors']} | {chunks} ({e['target_mean_chunks']:.1f}) |"
            )
        lines.append("")
    return "\n".join(lines)
