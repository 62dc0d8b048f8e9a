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
import re
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from vbert.data.article import Article
from vbert.data.corpora.apt import (
    DebianFetchError,
    FetchedPackage,
    PackageLayoutError,
    PackageNotFoundError,
    download_debs,
    ensure_apt_lists,
    exclusive_lock,
    fetch_package,
    read_marker,
    remove_partials,
)
from vbert.data.corpora.html_text import extract_html
from vbert.data.corpora.language import check_translation, normalize_lang, prose_paragraphs
from vbert.data.corpora.manpage import (
    ManPageError,
    is_manpage_stub,
    manpage_text,
    manpage_title,
    render_manpage,
)
from vbert.data.corpora.store import article_line, iter_corpus, sha256_file, write_manifest
from vbert.files import atomic_write_json, vbert_home

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


@dataclass(frozen=True)
class SourceFile:
    """One page file of a package: ``rel`` goes into the article id, ``key`` into its group."""

    path: Path
    rel: str
    lang: str
    key: str


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    text: str


_CHARSET = re.compile(rb"""charset=["']?([A-Za-z0-9_-]+)""")


def read_html(path: Path) -> str:
    """Decode an HTML file with the charset it declares (UTF-8 when it declares none)."""
    raw = path.read_bytes()
    match = _CHARSET.search(raw[:2048])
    encoding = match.group(1).decode("ascii") if match else "utf-8"
    try:
        return raw.decode(encoding, errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


def _html_page(file: SourceFile) -> list[Section]:
    document = extract_html(read_html(file.path))
    return [Section("", document.title, document.text)]


def _require_dir(root: Path, base: str, package: str) -> Path:
    folder = root / base
    if not folder.is_dir():
        raise PackageLayoutError(
            f"package {package} has no folder {base}: its layout changed in this Debian release, so the "
            "converter in vbert.data.corpora.debian must be updated for it (or leave the package out)"
        )
    return folder


class Family(ABC):
    """A documentation source: which packages make it, where their pages are, how to read them."""

    source: str = ""
    license: str = ""
    default: bool = True
    # language -> package for sources with one package per language
    packages_by_lang: Mapping[str, str] = {}

    def packages(self, langs: set[str] | None) -> list[str]:
        """Packages needed for ``langs`` (None: every language); the English one comes first."""
        english = self.packages_by_lang["en"]
        chosen = [p for lang, p in self.packages_by_lang.items() if langs is None or lang in langs]
        if not chosen:
            return []
        return [english] + sorted(set(chosen) - {english})

    @property
    def english_package(self) -> str:
        return self.packages_by_lang["en"]

    def owns(self, package: str) -> bool:
        return package in self.packages_by_lang.values()

    def license_of(self, package: str) -> str:
        return self.license

    @abstractmethod
    def files(self, package: str, root: Path) -> list[SourceFile]:
        """The page files of an extracted package, in a stable order."""

    def convert(self, file: SourceFile) -> list[Section]:
        return _html_page(file)


def _per_lang(prefix: str, english: str, suffixes: Iterable[str]) -> dict[str, str]:
    packages = {"en": english}
    packages.update({normalize_lang(s): f"{prefix}{s}" for s in suffixes})
    return packages


def _lang_dirs(base: Path) -> Iterator[tuple[Path, str]]:
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        try:
            yield folder, normalize_lang(folder.name)
        except ValueError:
            continue


class Handbook(Family):
    source = "debian-handbook"
    license = "GPL-2.0-or-later OR CC-BY-SA-3.0"
    base = "usr/share/doc/debian-handbook/html"
    packages_by_lang = {"en": "debian-handbook"}

    def packages(self, langs: set[str] | None) -> list[str]:
        return ["debian-handbook"]

    def files(self, package: str, root: Path) -> list[SourceFile]:
        base = _require_dir(root, self.base, package)
        return [
            SourceFile(page, f"{folder.name}/{page.name}", lang, page.name)
            for folder, lang in _lang_dirs(base)
            for page in sorted(folder.glob("*.html"))
            if not page.name.startswith(("index", "ix0"))
        ]


class InstallationGuide(Family):
    source = "installation-guide"
    license = "GPL-2.0-only"
    base = "usr/share/doc/installation-guide-amd64"
    packages_by_lang = {"en": "installation-guide-amd64"}

    def packages(self, langs: set[str] | None) -> list[str]:
        return ["installation-guide-amd64"]

    def files(self, package: str, root: Path) -> list[SourceFile]:
        base = _require_dir(root, self.base, package)
        return [
            SourceFile(page, f"{folder.name}/{page.name}", lang, page.name)
            for folder, lang in _lang_dirs(base)
            for page in sorted(folder.glob("*.html"))
            if page.name != "index.html"
        ]


class Reference(Family):
    """Debian Reference: one HTML file per chapter, cut into articles at its h2 sections."""

    source = "debian-reference"
    license = "GPL-2.0-or-later"
    base = "usr/share/debian-reference"
    packages_by_lang = _per_lang(
        "debian-reference-",
        "debian-reference-en",
        ["de", "fr", "es", "it", "ja", "id", "pt", "pt-br", "zh-cn", "zh-tw"],
    )

    def files(self, package: str, root: Path) -> list[SourceFile]:
        base = _require_dir(root, self.base, package)
        suffix = package.removeprefix("debian-reference-")
        lang = normalize_lang(suffix)
        ending = f".{suffix}.html"
        return [
            SourceFile(page, page.name, lang, page.name.removesuffix(ending))
            for page in sorted(base.glob(f"*{ending}"))
            if not page.name.startswith("index.")
        ]

    def convert(self, file: SourceFile) -> list[Section]:
        document = extract_html(read_html(file.path), split_tag="h2")
        return [Section(s.anchor, s.title or document.title, s.text) for s in document.sections]


class LibreOfficeHelp(Family):
    source = "libreoffice-help"
    license = "MPL-2.0"
    base = "usr/share/libreoffice/help"
    packages_by_lang = _per_lang(
        "libreoffice-help-",
        "libreoffice-help-en-us",
        [
            "ca",
            "cs",
            "da",
            "de",
            "el",
            "es",
            "fi",
            "fr",
            "hu",
            "id",
            "it",
            "ja",
            "ko",
            "nl",
            "pl",
            "pt",
            "pt-br",
        ]
        + ["ru", "sk", "sl", "sv", "tr", "vi", "zh-cn", "zh-tw"],
    )

    def files(self, package: str, root: Path) -> list[SourceFile]:
        base = _require_dir(root, self.base, package)
        found = []
        for folder, lang in _lang_dirs(base):
            text = folder / "text"
            if text.is_dir():
                found += [
                    SourceFile(page, f"{folder.name}/text/{page.relative_to(text).as_posix()}", lang,
                               page.relative_to(text).as_posix())
                    for page in sorted(text.rglob("*.html"))
                ]  # fmt: skip
        if not found:
            raise PackageLayoutError(f"package {package} has no help pages under {self.base}/<lang>/text")
        return found


class ManPages(Family):
    source = "manpages"
    # manpages-l10n translations are GPL-3+; the English pages and the ja/zh projects keep
    # each original page's own license (all DFSG-free), recorded as per-page.
    license = "GPL-3.0-or-later"
    per_page_license = "LicenseRef-per-page"
    base = "usr/share/man"
    packages_by_lang = {
        **_per_lang(
            "manpages-",
            "manpages",
            [
                "cs",
                "da",
                "de",
                "el",
                "es",
                "fi",
                "fr",
                "hu",
                "id",
                "it",
                "ja",
                "mk",
                "nb",
                "nl",
                "pl",
                "pt-br",
            ]
            + ["ro", "ru", "sr", "sv", "tr", "uk", "vi"],
        ),
        "zh-CN": "manpages-zh",
        "zh-TW": "manpages-zh",
    }

    def license_of(self, package: str) -> str:
        return (
            self.per_page_license if package in ("manpages", "manpages-ja", "manpages-zh") else self.license
        )

    def files(self, package: str, root: Path) -> list[SourceFile]:
        base = _require_dir(root, self.base, package)
        if package == self.english_package:
            trees = [(base, "", "en")]
        else:
            trees = [(folder, f"{folder.name}/", lang) for folder, lang in _lang_dirs(base)]
        found = []
        for tree, prefix, lang in trees:
            for section in sorted(tree.glob("man*")):
                for page in sorted(section.iterdir()):
                    if is_manpage_stub(page):
                        continue
                    key = f"{section.name}/{page.name.removesuffix('.gz')}"
                    found.append(SourceFile(page, f"{prefix}{section.name}/{page.name}", lang, key))
        return found

    def convert(self, file: SourceFile) -> list[Section]:
        return [Section("", manpage_title(file.path), manpage_text(render_manpage(file.path)))]


class DebianFaq(Family):
    source = "debian-faq"
    license = "LicenseRef-Debian-FAQ"
    base = "usr/share/doc/debian/FAQ"
    packages_by_lang = _per_lang(
        "debian-faq-", "debian-faq", ["de", "fr", "it", "ja", "ko", "nl", "pt", "ru", "zh-cn"]
    )

    def files(self, package: str, root: Path) -> list[SourceFile]:
        base = _require_dir(root, self.base, package)
        if package == self.english_package:
            pages = [(page, "en") for page in sorted(base.glob("*.en.html"))]
        else:
            pages = [
                (page, lang) for folder, lang in _lang_dirs(base) for page in sorted(folder.glob("*.html"))
            ]
        return [
            SourceFile(page, page.relative_to(base).as_posix(), lang, page.name.split(".")[0])
            for page, lang in pages
            if not page.name.startswith("index.")
        ]


class GimpHelp(Family):
    source = "gimp-help"
    license = "GFDL-1.2-or-later"
    default = False  # about 50 MB per language
    base = "usr/share/gimp/2.0/help"
    packages_by_lang = _per_lang(
        "gimp-help-",
        "gimp-help-en",
        ["ca", "cs", "da", "de", "el", "es", "fa", "fi", "fr", "hr", "hu", "it", "ja", "ko", "lt", "nl", "nn"]
        + ["pt", "pt-br", "ro", "ru", "sl", "sv", "uk", "zh-cn"],
    )

    def files(self, package: str, root: Path) -> list[SourceFile]:
        base = _require_dir(root, self.base, package)
        return [
            SourceFile(page, f"{folder.name}/{page.name}", lang, page.name)
            for folder, lang in _lang_dirs(base)
            for page in sorted(folder.glob("*.html"))
            if not page.name.startswith("index")
        ]


FAMILIES: dict[str, Family] = {
    f.source: f
    for f in (
        Handbook(),
        Reference(),
        InstallationGuide(),
        LibreOfficeHelp(),
        ManPages(),
        DebianFaq(),
        GimpHelp(),
    )
}
DEFAULT_FAMILIES = tuple(name for name, family in FAMILIES.items() if family.default)


def family_of(package: str) -> Family:
    """The source family a package belongs to."""
    for family in FAMILIES.values():
        if family.owns(package):
            return family
    raise PackageNotFoundError(
        f"{package!r} is not a documentation package vbert knows how to convert; known sources: "
        + ", ".join(
            f"{name} ({', '.join(sorted(f.packages_by_lang.values())[:3])}, ...)"
            for name, f in FAMILIES.items()
        )
    )


def plan_packages(
    langs: set[str] | None, families: Iterable[str] | None = None, packages: Iterable[str] | None = None
) -> list[tuple[Family, str]]:
    """The (family, package) pairs to fetch, each family's English package first."""
    chosen: dict[str, list[str]] = {}
    if packages is not None:
        for package in packages:
            family = family_of(package)
            chosen.setdefault(family.source, [family.english_package])
            if package not in chosen[family.source]:
                chosen[family.source].append(package)
    else:
        for name in families or DEFAULT_FAMILIES:
            if name not in FAMILIES:
                raise ValueError(f"unknown Debian source {name!r}; choose from {', '.join(FAMILIES)}")
            selected = FAMILIES[name].packages(langs)
            if selected:
                chosen[name] = selected
    return [(FAMILIES[name], package) for name, pkgs in chosen.items() for package in pkgs]


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
