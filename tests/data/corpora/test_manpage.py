"""Prose extraction from HTML and man pages, and detection of untranslated pages."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from vbert.data.corpora.manpage import (
    ManPageError,
    is_manpage_stub,
    manpage_text,
    manpage_title,
    render_manpage,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "corpora"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


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
