"""Prose extraction from HTML and man pages, and detection of untranslated pages."""

from __future__ import annotations

from pathlib import Path

from vbert.data.corpora.html_text import extract_html, html_to_text, normalize_inline

FIXTURES = Path(__file__).parents[1] / "fixtures" / "corpora"


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
