"""Prose extraction from HTML and man pages, and detection of untranslated pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbert.data.corpora.html_text import html_to_text
from vbert.data.corpora.language import (
    check_translation,
    looks_english,
    native_script_share,
    normalize_lang,
    prose_paragraphs,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "corpora"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


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
