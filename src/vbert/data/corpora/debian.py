"""The offline default corpus: Debian documentation packages converted to plain-text articles.

Packages are fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` (never
installed) under ``$VBERT_HOME/corpora/debian``. Each package is then converted once into
per-language JSONL shards; a page of a translated package that is mostly left in English is
dropped (see :mod:`vbert.data.corpora.language`). ``fetch_debian`` writes the manifest of the
selected packages and languages last, so a corpus with a manifest is always complete.

Sources (``Article.source``), with the license recorded on every article:

===================== ============================================ ===================================
source                packages                                     license
===================== ============================================ ===================================
debian-handbook       debian-handbook (26 languages, parallel)     GPL-2.0-or-later OR CC-BY-SA-3.0
debian-reference      debian-reference-<lang> (split at h2)        GPL-2.0-or-later
installation-guide    installation-guide-amd64 (19 languages)      GPL-2.0-only
libreoffice-help      libreoffice-help-<lang>                      MPL-2.0
manpages              manpages, manpages-<lang>                    GPL-3.0-or-later (manpages-l10n
                                                                   translations) or per page
debian-faq            debian-faq, debian-faq-<lang>                LicenseRef-Debian-FAQ
gimp-help (optional)  gimp-help-<lang> (about 50 MB each)          GFDL-1.2-or-later
===================== ============================================ ===================================

Pages that are translations of each other share ``Article.group`` (``<source>:<page key>``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from vbert.data.article import Article
from vbert.data.corpora.apt import (
    FetchedPackage,
    download_debs,
    ensure_apt_lists,
    exclusive_lock,
    fetch_package,
    read_marker,
    remove_partials,
)
from vbert.data.corpora.debian_sources import Family, Section, SourceFile, plan_packages
from vbert.data.corpora.language import check_translation, normalize_lang, prose_paragraphs
from vbert.data.corpora.store import article_line, iter_corpus, write_manifest
from vbert.data.errors import DebianFetchError, ManPageError, PackageLayoutError, PackageNotFoundError
from vbert.files import atomic_write_json, normal_dir_mode, sha256_file, vbert_home

# Bump when the conversion output changes, so cached conversions are rebuilt.
CONVERTER_VERSION = 1
CONVERTED_MARKER = "_complete.json"
# Pages shorter than this are tables of contents or empty stubs, not articles.
MIN_CHARS = 100
DEFAULT_LANGS = ("en", "de", "fr", "es", "it", "ja", "ko", "zh-CN", "ru", "pt-BR", "pl", "nl")

T = TypeVar("T")
Progress = Callable[[Iterable[T], str, int], Iterable[T]]


def default_corpus_dir() -> Path:
    """``$VBERT_HOME/corpora/debian``."""
    return vbert_home() / "corpora" / "debian"


# -- conversion ---------------------------------------------------------------------------------


@dataclass
class PackageReport:
    """What fetching and converting one package did."""

    package: str
    source: str
    version: str
    deb_bytes: int
    downloaded: bool
    converted: bool
    seconds: float
    documents: dict[str, int] = field(default_factory=dict)
    dropped_untranslated: dict[str, int] = field(default_factory=dict)
    dropped_short: int = 0
    render_failures: int = 0


@dataclass
class FetchReport:
    corpus_dir: Path
    manifest: dict[str, Any]
    packages: list[PackageReport]
    seconds: float


def _identity_progress(items: Iterable[T], desc: str, total: int) -> Iterable[T]:
    return items


def _english_reference(converted: Path, marker: Mapping[str, Any]) -> dict[str, list[str]]:
    """group -> prose paragraphs of the English pages converted from one package."""
    shard = marker["shards"].get("en")
    if shard is None:
        return {}
    reference: dict[str, list[str]] = {}
    with open(converted / shard["file"], encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            reference[row["group"]] = prose_paragraphs(row["text"])
    return reference


def _converted_marker(folder: Path, expected: Mapping[str, Any]) -> dict[str, Any] | None:
    """The marker of a finished conversion matching ``expected`` whose shards pass their checksums."""
    try:
        marker = json.loads((folder / CONVERTED_MARKER).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if any(marker.get(k) != v for k, v in expected.items()):
        return None
    for shard in marker.get("shards", {}).values():
        path = folder / shard["file"]
        if not path.is_file() or sha256_file(path) != shard["sha256"]:
            return None
    return marker


def convert_package(
    family: Family,
    fetched: FetchedPackage,
    converted_dir: Path,
    reference: Mapping[str, list[str]] | None,
    reference_sha256: str | None,
    workers: int = 1,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], bool]:
    """Convert one extracted package into ``converted_dir/<package>/<lang>.jsonl`` shards.

    ``reference`` maps a group to the prose paragraphs of its English page (None when the
    package itself holds the English pages). Returns the conversion marker and whether it
    was converted now (False: a valid cached conversion was reused).
    """
    target = converted_dir / fetched.name
    expected = {
        "package": fetched.name,
        "deb_sha256": fetched.deb_sha256,
        "reference_deb_sha256": reference_sha256,
        "converter_version": CONVERTER_VERSION,
    }
    cached = _converted_marker(target, expected)
    if cached is not None:
        return cached, False
    files = family.files(fetched.name, fetched.root)
    if not files:
        raise PackageLayoutError(f"package {fetched.name} holds no pages where the converter looks for them")
    converted_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".partial-{fetched.name}-", dir=converted_dir))
    try:
        marker = _convert_files(
            family, fetched, files, work, reference, workers, progress or _identity_progress
        )
        marker.update(expected, version=fetched.version)
        atomic_write_json(work / CONVERTED_MARKER, marker)
        if target.exists():
            shutil.rmtree(target)
        os.chmod(work, normal_dir_mode())  # mkdtemp's folder is private (0700)
        os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return marker, True


def _convert_files(
    family: Family,
    fetched: FetchedPackage,
    files: list[SourceFile],
    work: Path,
    reference: Mapping[str, list[str]] | None,
    workers: int,
    progress: Progress,
) -> dict[str, Any]:
    # English pages first: in a multi-language package they are the reference for the others.
    ordered = sorted(files, key=lambda f: f.lang != "en")
    own_reference: dict[str, list[str]] = {}
    license = family.license_of(fetched.name)
    handles: dict[str, Any] = {}
    documents: Counter[str] = Counter()
    untranslated: Counter[str] = Counter()
    short = failures = 0
    first_error = ""

    def convert(file: SourceFile) -> tuple[SourceFile, list[Section] | ManPageError]:
        try:
            return file, family.convert(file)
        except ManPageError as err:
            return file, err

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, ExitStack() as stack:
        results = pool.map(convert, ordered) if workers > 1 else map(convert, ordered)
        for file, sections in progress(results, fetched.name, len(ordered)):
            if isinstance(sections, ManPageError):
                failures += 1
                first_error = first_error or str(sections)
                continue
            for section in sections:
                group = f"{family.source}:{file.key}" + (f"#{section.anchor}" if section.anchor else "")
                if len(section.text) < MIN_CHARS:
                    short += 1
                    continue
                if file.lang == "en":
                    own_reference[group] = prose_paragraphs(section.text)
                else:
                    english = (reference if reference is not None else own_reference).get(group, ())
                    if not check_translation(section.text, file.lang, english).translated:
                        untranslated[file.lang] += 1
                        continue
                article = Article(
                    id=f"{family.source}/{fetched.name}/{file.rel}"
                    + (f"#{section.anchor}" if section.anchor else ""),
                    lang=file.lang,
                    title=section.title,
                    text=section.text,
                    source=family.source,
                    license=license,
                    group=group,
                )
                if file.lang not in handles:
                    path = work / f"{file.lang}.jsonl"
                    handles[file.lang] = stack.enter_context(open(path, "w", encoding="utf-8"))
                handles[file.lang].write(article_line(article))
                documents[file.lang] += 1
    if failures and failures == len(ordered):
        raise DebianFetchError(f"every page of {fetched.name} failed to convert; first error: {first_error}")
    shards = {
        lang: {
            "file": f"{lang}.jsonl",
            "sha256": sha256_file(work / f"{lang}.jsonl"),
            "documents": documents[lang],
        }
        for lang in sorted(handles)
    }
    return {
        "shards": shards,
        "dropped_untranslated": dict(sorted(untranslated.items())),
        "dropped_short": short,
        "render_failures": failures,
    }


# -- the whole fetch ------------------------------------------------------------------------------


def _resolve_langs(langs: Iterable[str] | None, packages: Sequence[str] | None) -> set[str] | None:
    if langs is None:
        return None if packages is not None else set(DEFAULT_LANGS)
    names = [lang for item in langs for lang in str(item).split(",") if lang.strip()]
    if any(name.strip().lower() == "all" for name in names):
        return None
    return {normalize_lang(name) for name in names}


def fetch_debian(
    corpus_dir: str | Path | None = None,
    langs: Iterable[str] | None = None,
    families: Iterable[str] | None = None,
    packages: Sequence[str] | None = None,
    workers: int = 1,
    refresh: bool = False,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
    apt_get: str = "apt-get",
    dpkg_deb: str = "dpkg-deb",
) -> FetchReport:
    """Fetch, convert and index the Debian documentation corpus; resumable and cached.

    Args:
        corpus_dir: where packages, converted shards and ``manifest.json`` go
            (default ``$VBERT_HOME/corpora/debian``).
        langs: languages to keep (``"all"`` for every one); default :data:`DEFAULT_LANGS`,
            or every language of ``packages`` when those are given.
        families: source names (default: all but ``gimp-help``); ignored when ``packages`` is given.
        packages: exact package names instead of families (their family's English package,
            needed to detect untranslated pages, is added).
        workers: threads rendering man pages.
        refresh: download and convert again even when cached.
        progress: ``progress(iterable, package, total)`` wrapper, e.g. a tqdm bar per package.
        log: receives one line per package.

    A package that is already extracted (or converted) is not fetched (or converted) again.
    The manifest is written only when every package succeeded: a missing package or a changed
    layout raises :class:`~vbert.data.corpora.apt.DebianFetchError` naming each failed package
    once the others are done; no network or a full disk stops at once.
    """
    started = time.perf_counter()
    corpus_dir = Path(corpus_dir) if corpus_dir is not None else default_corpus_dir()
    wanted = _resolve_langs(langs, packages)
    plan = plan_packages(wanted, families, packages)
    if not plan:
        raise ValueError(f"no Debian documentation package covers the languages {sorted(wanted or [])}")
    packages_dir = corpus_dir / "packages"
    with exclusive_lock(corpus_dir):
        remove_partials(packages_dir)
        remove_partials(corpus_dir / "converted")
        missing = [p for _, p in plan if refresh or read_marker(packages_dir / p) is None]
        if missing:
            ensure_apt_lists(apt_get)
        packages_dir.mkdir(parents=True, exist_ok=True)
        downloads = Path(tempfile.mkdtemp(prefix=".partial-downloads-", dir=packages_dir))
        try:
            debs = download_debs(missing, downloads, apt_get)
            build = _Build(corpus_dir, wanted, workers, progress, log or (lambda line: None))
            for family, package in plan:
                build.add(family, package, lambda p=package: fetch_package(
                    p, packages_dir, deb=debs.get(p), refresh=refresh, apt_get=apt_get, dpkg_deb=dpkg_deb
                ))  # fmt: skip
        finally:
            shutil.rmtree(downloads, ignore_errors=True)
        manifest = build.finish()
    return FetchReport(corpus_dir, manifest, build.reports, time.perf_counter() - started)


class _Build:
    """Converts packages one by one and collects what the manifest needs."""

    def __init__(
        self,
        corpus_dir: Path,
        wanted: set[str] | None,
        workers: int,
        progress: Progress | None,
        say: Callable[[str], None],
    ) -> None:
        self.corpus_dir, self.wanted, self.workers, self.progress, self.say = (
            corpus_dir, wanted, workers, progress, say
        )  # fmt: skip
        self.reports: list[PackageReport] = []
        self.failures: list[str] = []
        self.packages: dict[str, Any] = {}
        self.shards: list[dict[str, Any]] = []
        # family -> (group -> English prose paragraphs, sha256 of the English .deb)
        self.references: dict[str, tuple[dict[str, list[str]], str]] = {}

    def add(self, family: Family, package: str, fetch: Callable[[], FetchedPackage]) -> None:
        started = time.perf_counter()
        converted_dir = self.corpus_dir / "converted"
        is_english = package == family.english_package
        try:
            fetched = fetch()
            reference, reference_sha = (
                (None, None) if is_english else self.references.get(family.source, ({}, None))
            )
            marker, converted = convert_package(
                family, fetched, converted_dir, reference, reference_sha, self.workers, self.progress
            )
        except (PackageNotFoundError, PackageLayoutError) as err:
            # Other packages may still work: finish them, then report every failure at once.
            self.failures.append(str(err))
            self.say(f"FAILED {package}: {err}")
            return
        if is_english:
            self.references[family.source] = (
                _english_reference(converted_dir / package, marker),
                fetched.deb_sha256,
            )
        report = PackageReport(
            package=package,
            source=family.source,
            version=fetched.version,
            deb_bytes=fetched.deb_bytes,
            downloaded=fetched.downloaded,
            converted=converted,
            seconds=time.perf_counter() - started,
            documents={lang: s["documents"] for lang, s in marker["shards"].items()},
            dropped_untranslated=dict(marker["dropped_untranslated"]),
            dropped_short=marker["dropped_short"],
            render_failures=marker["render_failures"],
        )
        self.reports.append(report)
        self.say(_describe(report))
        copyright_file = fetched.root / "usr/share/doc" / package / "copyright"
        self.packages[package] = {
            "version": fetched.version,
            "deb_sha256": fetched.deb_sha256,
            "source": family.source,
            "license": family.license_of(package),
            "copyright": (
                copyright_file.relative_to(self.corpus_dir).as_posix() if copyright_file.exists() else None
            ),
        }
        self.shards += [
            {
                "path": f"converted/{package}/{shard['file']}",
                "sha256": shard["sha256"],
                "documents": shard["documents"],
                "lang": lang,
                "source": family.source,
                "package": package,
            }
            for lang, shard in marker["shards"].items()
            if self.wanted is None or lang in self.wanted
        ]

    def finish(self) -> dict[str, Any]:
        if self.failures:
            raise DebianFetchError(
                f"{len(self.failures)} package(s) failed, so the corpus manifest was not written "
                f"(the {len(self.reports)} finished packages are cached for the next run):\n  "
                + "\n  ".join(self.failures)
            )
        return write_manifest(
            self.corpus_dir,
            "debian",
            self.shards,
            langs=sorted(self.wanted) if self.wanted is not None else "all",
            packages=self.packages,
            converter_version=CONVERTER_VERSION,
        )


def _describe(report: PackageReport) -> str:
    fetched = f"downloaded {report.deb_bytes / 1e6:.1f} MB" if report.downloaded else "already extracted"
    converted = "converted" if report.converted else "conversion cached"
    dropped = sum(report.dropped_untranslated.values())
    return (
        f"{report.package} {report.version}: {fetched}, {converted}: {sum(report.documents.values())} documents "
        f"in {len(report.documents)} language(s), {dropped} untranslated dropped, {report.seconds:.1f}s"
    )


def iter_debian(corpus_dir: str | Path | None = None, **filters: Any) -> Iterator[Article]:
    """Read the fetched Debian corpus back (``langs=``, ``sources=`` filters as in ``iter_corpus``)."""
    return iter_corpus(corpus_dir if corpus_dir is not None else default_corpus_dir(), **filters)
