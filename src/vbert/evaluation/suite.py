"""The retrieval evaluation suite: all tasks on one held-out split, every method on the same data."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from vbert.chunk_layouts import open_cache
from vbert.data.article import Article
from vbert.embedders.base import Embedder
from vbert.evaluation.deep_retrieval import DEEP_TASKS, DeepPlan, format_deep_markdown, run_deep_retrieval
from vbert.evaluation.needle import LENGTHS, evaluate_needles
from vbert.evaluation.retrieval import (
    DeepParagraphTask,
    build_deep_paragraph_task,
    evaluate_cross_lingual,
    evaluate_deep_paragraph,
)
from vbert.mergers import Merger

DEFAULT_TASKS = ("deep-paragraph", "cross-lingual", "passkey", "needle")
TASKS = (*DEFAULT_TASKS, *DEEP_TASKS)


@dataclass(frozen=True)
class Size:
    deep_documents: int | None
    needle_documents: int
    needle_lengths: tuple[int, ...]
    deep_min_tokens: int = 2000
    deep_max_tokens: int = 16000
    cross_langs: tuple[str, ...] | None = None
    deep: DeepPlan = field(default_factory=DeepPlan)


SIZES = {
    "small": Size(
        deep_documents=16,
        needle_documents=8,
        needle_lengths=(256, 512, 1024, 2048),
        deep_max_tokens=6000,
        cross_langs=("de", "ja", "ko"),
        deep=DeepPlan(langs=("en", "de"), max_tokens=8000, distractors=100, queries_per_document=4),
    ),
    # `vbert demo`: the small size without the needle lengths of one or two chunks, where every
    # method scores alike (passkey: 100% for all).
    "demo": Size(
        deep_documents=16,
        needle_documents=8,
        needle_lengths=(1024, 2048),
        deep_max_tokens=6000,
        cross_langs=("de", "ja", "ko"),
        deep=DeepPlan(langs=("en", "de"), max_tokens=8000, distractors=100, queries_per_document=4),
    ),
    "full": Size(deep_documents=None, needle_documents=26, needle_lengths=LENGTHS),
}


def deep_plan_for(
    size: str, seed: int = 0, langs: Sequence[str] | None = None, distractors: int | None = None
) -> DeepPlan:
    """The size's plan for the deep tasks, with the languages or distractor count overridden."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    plan = replace(SIZES[size].deep, seed=seed)
    if langs:
        plan = replace(plan, langs=tuple(langs))
    if distractors is not None:
        plan = replace(plan, distractors=distractors)
    return plan


def deep_paragraph_task(
    articles: Sequence[Article], embedder: Embedder, size: str = "small", seed: int = 0
) -> DeepParagraphTask:
    """The documents and queries of the size's deep-paragraph task (what the suite embeds for it)."""
    plan = SIZES[size]
    return build_deep_paragraph_task(
        articles,
        embedder,
        min_tokens=plan.deep_min_tokens,
        max_tokens=plan.deep_max_tokens,
        max_documents=plan.deep_documents,
        seed=seed,
    )


