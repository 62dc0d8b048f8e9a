"""The ``files`` corpus: a folder of ``.txt``/``.md`` files, or JSONL with a ``text`` field.

Two views of the same files: :func:`iter_files` yields :class:`Article` rows for corpora and
datasets, and :func:`read_documents` gives the ``(id, text)`` pairs that ``vbert embed`` and
``vbert merge`` write, with ids a user can map back to the input:

* a ``.txt``/``.md`` file: its path relative to the given root (``a/x.txt``), or its name
  when the file itself was given;
* a JSONL row: its ``id`` as given when it is a string or an integer (``0`` → ``"0"``), else
  ``path:line`` when the row has none. Any other type, and an id seen twice, is a
  :class:`~vbert.errors.DataError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vbert.data.article import Article
from vbert.errors import DataError

TEXT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class _Record:
    """One non-empty document of a file: a whole text file or one JSONL row."""

    file: Path
    rel: str  # path relative to the root given by the caller
    line: int | None  # JSONL line number, None for a text file
    text: str
    row: dict[str, Any]  # the JSONL row ({} for a text file)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else str(self.file)

    def given_id(self) -> str | None:
        """The JSONL row's own id as a string: kept when it is a string or an integer."""
        value = self.row.get("id")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise DataError(
                f"{self.where}: 'id' must be a string or an integer, not {type(value).__name__} ({value!r:.40})"
            )
        if value == "":
            raise DataError(f"{self.where}: 'id' is empty; give each row a non-empty id or leave it out")
        return str(value)


def read_text_file(path: Path) -> str:
    """Read a UTF-8 text file, naming the file and the fix when it is not UTF-8."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not valid UTF-8 (byte {err.start}): convert it first, e.g. "
            f"`iconv -f latin1 -t utf-8 {path}`"
        ) from err


def iter_files(path: str | Path, lang: str = "und", license: str = "unknown") -> Iterator[Article]:
    """Yield one :class:`Article` per text file under ``path`` or per line of a JSONL file.

    A folder is walked in sorted order (``.txt``, ``.md`` and ``.jsonl`` files); ids are
    derived from the relative path (and line number for JSONL), so they are stable; a JSONL
    row's own string or integer ``id`` is kept.
    """
    for record in _iter_records(path):
        if record.line is None:
            yield Article(
                id=_stable_id("files", record.rel),
                lang=lang,
                title=record.file.stem,
                text=record.text,
                source="files",
                license=license,
            )
            continue
        row = record.row
        yield Article(
            id=record.given_id() or _stable_id("files", f"{record.rel}:{record.line}"),
            lang=str(row.get("lang", lang)),
            title=str(row.get("title", "")),
            text=record.text,
            source=str(row.get("source", "files")),
            license=str(row.get("license", license)),
            group=str(row.get("group", "")),
        )


def read_documents(paths: Iterable[str | Path]) -> list[tuple[str, str]]:
    """``(id, text)`` of every non-empty document under ``paths`` (see :func:`iter_documents`), as a list."""
    return list(iter_documents(paths))


def iter_documents(paths: Iterable[str | Path]) -> Iterator[tuple[str, str]]:
    """``(id, text)`` of every non-empty document under ``paths``, read lazily, one at a time.

    Raises :class:`~vbert.errors.DataError` for malformed input, an id of another type or an id
    that two documents share, and ``FileNotFoundError`` for a path that does not exist. Only the
    ids are kept while reading (to refuse a repeated one), so memory stays small.
    """
    paths = list(paths)
    seen: set[str] = set()
    for doc_id, record in _iter_ids(paths):
        if doc_id in seen:
            first = next(r.where for i, r in _iter_ids(paths) if i == doc_id)
            raise DataError(
                f"document id {doc_id!r} is given twice ({first} and {record.where}); "
                "ids must be unique so each output row can be traced back"
            )
        seen.add(doc_id)
        yield doc_id, record.text


def _iter_ids(paths: list[str | Path]) -> Iterator[tuple[str, _Record]]:
    for path in paths:
        for record in _iter_records(path):
            yield (
                record.rel if record.line is None else record.given_id() or f"{record.rel}:{record.line}",
                record,
            )


def _iter_records(path: str | Path) -> Iterator[_Record]:
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"corpus path {root} does not exist")
    if root.is_file():
        yield from _iter_one(root, root.parent)
        return
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        yield from _iter_one(file, root)


def _iter_one(file: Path, root: Path) -> Iterator[_Record]:
    rel = file.relative_to(root).as_posix()
    if file.suffix == ".jsonl":
        yield from _iter_jsonl(file, rel)
    elif file.suffix in TEXT_SUFFIXES:
        text = read_text_file(file)
        if text.strip():
            yield _Record(file, rel, None, text, {})


def _jsonl_lines(file: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines of a UTF-8 file, read one at a time (memory stays flat in the file size)."""
    done = 0
    with open(file, encoding="utf-8") as handle:
        try:
            for line in handle:
                done += 1
                yield done, line
        except UnicodeDecodeError as err:
            raise DataError(
                f"{file} is not valid UTF-8 (after line {done}): convert it first, e.g. "
                f"`iconv -f latin1 -t utf-8 {file}`"
            ) from err


def _iter_jsonl(file: Path, rel: str) -> Iterator[_Record]:
    for n, line in _jsonl_lines(file):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                f"{file}:{n} is not valid JSON ({err.msg}); each line must be one JSON object"
            ) from err
        except (ValueError, RecursionError) as err:  # an integer too long to convert, nesting too deep
            raise DataError(f"{file}:{n} cannot be read as JSON ({type(err).__name__}: {err})") from err
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise DataError(f"{file}:{n} has no string field 'text'; each JSONL row needs {{\"text\": ...}}")
        _check_encodable(row, f"{file}:{n}")
        if row["text"].strip():
            yield _Record(file, rel, n, row["text"], row)


def _check_encodable(row: dict[str, Any], where: str) -> None:
    """JSON allows lone surrogates (``"\\ud800"``) that no UTF-8 output can hold; refuse them here."""
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        raise DataError(
            f"{where} holds a lone surrogate ({err.object[err.start : err.end]!r}), which is not valid "
            "Unicode text; fix the escape sequence in the input"
        ) from err
    except (ValueError, RecursionError) as err:
        raise DataError(f"{where} cannot be read as JSON ({type(err).__name__})") from err


def _stable_id(source: str, key: str) -> str:
    return f"{source}:{hashlib.sha256(key.encode('utf-8')).hexdigest()[:16]}"
