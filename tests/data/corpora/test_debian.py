"""The Debian corpus: conversion of fake extracted packages, and whole fetches with a fake apt-get.

No network: ``apt-get`` is replaced by a small script serving ``.deb`` files built here with
``dpkg-deb --build`` from fixture pages.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from vbert.data.corpora import debian
from vbert.data.corpora.apt import MARKER, FetchedPackage, ensure_apt_lists, fetch_package
from vbert.data.corpora.debian import convert_package, fetch_debian
from vbert.data.corpora.debian_sources import DebianFaq, Handbook, ManPages, Reference, plan_packages
from vbert.data.corpora.store import CorpusIntegrityError, iter_corpus, read_manifest
from vbert.data.errors import (
    DebianFetchError,
    DiskFullError,
    NetworkError,
    PackageLayoutError,
    PackageNotFoundError,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "corpora"
needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
needs_man = pytest.mark.skipif(shutil.which("man") is None, reason="needs man-db and groff")

KOREAN_PAGE = """<html><head><meta charset="utf-8"><title>패키지 도구</title></head><body>
<div class="navheader">이전 다음</div>
<h2>8.1. 데비안 패키지 관리 도구</h2>
<p>그래픽 또는 텍스트 기반 인터페이스부터 패키지 설치에 사용되는 로우 레벨 도구에 이르기까지 데비안 패키지를 관리하는 여러 도구가 있습니다.</p>
<p>높은 수준 패키지 관리 도구는 그 자체가 시스템에서 패키지를 관리하려면 dpkg에 의존한다는 것을 이해하는 것이 중요합니다.</p>
</body></html>"""


def place(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fake_fetched(name: str, root: Path, sha: str = "0" * 64) -> FetchedPackage:
    return FetchedPackage(name=name, version="1.0", deb_sha256=sha, deb_bytes=1, root=root, downloaded=False)


def read_shard(folder: Path, lang: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{lang}.jsonl").read_text(encoding="utf-8").splitlines()]


# -- conversion of extracted trees ----------------------------------------------------------------


@pytest.fixture
def handbook_tree(tmp_path: Path) -> Path:
    root = tmp_path / "handbook"
    base = "usr/share/doc/debian-handbook/html"
    place(root, f"{base}/en-US/sect.apt.html", fixture("handbook_en.html"))
    place(root, f"{base}/en-US/index.html", "<title>index</title><p>toc only</p>")
    place(root, f"{base}/de-DE/sect.apt.html", fixture("handbook_de.html"))
    place(root, f"{base}/ja-JP/sect.apt.html", fixture("handbook_ja.html"))
    place(root, f"{base}/ko-KR/sect.apt.html", fixture("handbook_en.html"))  # Debian's English fallback
    place(root, f"{base}/Common_Content/css/default.css", "body {}")
    return root


def test_handbook_conversion_ids_groups_languages_and_untranslated(
    handbook_tree: Path, tmp_path: Path
) -> None:
    converted = tmp_path / "converted"
    marker, fresh = convert_package(
        Handbook(), fake_fetched("debian-handbook", handbook_tree), converted, None, None
    )
    assert fresh
    assert sorted(marker["shards"]) == ["de", "en", "ja"]
    assert marker["dropped_untranslated"] == {"ko": 1}
    rows = {lang: read_shard(converted / "debian-handbook", lang) for lang in ("en", "de", "ja")}
    assert all(len(r) == 1 for r in rows.values())  # index.html skipped
    de = rows["de"][0]
    assert de["id"] == "debian-handbook/debian-handbook/de-DE/sect.apt.html"
    assert de["lang"] == "de" and de["title"] == "6.2. Der Befehl apt"
    assert de["source"] == "debian-handbook" and de["license"] == "GPL-2.0-or-later OR CC-BY-SA-3.0"
    assert {r[0]["group"] for r in rows.values()} == {"debian-handbook:sect.apt.html"}
    assert rows["ja"][0]["lang"] == "ja"
    assert "Download the ebook" not in de["text"]


def test_conversion_is_cached_and_rebuilt_when_a_shard_is_corrupted(
    handbook_tree: Path, tmp_path: Path
) -> None:
    converted = tmp_path / "converted"
    fetched = fake_fetched("debian-handbook", handbook_tree)
    first, _ = convert_package(Handbook(), fetched, converted, None, None)
    again, fresh = convert_package(Handbook(), fetched, converted, None, None)
    assert not fresh and again == first
    shard = converted / "debian-handbook" / "de.jsonl"
    shard.write_text(shard.read_text(encoding="utf-8").replace("APT", "XYZ"), encoding="utf-8")
    rebuilt, fresh = convert_package(Handbook(), fetched, converted, None, None)
    assert fresh and rebuilt["shards"] == first["shards"]
    # a new .deb (other sha256) is converted again too
    _, fresh = convert_package(
        Handbook(), fake_fetched("debian-handbook", handbook_tree, "1" * 64), converted, None, None
    )
    assert fresh
    assert not list(converted.glob(".partial-*"))


def test_changed_layout_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    place(root, "usr/share/doc/debian-handbook/README", "moved elsewhere")
    with pytest.raises(PackageLayoutError, match="usr/share/doc/debian-handbook/html.*layout changed"):
        convert_package(Handbook(), fake_fetched("debian-handbook", root), tmp_path / "out", None, None)
    assert not (tmp_path / "out" / "debian-handbook").exists()


def test_reference_sections_and_per_language_untranslated_detection(tmp_path: Path) -> None:
    converted = tmp_path / "converted"
    en_root, de_root = tmp_path / "en", tmp_path / "de"
    place(en_root, "usr/share/debian-reference/ch02.en.html", fixture("reference_ch02.en.html"))
    place(en_root, "usr/share/debian-reference/index.en.html", "<p>toc</p>")
    # the German package ships the English chapter untranslated, plus one translated section
    translated = fixture("reference_ch02.en.html").replace(
        "Repository based package management operations on the Debian system can be performed by many APT-based\n"
        "          package management tools available on the Debian system.",
        "Die Paketverwaltung auf Basis von Depots kann auf einem Debian-System mit vielen Werkzeugen durchgeführt "
        "werden, die auf APT aufbauen.",
    )
    place(de_root, "usr/share/debian-reference/ch02.de.html", translated)
    family = Reference()
    en_marker, _ = convert_package(
        family, fake_fetched("debian-reference-en", en_root), converted, None, None
    )
    en_rows = read_shard(converted / "debian-reference-en", "en")
    assert [r["id"] for r in en_rows] == [
        "debian-reference/debian-reference-en/ch02.en.html",
        "debian-reference/debian-reference-en/ch02.en.html#_prerequisites",
        "debian-reference/debian-reference-en/ch02.en.html#_basic_operations",
    ]
    assert [r["group"] for r in en_rows] == [
        "debian-reference:ch02",
        "debian-reference:ch02#_prerequisites",
        "debian-reference:ch02#_basic_operations",
    ]
    assert en_rows[1]["title"] == "2.1. Prerequisites"
    reference = debian._english_reference(converted / "debian-reference-en", en_marker)
    de_marker, _ = convert_package(
        family, fake_fetched("debian-reference-de", de_root), converted, reference, "a" * 64
    )
    assert de_marker["dropped_untranslated"] == {"de": 2}
    (row,) = read_shard(converted / "debian-reference-de", "de")
    assert row["group"] == "debian-reference:ch02#_basic_operations" and row["lang"] == "de"


@needs_man
def test_manpages_skip_stubs_and_links_and_render_pages(tmp_path: Path) -> None:
    root = tmp_path / "manpages"
    page = place(root, "usr/share/man/man1/tiny.1.gz", gzip.compress((FIXTURES / "tiny.1").read_bytes()))
    place(root, "usr/share/man/man1/alias.1.gz", gzip.compress((FIXTURES / "stub.1").read_bytes()))
    (page.parent / "link.1.gz").symlink_to(page.name)
    family = ManPages()
    files = family.files("manpages", root)
    assert [f.rel for f in files] == ["man1/tiny.1.gz"]
    assert files[0].key == "man1/tiny.1" and files[0].lang == "en"
    marker, _ = convert_package(
        family, fake_fetched("manpages", root), tmp_path / "out", None, None, workers=2
    )
    (row,) = read_shard(tmp_path / "out" / "manpages", "en")
    assert row["title"] == "tiny(1)" and row["group"] == "manpages:man1/tiny.1"
    assert row["license"] == "LicenseRef-per-page"
    assert row["text"].startswith("NAME\ntiny - print a short greeting for the tests")
    # an English page left in a translated package is dropped, even with no English counterpart
    de_root = tmp_path / "manpages-de"
    place(de_root, "usr/share/man/de/man1/other.1.gz", gzip.compress((FIXTURES / "tiny.1").read_bytes()))
    de_marker, _ = convert_package(
        family, fake_fetched("manpages-de", de_root), tmp_path / "out", {}, "b" * 64
    )
    assert de_marker["dropped_untranslated"] == {"de": 1} and de_marker["shards"] == {}
    assert family.license_of("manpages-de") == "GPL-3.0-or-later"


def test_plan_puts_english_first_and_follows_languages() -> None:
    plan = [p for _, p in plan_packages({"ko"})]
    assert plan == [
        "debian-handbook",
        "installation-guide-amd64",
        "libreoffice-help-en-us",
        "libreoffice-help-ko",
        "debian-faq",
        "debian-faq-ko",
    ]
    default = [p for _, p in plan_packages(set(debian.DEFAULT_LANGS))]
    assert not any(p.startswith("gimp-help") for p in default)
    assert {"manpages", "manpages-zh", "debian-reference-zh-cn", "libreoffice-help-pt-br"} <= set(default)
    assert default.index("manpages") < default.index("manpages-de")
    explicit = [p for _, p in plan_packages(None, packages=["gimp-help-ko"])]
    assert explicit == ["gimp-help-en", "gimp-help-ko"]
    with pytest.raises(PackageNotFoundError, match="not a documentation package"):
        plan_packages(None, packages=["hello"])
    with pytest.raises(ValueError, match="unknown Debian source"):
        plan_packages(None, families=["wikipedia"])


def test_resolve_langs() -> None:
    assert debian._resolve_langs(None, None) == set(debian.DEFAULT_LANGS)
    assert debian._resolve_langs(None, ["debian-faq-ko"]) is None
    assert debian._resolve_langs(["de,zh_cn", "pt-br"], None) == {"de", "zh-CN", "pt-BR"}
    assert debian._resolve_langs(["all"], None) is None


# -- whole fetches with a fake apt-get ------------------------------------------------------------

FAKE_APT = """#!{python}
import os, shutil, sys
from pathlib import Path