def run_retrieval_suite(
    articles: Sequence[Article],
    embedder: Embedder,
    mergers: dict[str, Merger],
    tasks: Sequence[str] = DEFAULT_TASKS,
    size: str = "small",
    seed: int = 0,
    cache: object = None,
    distractors: Iterable | None = None,
    deep_plan: DeepPlan | None = None,
) -> dict:
    """Run the chosen tasks; returns a JSON-ready report with bootstrap 95% intervals.

    ``distractors`` (articles of another split, usually train) are added to the corpus of the
    deep tasks (:mod:`vbert.evaluation.deep_retrieval`); ``deep_plan`` overrides the size's plan.
    ``cache`` (a :class:`~vbert.cache.ChunkCache`, a path, ``None`` for the default file, ``False``
    for none) holds the chunk and query vectors of every task: a chunk is embedded once.
    """
    unknown = set(tasks) - set(TASKS)
    if unknown:
        raise ValueError(f"unknown tasks {sorted(unknown)}; choose from {', '.join(TASKS)}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    plan = SIZES[size]
    started = time.perf_counter()
    report: dict = {
        "size": size,
        "seed": seed,
        "articles": len(articles),
        "embedder": {"name": embedder.name, "fingerprint": embedder.fingerprint},
        "mergers": {name: merger.fingerprint for name, merger in mergers.items()},
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
        "tasks": {},
    }
    opened = open_cache(cache)
    shared = False if opened is None else opened  # opened once: every task reads and fills it
    try:
        if "deep-paragraph" in tasks:
            task = deep_paragraph_task(articles, embedder, size, seed)
            report["tasks"]["deep-paragraph"] = evaluate_deep_paragraph(task, embedder, mergers, shared)
        if "cross-lingual" in tasks:
            pool = (
                articles
                if plan.cross_langs is None
                else [a for a in articles if a.lang in ("en", *plan.cross_langs)]
            )
            report["tasks"]["cross-lingual"] = evaluate_cross_lingual(pool, embedder, mergers, cache=shared)
        filler = [a.text for a in articles if a.lang == "en"] or [a.text for a in articles]
        for kind in ("passkey", "needle"):
            if kind in tasks:
                report["tasks"][kind] = evaluate_needles(
                    filler, embedder, mergers, kind, plan.needle_lengths, plan.needle_documents, seed, shared
                )
        deep_tasks = [t for t in tasks if t in DEEP_TASKS]
        if deep_tasks:
            deep_plan = deep_plan or deep_plan_for(size, seed)
            deep = run_deep_retrieval(
                articles, distractors or [], embedder, mergers, deep_plan, shared, deep_tasks
            )
            report["deep_corpus"] = {"plan": deep["plan"], **deep["corpus"]}
            report["tasks"].update(deep["tasks"])
    finally:
        if opened is not None and opened is not cache:
            opened.close()
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _cell(stat: dict) -> str:
    return f"{100 * stat['mean']:.1f} [{100 * stat['ci_low']:.1f}, {100 * stat['ci_high']:.1f}]"


def format_markdown(report: dict) -> str:
    """The report as Markdown tables (percentages with 95% bootstrap intervals)."""
    lines: list[str] = []
    tasks = report["tasks"]
    if "deep-paragraph" in tasks:
        deep = tasks["deep-paragraph"]
        lines += [
            f"### Deep-paragraph retrieval ({deep['documents']} documents, {deep['queries']} queries)",
            "",
            "| method | Recall@1 | nDCG@10 | nDCG@10 first | nDCG@10 middle | nDCG@10 last |",
            "|---|---|---|---|---|---|",
        ]
        for name, m in deep["methods"].items():
            bands = [
                _cell(m["by_position"][b]["ndcg@10"]) if b in m["by_position"] else "–"
                for b in ("first", "middle", "last")
            ]
            lines.append(
                f"| {name} | {_cell(m['recall@1'])} | {_cell(m['ndcg@10'])} | " + " | ".join(bands) + " |"
            )
        lines.append("")
    if "cross-lingual" in tasks:
        pairs = tasks["cross-lingual"]["pairs"]
        names = list(next(iter(pairs.values()))["methods"])
        lines += ["### Cross-lingual parallel-document retrieval, Recall@1", ""]
        lines += ["| pair (queries/corpus) | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for pair, entry in pairs.items():
            cells = [_cell(entry["methods"][n]["recall@1"]) for n in names]
            lines.append(f"| {pair} ({entry['queries']}/{entry['corpus']}) | " + " | ".join(cells) + " |")
        lines.append("")
    if any(t in tasks for t in DEEP_TASKS):
        lines.append(
            format_deep_markdown(
                {"corpus": report["deep_corpus"], "tasks": {t: tasks[t] for t in DEEP_TASKS if t in tasks}}
            )
        )
    for kind in ("passkey", "needle"):
        if kind in tasks:
            lengths = tasks[kind]["lengths"]
            names = list(next(iter(lengths.values())))
            lines += [
                f"### {kind.capitalize()} retrieval, Acc@1 ({tasks[kind]['documents_per_length']} documents per length)",
                "",
            ]
            lines += ["| tokens | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
            for length, methods in lengths.items():
                lines.append(f"| {length} | " + " | ".join(_cell(methods[n]) for n in names) + " |")
            lines.append("")
    return "\n".join(lines)
