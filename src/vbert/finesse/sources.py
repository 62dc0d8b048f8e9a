"""Where probe documents come from: the ``probes.source`` kinds of a benchmark config.

``files`` (a folder of texts or a JSONL file), ``corpus`` (a corpus known to
:func:`vbert.data.corpora.load_corpus`, optionally one document split) and ``huggingface``
(a ``datasets`` source pinned to a revision, or local files) all yield
:class:`~vbert.data.article.Article` objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vbert.data.article import Article
from vbert.errors import ConfigError, DataError


def iter_source(source: Any) -> Iterator[Article]:
    """Articles of a configured source (:mod:`vbert.finesse.config` ``probes.source``)."""
    if source.kind == "files":
        from vbert.data.corpora.files import iter_files

        yield from iter_files(source.path, lang=source.lang)
    elif source.kind == "huggingface":
        yield from iter_huggingface(source)
    elif source.kind == "corpus":
        from vbert.data.corpora import load_corpus
        from vbert.data.splits import filter_split

        articles = load_corpus(source.name, **source.options)
        yield from (
            articles if source.split is None else filter_split(articles, source.split, seed=source.split_seed)
        )
    else:
        raise ConfigError(f"unknown source kind {source.kind!r}")


def iter_huggingface(source: Any) -> Iterator[Article]:
    """Rows of a Hugging Face ``datasets`` source as Articles (ids stable: path, revision, split, row)."""
    import datasets

    kwargs: dict[str, Any] = {"split": source.split, "streaming": source.streaming}
    if source.name:
        kwargs["name"] = source.name
    if source.revision:
        kwargs["revision"] = source.revision
    if source.data_files:
        kwargs["data_files"] = list(source.data_files)
    elif source.data_dir:
        kwargs["data_dir"] = source.data_dir
    dataset = datasets.load_dataset(source.path, **kwargs)
    columns = list(dataset.column_names or [])
    if columns and source.text_column not in columns:
        raise DataError(
            f"dataset {source.path!r} has no column {source.text_column!r}; its columns are {columns}. "
            "Set probes.source.text_column"
        )
    key = f"{source.path}@{source.revision or 'local'}:{source.name or ''}:{source.split}"
    for index, row in enumerate(dataset):
        text = row.get(source.text_column)
        if not isinstance(text, str) or not text.strip():
            continue
        doc_id = str(row[source.id_column]) if source.id_column else f"hf:{key}:{index}"
        lang = str(row[source.lang_column]) if source.lang_column else source.lang
        yield Article(id=doc_id, lang=lang, title="", text=text, source=source.path, license="unknown")
