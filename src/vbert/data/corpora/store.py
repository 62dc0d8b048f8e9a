"""A converted corpus on disk: JSONL shards of :class:`Article` rows plus a checksummed manifest.

Layout::

    corpus_dir/
      manifest.json                        # shards with sha256, document counts, corpus_hash
      converted/<package>/<lang>.jsonl     # one Article per line, keys sorted, UTF-8

``corpus_hash`` is the sha256 of the sorted (path, sha256) pairs of the shards, so it changes
exactly when the corpus content changes. Every shard is checked against its sha256 before it
is read; a corrupted or truncated shard raises :class:`CorpusIntegrityError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from vbert.data.article import Article
from vbert.data.corpora.language import normalize_lang
from vbert.data.errors import CorpusIntegrityError
from vbert.files import atomic_write_json, sha256_bytes, sha256_file

MANIFEST_NAME = "manifest.json"
FORMAT = "vbert-corpus/1"


def article_line(article: Article) -> str:
    """One JSONL line, with sorted keys so the same article always gives the same bytes."""
    return json.dumps(article.to_dict(), ensure_ascii=False, sort_keys=True) + "\n"


def corpus_hash(shards: Iterable[Mapping[str, Any]]) -> str:
    """sha256 over the sorted ``(path, sha256)`` pairs of the shards."""
    pairs = sorted((str(s["path"]), str(s["sha256"])) for s in shards)
    return sha256_bytes(json.dumps(pairs, separators=(",", ":")).encode("utf-8"))


def write_manifest(corpus_dir: Path, name: str, shards: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Write ``manifest.json`` atomically (deterministic: no timestamps) and return it."""
    shards = sorted(shards, key=lambda s: s["path"])
    manifest = {
        "format": FORMAT,
        "name": name,
        "documents": sum(int(s["documents"]) for s in shards),
        "corpus_hash": corpus_hash(shards),
        "shards": shards,
        **extra,
    }
    atomic_write_json(corpus_dir / MANIFEST_NAME, manifest)
    return manifest


def _manifest_path(path: str | Path) -> Path:
    path = Path(path)
    return path if path.name == MANIFEST_NAME else path / MANIFEST_NAME


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Load the manifest of a corpus folder (or the manifest file itself)."""
    manifest_path = _manifest_path(path)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"no corpus at {manifest_path.parent} ({MANIFEST_NAME} is missing); for the Debian corpus run "
            "`vbert corpus fetch debian` first"
        ) from err
    except (ValueError, RecursionError) as err:  # invalid JSON or UTF-8, nesting too deep
        raise CorpusIntegrityError(
            f"{manifest_path} is not valid JSON ({type(err).__name__}); rebuild the corpus "
            "(e.g. `vbert corpus fetch debian`)"
        ) from err
    if not _is_manifest(manifest):
        raise CorpusIntegrityError(f"{manifest_path} is not a {FORMAT} manifest; rebuild the corpus")
    return manifest


def _is_manifest(manifest: Any) -> bool:
    return (
        isinstance(manifest, dict)
        and manifest.get("format") == FORMAT
        and isinstance(manifest.get("shards"), list)
        and all(
            isinstance(shard, dict)
            and isinstance(shard.get("path"), str)
            and isinstance(shard.get("sha256"), str)
            for shard in manifest["shards"]
        )
    )


def verify_shard(corpus_dir: Path, shard: Mapping[str, Any]) -> Path:
    """Return the shard's path after checking that it lies in the corpus, exists and matches its sha256."""
    path = corpus_dir / shard["path"]
    if not path.resolve().is_relative_to(corpus_dir.resolve()):
        raise CorpusIntegrityError(
            f"corpus shard {shard['path']!r} points outside the corpus folder {corpus_dir}"
        )
    if not path.is_file():
        raise CorpusIntegrityError(
            f"corpus shard {path} is missing; rebuild it with `vbert corpus fetch debian`"
        )
    actual = sha256_file(path)
    if actual != shard["sha256"]:
        raise CorpusIntegrityError(
            f"corpus shard {path} is corrupted (sha256 {actual[:12]}… instead of {shard['sha256'][:12]}…); "
            "run `vbert corpus fetch debian` again to rebuild it"
        )
    return path


def iter_corpus(
    path: str | Path,
    langs: Iterable[str] | None = None,
    sources: Iterable[str] | None = None,
    verify: bool = True,
) -> Iterator[Article]:
    """Yield the articles of a stored corpus, optionally only some languages or sources.

    Each shard is checked against the manifest's sha256 before any of its rows is yielded.
    """
    corpus_dir = _manifest_path(path).parent
    manifest = read_manifest(corpus_dir)
    wanted_langs = {normalize_lang(lang) for lang in langs} if langs is not None else None
    wanted_sources = set(sources) if sources is not None else None
    for shard in manifest["shards"]:
        if wanted_langs is not None and shard.get("lang") not in wanted_langs:
            continue
        if wanted_sources is not None and shard.get("source") not in wanted_sources:
            continue
        shard_path = verify_shard(corpus_dir, shard) if verify else corpus_dir / shard["path"]
        with open(shard_path, "rb") as f:
            for n, line in enumerate(f, start=1):
                yield _article(line, f"{shard_path}:{n}")


def _article(line: bytes, where: str) -> Article:
    try:
        row = json.loads(line)
    except (ValueError, RecursionError) as err:  # invalid JSON or UTF-8, nesting too deep
        raise CorpusIntegrityError(f"{where} is not an article row ({type(err).__name__}: {err})") from err
    fields = Article.__dataclass_fields__
    if not isinstance(row, dict) or not all(isinstance(row.get(k, ""), str) for k in fields):
        raise CorpusIntegrityError(f"{where} is not an article row (a JSON object of strings)")
    try:
        return Article.from_dict(row)
    except (TypeError, KeyError) as err:
        raise CorpusIntegrityError(f"{where} is not an article row ({err})") from err
