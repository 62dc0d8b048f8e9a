"""Prose extraction from HTML and man pages, and detection of untranslated pages."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from vbert.data.corpora.html_text import extract_html, html_to_text, normalize_inline
from vbert.data.corpora.language import (
    check_translation,
    looks_english,
    native_script_share,
    normalize_lang,
    prose_paragraphs,
)
from vbert.data.corpora.manpage import (
    ManPageError,
    is_manpage_stub,
    manpage_text,
    manpage_title,
    render_manpage,
)

FIXTURES = Path(__file__).parent / "fixtures" / "corpora"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# -- HTML -----------------------------------------------------------------------------------------


def test_html_keeps_prose_and_drops_page_furniture() -> None:
    title, text = html_to_text(fixture_text("handbook_en.html"))
    assert title == "6.2. The apt command"
    lines = text.splitlines()
    assert lines[0] == "6.2. The apt command"
    # a paragraph wrapped over several source lines becomes one line
    assert lines[1].startswith("APT is a vast project, whose original plans") and lines[1].endswith(
        "command-line based."
    )
    for furniture in ("Download the ebook", "Prev", "Next", "script text", "color: red"):
        assert furniture not in text
    # <pre> keeps its line structure
    assert "$ apt update" in lines and "$ apt upgrade" in lines


def test_html_drops_libreoffice_header_footer_and_hidden_alternatives() -> None:
    title, text = html_to_text(fixture_text("libreoffice_ko.html"))
    assert title == "프록시"
    for furniture in ("LibreOffice 7.4 Help", "Module", "Contents", "Index", "debug info", "This page is"):
        assert furniture not in text
    # of the platform alternatives only the default one is what a reader sees
    assert "Choose Tools - Options - Internet - Proxy." in text.splitlines()
    assert "LibreOffice - Preferences" not in text
    assert text.splitlines()[0] == "프록시"


def test_html_removes_spaces_between_cjk_characters_only() -> None:
    _, text = html_to_text(fixture_text("handbook_ja.html"))
    assert (
        "APT は巨大なプロジェクトで、当初の計画にはグラフィカルなインターフェースが含まれていました。" in text
    )
    # Hangul keeps its spaces
    assert normalize_inline("한국어 문장 은  띄어 쓴다") == "한국어 문장 은 띄어 쓴다"
    assert normalize_inline("漢字 かな\nカナ") == "漢字かなカナ"
    assert normalize_inline("English  words\n here") == "English words here"


def test_html_sections_split_at_h2_with_their_anchor() -> None:
    document = extract_html(fixture_text("reference_ch02.en.html"), split_tag="h2")
    assert document.title == "Chapter 2. Debian package management"
    anchors = [s.anchor for s in document.sections]
    assert anchors == ["", "_prerequisites", "_basic_operations"]
    intro, prerequisites, basics = document.sections
    assert intro.lines[0] == "Chapter 2. Debian package management"
    assert "Table of Contents" not in intro.text  # the toc is skipped
    assert prerequisites.title == "2.1. Prerequisites"
    assert prerequisites.lines[1].startswith("Debian is a volunteer organization")
    assert "2.2. Basic operations" not in prerequisites.text
    assert basics.text.startswith("2.2. Basic operations\nRepository based package management")
    assert "Prev" not in basics.text and "Home" not in basics.text


def test_furniture_names_match_whole_class_names_only() -> None:
    html = (
        '<div class="toc">contents</div><div class="docnav top">prev</div><div id="DEBUG">info</div>'
        '<h2><a id="_debug"/>12.5. Debug</h2><div class="section" id="_table_of_contents_tool"><p>kept</p></div>'
        '<p class="howtogetheader">kept too</p>'
    )
    document = extract_html(html, split_tag="h2")
    assert [s.anchor for s in document.sections] == ["_debug"]
    assert document.text.splitlines() == ["12.5. Debug", "kept", "kept too"]


def test_html_survives_unclosed_and_stray_tags() -> None:
    title, text = html_to_text("<title>t</title><p>one<p>two</span></div><br>three<li>four")
    assert title == "t"
    assert text.splitlines() == ["one", "two", "three", "four"]


# -- man pages ------------------------------------------------------------------------------------


def test_manpage_text_drops_header_footer_rules_and_overstrikes() -> None:
    rendered = (
        "TINY(1)" + " " * 50 + "User Commands" + " " * 50 + "TINY(1)\n\n"
        "N\bNA\bAM\bME\bE\n       tiny - print a greeting\n\n"
        "       ┌───────┬────────┐\n       │option │ meaning │\n       └───────┴────────┘\n"
        "       日本 語の 文章\n\n"
        "vbert 0.1" + " " * 80 + "2024-01-01" + " " * 80 + "TINY(1)\n"
    )
    assert manpage_text(rendered).splitlines() == [
        "NAME",
        "tiny - print a greeting",
        "option meaning",
        "日本語の文章",
    ]
    assert manpage_text("HEADER\nFOOTER\n") == ""


def test_manpage_title_and_stub_detection(tmp_path: Path) -> None:
    assert manpage_title("usr/share/man/man1/ls.1.gz") == "ls(1)"
    assert manpage_title("gai.conf.5") == "gai.conf(5)"
    page = tmp_path / "tiny.1.gz"
    page.write_bytes(gzip.compress((FIXTURES / "tiny.1").read_bytes()))
    stub = tmp_path / "alias.1.gz"
    stub.write_bytes(gzip.compress(b'.\\" comment first\n\n' + (FIXTURES / "stub.1").read_bytes()))
    link = tmp_path / "link.1.gz"
    link.symlink_to(page.name)
    assert not is_manpage_stub(page)
    assert is_manpage_stub(stub)
    assert is_manpage_stub(link)


@pytest.mark.skipif(shutil.which("man") is None, reason="needs man-db and groff")
def test_render_tiny_manpage_with_man(tmp_path: Path) -> None:
    page = tmp_path / "tiny.1.gz"
    page.write_bytes(gzip.compress((FIXTURES / "tiny.1").read_bytes()))
    lines = manpage_text(render_manpage(page)).splitlines()
    assert lines[:2] == ["NAME", "tiny - print a short greeting for the tests"]
    # no wrapping at a very wide MANWIDTH: each paragraph is one line
    assert (
        "tiny prints a greeting and exits. This sentence is long enough to be a prose paragraph on its own line."
        in lines
    )
    assert not any("TINY(1)" in line for line in lines)  # header and footer dropped
    assert not any(ch in "".join(lines) for ch in "┌─┐│")  # table rules dropped


@pytest.mark.skipif(shutil.which("man") is None, reason="needs man-db and groff")
def test_render_missing_page_names_it(tmp_path: Path) -> None:
    with pytest.raises(ManPageError, match="nope.1"):
        render_manpage(tmp_path / "nope.1")


# -- languages and untranslated pages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("de-DE", "de"),
        ("en-US", "en"),
        ("en", "en"),
        ("pt_BR", "pt-BR"),
        ("pt-br", "pt-BR"),
        ("pt", "pt"),
        ("zh_CN", "zh-CN"),
        ("zh-cn", "zh-CN"),
        ("zh-TW", "zh-TW"),
        ("ko-KR", "ko"),
        ("nb-NO", "nb"),
        ("sr@latin", "sr"),
    ],
)
def test_normalize_lang(code: str, expected: str) -> None:
    assert normalize_lang(code) == expected


@pytest.mark.parametrize("bad", ["Common_Content", "images", "man1", "", "english"])
def test_normalize_lang_rejects_non_codes(bad: str) -> None:
    with pytest.raises(ValueError, match="not a language code"):
        normalize_lang(bad)


def test_english_fallback_page_is_not_translated() -> None:
    _, english = html_to_text(fixture_text("handbook_en.html"))
    _, german = html_to_text(fixture_text("handbook_de.html"))
    reference = prose_paragraphs(english)
    assert len(reference) == 3
    assert check_translation(german, "de", reference).translated
    fallback = check_translation(english, "ko", reference)
    assert not fallback.translated and fallback.english_share == 1.0
    assert fallback.native_share == 0.0
    # without the English page, the function-word test still catches it in a Latin-script language
    assert not check_translation(english, "de").translated
    assert check_translation(english, "en").translated


def test_partly_translated_page_is_dropped_above_the_threshold() -> None:
    _, english = html_to_text(fixture_text("handbook_en.html"))
    _, german = html_to_text(fixture_text("handbook_de.html"))
    english_lines, german_lines = english.splitlines(), german.splitlines()
    mixed = "\n".join(german_lines[:2] + english_lines[2:])  # one of three paragraphs translated
    check = check_translation(mixed, "de", prose_paragraphs(english))
    assert not check.translated and check.english_share == pytest.approx(2 / 3)
    assert check_translation(mixed, "de", prose_paragraphs(english), max_english_share=0.9).translated


def test_native_script_share() -> None:
    _, japanese = html_to_text(fixture_text("handbook_ja.html"))
    assert native_script_share(japanese, "ja") > 0.8
    assert check_translation(japanese, "ja").translated
    assert native_script_share("Hello world", "ko") == 0.0
    assert native_script_share("Hallo Welt", "de") is None
    assert native_script_share("Привет мир and more", "ru") == pytest.approx(9 / 16)


def test_looks_english_ignores_other_latin_languages() -> None:
    assert looks_english("The package is installed with the tool and you can use it from the shell.")
    assert not looks_english(
        "Das Paket wird mit dem Werkzeug installiert und kann aus der Shell benutzt werden."
    )
    assert not looks_english(
        "Het pakket is geïnstalleerd en het is klaar voor gebruik in de shell van het systeem."
    )
    assert not looks_english(
        "Pakken er installert for bruk, og den kan brukes fra skallet på systemet ditt nå."
    )
    assert not looks_english("too short")
