"""Corpora of multilingual articles: one entry point, :func:`load_corpus`, and their statistics.

* ``debian`` (offline default): Debian documentation packages, fetched once with
  ``vbert corpus fetch debian`` (:func:`vbert.data.corpora.debian.fetch_debian`).
* ``wikipedia``: ``wikimedia/wikipedia`` streamed from the Hugging Face hub.
* ``files``: a folder of ``.txt``/``.md`` files, or JSONL with a ``text`` field.
* any folder holding a corpus ``manifest.json`` (a converted corpus).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from vbert.data.article import Article
from vbert.data.corpora.files import iter_files
from vbert.data.corpora.language import normalize_lang
from vbert.data.corpora.store import MANIFEST_NAME, iter_corpus, read_manifest
from vbert.files import atomic_write_json, sha256_file

CORPUS_NAMES = ("debian", "wikipedia", "files")


class TokenCounter(Protocol):
    def count_tokens(self, text: str) -> int: ...


class TokenizerCounter:
    """Counts content tokens with a Hugging Face ``tokenizer.json`` (no special tokens).

    ``fingerprint`` is the sha256 of the file, so cached statistics follow the tokenizer.
    """

    def __init__(self, tokenizer_file: str | Path) -> None:
        from tokenizers import Tokenizer

        path = Path(tokenizer_file)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"no tokenizer file at {path}; pass a tokenizer.json (or a folder holding one)"
            )
        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.no_truncation()
        self.fingerprint = f"tokenizer-{sha256_file(path)[:16]}"

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)


def load_corpus(name_or_path: str | Path, **options: Any) -> Iterator[Article]:
    """Iterate the articles of a corpus by name or path.

    Options by corpus:
        debian: ``corpus_dir`` (default ``$VBERT_HOME/corpora/debian``), ``langs``, ``sources``.
        wikipedia: ``langs``, ``date``, ``data_files``, ``limit``, ``streaming``.
        files: ``path`` (required), ``lang``, ``license``.
        a path: a corpus folder with ``manifest.json`` (``langs``, ``sources``), else as ``files``.
    """
    if name_or_path == "debian":
        from vbert.data.corpora.debian import iter_debian

        return iter_debian(**options)
    if name_or_path == "wikipedia":
        from vbert.data.corpora.wikipedia import iter_wikipedia

        return iter_wikipedia(**options)
    if name_or_path == "files":
        if "path" not in options:
            raise ValueError("the files corpus needs path=: a folder of .txt/.md files or a JSONL file")
        return iter_files(**options)
    path = Path(name_or_path)
    if (path / MANIFEST_NAME).is_file() or path.name == MANIFEST_NAME:
        return iter_corpus(path, **options)
    if path.exists():
        return iter_files(path, **options)
    raise ValueError(
        f"unknown corpus {str(name_or_path)!r}: use one of {', '.join(CORPUS_NAMES)}, "
        "or the path of a folder/JSONL file"
    )


def corpus_stats(articles: Iterable[Article], counter: TokenCounter, min_tokens: int = 600) -> dict[str, Any]:
    """Documents and tokens per language and source.

    Returns ``{lang: {"documents", "tokens", "docs_ge_<min_tokens>", "sources": {source: {...}}}}``
    with languages and sources sorted; ``docs_ge_600`` counts documents of at least
    ``min_tokens`` tokens as measured by ``counter.count_tokens``.
    """
    key = f"docs_ge_{min_tokens}"
    table: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: {
        "documents": 0, "tokens": 0, key: 0
    }))  # fmt: skip
    for article in articles:
        tokens = counter.count_tokens(article.text)
        row = table[article.lang][article.source]
        row["documents"] += 1
        row["tokens"] += tokens
        row[key] += int(tokens >= min_tokens)
    stats: dict[str, Any] = {}
    for lang in sorted(table):
        sources = {source: dict(table[lang][source]) for source in sorted(table[lang])}
        stats[lang] = {
            "documents": sum(s["documents"] for s in sources.values()),
            "tokens": sum(s["tokens"] for s in sources.values()),
            key: sum(s[key] for s in sources.values()),
            "sources": sources,
        }
    return stats


def stored_corpus_stats(
    path: str | Path,
    counter: TokenCounter,
    min_tokens: int = 600,
    langs: Iterable[str] | None = None,
    progress: Callable[[Iterator[Article]], Iterable[Article]] | None = None,
) -> dict[str, Any]:
    """:func:`corpus_stats` of a stored corpus, cached beside it.

    Counting tokens of a whole corpus takes minutes, so the result is saved under
    ``<corpus>/stats/`` keyed by the corpus hash, the counter's ``fingerprint`` and
    ``min_tokens``; a counter without a fingerprint is never cached. ``langs`` filters the result.
    """
    corpus_dir = Path(path)
    corpus_dir = corpus_dir.parent if corpus_dir.name == MANIFEST_NAME else corpus_dir
    manifest = read_manifest(corpus_dir)
    fingerprint = getattr(counter, "fingerprint", None)
    cache = None
    if fingerprint:
        key = hashlib.sha256(f"{manifest['corpus_hash']}|{fingerprint}|{min_tokens}".encode()).hexdigest()[
            :24
        ]
        cache = corpus_dir / "stats" / f"{key}.json"
    if cache is not None and cache.is_file():
        stats = json.loads(cache.read_text(encoding="utf-8"))
    else:
        articles = iter_corpus(corpus_dir)
        stats = corpus_stats(progress(articles) if progress else articles, counter, min_tokens)
        if cache is not None:
            atomic_write_json(cache, stats)
    if langs is not None:
        wanted = {normalize_lang(lang) for lang in langs}
        stats = {lang: row for lang, row in stats.items() if lang in wanted}
    return stats


__all__ = [
    "CORPUS_NAMES",
    "TokenCounter",
    "TokenizerCounter",
    "corpus_stats",
    "iter_corpus",
    "load_corpus",
    "stored_corpus_stats",
]
