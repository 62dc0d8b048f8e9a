"""The ``files`` corpus: a folder of ``.txt``/``.md`` files, or JSONL with a ``text`` field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from vbert.data.article import Article

TEXT_SUFFIXES = (".txt", ".md")


def read_text_file(path: Path) -> str:
    """Read a UTF-8 text file, naming the file and the fix when it is not UTF-8."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path} is not valid UTF-8 (byte {err.start}): convert it first, e.g. "
            f"`iconv -f latin1 -t utf-8 {path}`"
        ) from err


def iter_files(path: str | Path, lang: str = "und", license: str = "unknown") -> Iterator[Article]:
    """Yield one :class:`Article` per text file under ``path`` or per line of a JSONL file.

    A folder is walked in sorted order (``.txt``, ``.md`` and ``.jsonl`` files); ids are
    derived from the relative path (and line number for JSONL), so they are stable.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"corpus path {root} does not exist")
    if root.is_file():
        yield from _iter_one(root, root.parent, lang, license)
        return
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        yield from _iter_one(file, root, lang, license)


def _iter_one(file: Path, root: Path, lang: str, license: str) -> Iterator[Article]:
    rel = file.relative_to(root).as_posix()
    if file.suffix == ".jsonl":
        yield from _iter_jsonl(file, rel, lang, license)
    elif file.suffix in TEXT_SUFFIXES:
        text = read_text_file(file)
        if text.strip():
            yield Article(
                id=_stable_id("files", rel),
                lang=lang,
                title=file.stem,
                text=text,
                source="files",
                license=license,
            )


def _iter_jsonl(file: Path, rel: str, lang: str, license: str) -> Iterator[Article]:
    for n, line in enumerate(read_text_file(file).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{file}:{n} is not valid JSON ({err.msg}); each line must be one JSON object"
            ) from err
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise ValueError(f"{file}:{n} has no string field 'text'; each JSONL row needs {{\"text\": ...}}")
        if not row["text"].strip():
            continue
        yield Article(
            id=str(row.get("id") or _stable_id("files", f"{rel}:{n}")),
            lang=str(row.get("lang", lang)),
            title=str(row.get("title", "")),
            text=row["text"],
            source=str(row.get("source", "files")),
            license=str(row.get("license", license)),
            group=str(row.get("group", "")),
        )


def _stable_id(source: str, key: str) -> str:
    return f"{source}:{hashlib.sha256(key.encode('utf-8')).hexdigest()[:16]}"