args = sys.argv[1:]
while args and args[0] == "-o":
    args = args[2:]
mode = os.environ.get("FAKE_APT_MODE", "")
repo = Path(os.environ["FAKE_APT_REPO"])
log = Path(os.environ["FAKE_APT_LOG"])
with log.open("a") as f:
    f.write(" ".join(args) + "\\n")
if args[0] == "update":
    sys.exit(0)
if mode == "network":
    print("Err:1 http://deb.debian.org/debian bookworm/main amd64 " + args[1])
    print("  Temporary failure resolving 'deb.debian.org'", file=sys.stderr)
    print("E: Failed to fetch http://deb.debian.org/debian/pool/x.deb  Temporary failure resolving 'deb.debian.org'", file=sys.stderr)
    sys.exit(100)
if mode == "disk":
    print("E: Write error - write (28: No space left on device)", file=sys.stderr)
    sys.exit(100)
names = args[1:]
for name in names:
    if not (repo / (name + ".deb")).exists():
        print("E: Unable to locate package " + name, file=sys.stderr)
        sys.exit(100)
for name in names:
    shutil.copy(repo / (name + ".deb"), name + "_1.0-1_all.deb")
"""


def build_deb(repo: Path, name: str, pages: dict[str, str]) -> None:
    import subprocess

    tree = repo / "trees" / name
    for rel, content in pages.items():
        place(tree, rel, content)
    place(tree, f"usr/share/doc/{name}/copyright", "Permission is granted to copy.\n")
    place(
        tree,
        "DEBIAN/control",
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Test <t@example.org>\nDescription: test\n",
    )
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(repo / f"{name}.deb")],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    repo = tmp_path / "repo"
    repo.mkdir()
    faq = "usr/share/doc/debian/FAQ"
    build_deb(repo, "debian-faq", {f"{faq}/pkgtools.en.html": fixture("handbook_en.html"),
                                   f"{faq}/pkgtools.html": fixture("handbook_en.html"),
                                   f"{faq}/index.en.html": "<p>toc</p>"})  # fmt: skip
    build_deb(repo, "debian-faq-ko", {f"{faq}/ko/pkgtools.ko.html": KOREAN_PAGE,
                                      f"{faq}/ko/basic-defs.ko.html": fixture("handbook_en.html")})  # fmt: skip
    build_deb(repo, "debian-faq-ja", {"usr/share/doc/debian-faq-ja/README": "moved"})  # layout changed
    script = tmp_path / "apt-get"
    script.write_text(FAKE_APT.format(python=sys.executable), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "apt.log"
    monkeypatch.setenv("FAKE_APT_REPO", str(repo))
    monkeypatch.setenv("FAKE_APT_LOG", str(log))
    monkeypatch.setattr(debian, "ensure_apt_lists", lambda apt_get: None)
    return {"apt_get": str(script), "log": log, "corpus": tmp_path / "corpus"}


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@needs_dpkg
def test_fetch_converts_writes_manifest_and_resumes_from_cache(fake_apt: dict) -> None:
    corpus = fake_apt["corpus"]
    (corpus / "packages" / ".partial-debian-faq-x1").mkdir(parents=True)  # left by a killed fetch
    (corpus / "converted" / ".partial-debian-faq-x2").mkdir(parents=True)
    lines: list[str] = []
    report = fetch_debian(corpus, packages=["debian-faq-ko"], apt_get=fake_apt["apt_get"], log=lines.append)
    assert calls(fake_apt["log"]) == ["download debian-faq debian-faq-ko"]  # one batched download
    assert not list(corpus.glob("*/.partial-*"))
    assert [p.package for p in report.packages] == ["debian-faq", "debian-faq-ko"]
    ko = report.packages[1]
    assert ko.downloaded and ko.documents == {"ko": 1} and ko.dropped_untranslated == {"ko": 1}
    assert len(lines) == 2 and "debian-faq-ko 1.0-1" in lines[1]
    manifest = read_manifest(corpus)
    assert manifest["documents"] == 2 and manifest["langs"] == "all"
    assert manifest["packages"]["debian-faq-ko"]["license"] == "LicenseRef-Debian-FAQ"
    assert (corpus / manifest["packages"]["debian-faq-ko"]["copyright"]).is_file()
    marker = json.loads((corpus / "packages" / "debian-faq-ko" / MARKER).read_text())
    assert marker["version"] == "1.0-1" and len(marker["deb_sha256"]) == 64
    articles = {a.lang: a for a in iter_corpus(corpus)}
    assert articles["ko"].id == "debian-faq/debian-faq-ko/ko/pkgtools.ko.html"
    assert articles["ko"].group == articles["en"].group == "debian-faq:pkgtools"
    assert articles["ko"].text.startswith("8.1. 데비안 패키지 관리 도구\n그래픽")

    manifest_bytes = (corpus / "manifest.json").read_bytes()
    again = fetch_debian(corpus, packages=["debian-faq-ko"], apt_get=fake_apt["apt_get"])
    assert calls(fake_apt["log"]) == ["download debian-faq debian-faq-ko"]  # nothing downloaded again
    assert not any(p.downloaded or p.converted for p in again.packages)
    assert (corpus / "manifest.json").read_bytes() == manifest_bytes

    # langs filter the manifest, not the cache
    only_ko = fetch_debian(corpus, packages=["debian-faq-ko"], langs=["ko"], apt_get=fake_apt["apt_get"])
    assert only_ko.manifest["documents"] == 1 and {a.lang for a in iter_corpus(corpus)} == {"ko"}


@needs_dpkg
def test_corrupted_shard_is_detected_then_rebuilt_by_the_next_fetch(fake_apt: dict) -> None:
    corpus = fake_apt["corpus"]
    fetch_debian(corpus, packages=["debian-faq-ko"], apt_get=fake_apt["apt_get"])
    shard = corpus / "converted" / "debian-faq-ko" / "ko.jsonl"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(CorpusIntegrityError, match="ko.jsonl is corrupted"):
        list(iter_corpus(corpus))
    report = fetch_debian(corpus, packages=["debian-faq-ko"], apt_get=fake_apt["apt_get"])
    assert [p.converted for p in report.packages] == [False, True]
    assert len(list(iter_corpus(corpus))) == 2


@needs_dpkg
def test_missing_package_and_changed_layout_fail_without_a_manifest(fake_apt: dict) -> None:
    corpus = fake_apt["corpus"]
    with pytest.raises(DebianFetchError) as failure:
        fetch_debian(
            corpus, packages=["debian-faq-ko", "debian-faq-ru", "debian-faq-ja"], apt_get=fake_apt["apt_get"]
        )
    message = str(failure.value)
    assert "2 package(s) failed" in message and "manifest was not written" in message
    assert "APT has no package named 'debian-faq-ru'" in message
    assert "debian-faq-ja has no folder usr/share/doc/debian/FAQ" in message
    assert not (corpus / "manifest.json").exists()
    # the packages that worked are kept, complete, for the next run
    assert (corpus / "packages" / "debian-faq-ko" / MARKER).is_file()
    assert (corpus / "converted" / "debian-faq-ko" / "_complete.json").is_file()
    assert not (corpus / "packages" / "debian-faq-ru").exists()


@needs_dpkg
@pytest.mark.parametrize(("mode", "error", "text"), [("network", NetworkError, "could not reach the Debian mirror"),
                                                      ("disk", DiskFullError, "disk is full")])  # fmt: skip
def test_network_and_disk_failures_stop_with_nothing_half_written(
    fake_apt: dict, monkeypatch: pytest.MonkeyPatch, mode: str, error: type, text: str
) -> None:
    monkeypatch.setenv("FAKE_APT_MODE", mode)
    corpus = fake_apt["corpus"]
    with pytest.raises(error, match=text):
        fetch_debian(corpus, packages=["debian-faq-ko"], apt_get=fake_apt["apt_get"])
    assert not (corpus / "manifest.json").exists()
    assert [p.name for p in (corpus / "packages").iterdir()] == []


@needs_dpkg
def test_fetch_package_alone_names_a_missing_package(fake_apt: dict, tmp_path: Path) -> None:
    with pytest.raises(PackageNotFoundError, match="no package named 'nothere'.*apt-cache search"):
        fetch_package("nothere", tmp_path / "pkgs", apt_get=fake_apt["apt_get"])
    assert list((tmp_path / "pkgs").iterdir()) == []


def test_ensure_apt_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_apt: dict) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(DebianFetchError, match="sudo apt-get update"):
        ensure_apt_lists(fake_apt["apt_get"], lists)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    ensure_apt_lists(fake_apt["apt_get"], lists)
    assert calls(fake_apt["log"]) == ["update"]
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4").write_bytes(b"")
    ensure_apt_lists(fake_apt["apt_get"], lists)  # lists present: no second update
    assert calls(fake_apt["log"]) == ["update"]
    with pytest.raises(DebianFetchError, match="was not found"):
        ensure_apt_lists(str(tmp_path / "no-such-apt-get"), tmp_path / "empty")


def test_families_cover_their_packages() -> None:
    assert (
        DebianFaq().owns("debian-faq-zh-cn") and DebianFaq().packages_by_lang["zh-CN"] == "debian-faq-zh-cn"
    )
    assert ManPages().packages({"zh-CN", "zh-TW"}) == ["manpages", "manpages-zh"]
    assert Reference().packages({"pt-BR"}) == ["debian-reference-en", "debian-reference-pt-br"]
