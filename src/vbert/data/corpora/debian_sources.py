"""Where the Debian documentation packages keep their pages, and how each kind of page is read.

One :class:`Family` per documentation source (``Article.source``): which packages make it, which
files of an extracted package are pages, and how a page becomes sections of plain text. The
fetch-and-convert pipeline around them is :mod:`vbert.data.corpora.debian`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from vbert.data.corpora.html_text import extract_html
from vbert.data.corpora.language import normalize_lang
from vbert.data.corpora.manpage import is_manpage_stub, manpage_text, manpage_title, render_manpage
from vbert.data.errors import PackageLayoutError, PackageNotFoundError


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
            "converter in vbert.data.corpora.debian_sources must be updated for it (or leave the package out)"
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


class _OnePackageOfLanguageFolders(Family):
    """One package (whatever the languages asked) with its HTML pages in ``base/<lang>/*.html``."""

    def packages(self, langs: set[str] | None) -> list[str]:
        return [self.english_package]

    def is_page(self, name: str) -> bool:
        return True

    def files(self, package: str, root: Path) -> list[SourceFile]:
        base = _require_dir(root, self.base, package)
        return [
            SourceFile(page, f"{folder.name}/{page.name}", lang, page.name)
            for folder, lang in _lang_dirs(base)
            for page in sorted(folder.glob("*.html"))
            if self.is_page(page.name)
        ]


class Handbook(_OnePackageOfLanguageFolders):
    source = "debian-handbook"
    license = "GPL-2.0-or-later OR CC-BY-SA-3.0"
    base = "usr/share/doc/debian-handbook/html"
    packages_by_lang = {"en": "debian-handbook"}

    def is_page(self, name: str) -> bool:
        return not name.startswith(("index", "ix0"))


class InstallationGuide(_OnePackageOfLanguageFolders):
    source = "installation-guide"
    license = "GPL-2.0-only"
    base = "usr/share/doc/installation-guide-amd64"
    packages_by_lang = {"en": "installation-guide-amd64"}

    def is_page(self, name: str) -> bool:
        return name != "index.html"


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
