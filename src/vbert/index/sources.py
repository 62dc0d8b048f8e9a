"""Documents to index: text files, folders and JSONL files, read as ``vbert merge`` reads them.

Ids: a text file's path relative to the indexed root (the folder given, or the file's own
folder when a file is given); a JSONL row's ``id`` field (else ``files:<hash of file:line>``,
as :func:`vbert.data.corpora.files.iter_files` gives it). Each document also records its
*source*, the resolved path that was given, so that re-indexing one folder removes only the
documents of that folder that are gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vbert.data.corpora.files import TEXT_SUFFIXES, iter_files, read_text_file
from vbert.errors import DataError


@dataclass(frozen=True)
class Document:
    """A document to index: a stable id, its text, and optionally a title and its source."""

    id: str
    text: str
    title: str = ""
    source: str = ""


def _as_document(item: Document | tuple | dict) -> Document:
    if isinstance(item, Document):
        return item
    if isinstance(item, tuple) and len(item) == 2:
        return Document(id=str(item[0]), text=item[1])
    if isinstance(item, dict) and "id" in item and "text" in item:
        return Document(
            id=str(item["id"]),
            text=item["text"],
            title=str(item.get("title", "")),
            source=item.get("source", ""),
        )
    raise DataError(
        f"cannot index {type(item).__name__}: pass Document, (id, text) or {{'id': ..., 'text': ...}}"
    )


def as_documents(items: Iterable[Document | tuple | dict]) -> Iterator[Document]:
    """Normalise documents and refuse an empty text or an id seen twice."""
    seen: set[str] = set()
    for item in items:
        doc = _as_document(item)
        if not isinstance(doc.text, str):
            raise DataError(f"document {doc.id!r}: text must be str, got {type(doc.text).__name__}")
        if not doc.id:
            raise DataError("a document has an empty id")
        if doc.id in seen:
            raise DataError(f"document id {doc.id!r} appears twice in the inputs; ids must be unique")
        seen.add(doc.id)
        yield doc


def read_path(path: str | Path) -> Iterator[Document]:
    """The documents under one input path (file, folder or JSONL), in sorted order."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root} does not exist")
    source = str(root.resolve())
    base = root if root.is_dir() else root.parent
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    for file in files:
        if file.suffix == ".jsonl":
            try:
                for article in iter_files(file):
                    yield Document(id=article.id, text=article.text, title=article.title, source=source)
            except ValueError as err:
                raise DataError(str(err)) from err
        elif file.suffix in TEXT_SUFFIXES:
            try:
                text = read_text_file(file)
            except ValueError as err:
                raise DataError(str(err)) from err
            if text.strip():
                yield Document(
                    id=file.relative_to(base).as_posix(), text=text, title=file.stem, source=source
                )


def read_paths(paths: Iterable[str | Path]) -> Iterator[Document]:
    for path in paths:
        yield from read_path(path)
