"""Prose extraction from documentation HTML with the standard library's parser.

Navigation, tables of contents, banners and debug blocks are skipped; block elements become
line breaks, so the text comes out as one paragraph per line. Optionally the page is cut into
sections at a heading tag (``h2`` for the chapters of the Debian Reference).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

# Elements whose whole content is never prose.
SKIP_TAGS = frozenset({"script", "style", "head", "nav", "header", "footer", "aside", "noscript", "template"})
# Elements with one of these classes (or this id) are page furniture, not prose. Whole names
# only: an anchor such as id="_debug" on a "Debug" section is prose.
SKIP_NAMES = frozenset(
    {
        "navheader",
        "navfooter",
        "docnav",
        "banner",
        "toc",
        "breadcrumb",
        "breadcrumbs",
        "footer",
        "header",
        "debug",
    }
)
BLOCK_TAGS = frozenset(
    {
        "address", "article", "blockquote", "br", "caption", "dd", "div", "dl", "dt", "figcaption",
        "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "main", "ol", "p", "pre", "section",
        "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
# Elements that never have an end tag, so they never open a skipped region.
VOID_TAGS = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)

_CJK = r"\u2e80-\u2fff\u3000-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}]) +(?=[{_CJK}])")
_WHITESPACE = re.compile(r"\s+")


def normalize_inline(text: str) -> str:
    """Collapse whitespace (newlines included) to single spaces; drop spaces between CJK characters."""
    return _SPACE_BETWEEN_CJK.sub("", _WHITESPACE.sub(" ", text)).strip()


@dataclass
class HtmlSection:
    """A run of prose lines; ``anchor`` is the id of the heading that opened it (``""`` before the first)."""

    anchor: str
    title: str
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class HtmlDocument:
    title: str
    sections: list[HtmlSection]

    @property
    def text(self) -> str:
        return "\n".join(line for section in self.sections for line in section.lines)


class _ProseParser(HTMLParser):
    def __init__(self, split_tag: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.split_tag = split_tag
        self.title_parts: list[str] = []
        self.sections = [HtmlSection(anchor="", title="")]
        self._open: list[str] = []  # stack of open non-void tags
        self._skip_depth: int | None = None  # stack depth at which a skipped element opened
        self._in_title = False
        self._title_done = False
        self._pre_depth = 0
        self._buffer: list[str] = []
        self._heading: list[str] | None = None  # text of the split heading being read

    # -- structure ---------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and not self._title_done:
            self._in_title = True
        if tag in VOID_TAGS:
            if tag in BLOCK_TAGS and self._skip_depth is None:
                self._flush()
            return
        self._open.append(tag)
        if self._skip_depth is not None:
            return
        attributes = dict(attrs)
        if tag in SKIP_TAGS or self._is_furniture(attributes):
            self._skip_depth = len(self._open)
            return
        if tag in BLOCK_TAGS:
            self._flush()
        if tag == "pre":
            self._pre_depth += 1
        if tag == self.split_tag:
            self.sections.append(HtmlSection(anchor=attributes.get("id") or "", title=""))
            self._heading = []
        elif self._heading is not None and tag == "a" and not self.sections[-1].anchor:
            self.sections[-1].anchor = attributes.get("id") or attributes.get("name") or ""

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # XHTML's <a id="x"/> or <br/>: an element with no content.
        if tag in VOID_TAGS:
            self.handle_starttag(tag, attrs)
            return
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self._title_done = True
        if tag in VOID_TAGS or tag not in self._open:
            return
        while self._open:
            closed = self._open.pop()
            self._close(closed)
            if closed == tag:
                break

    def _close(self, tag: str) -> None:
        if self._skip_depth is not None:
            if len(self._open) + 1 == self._skip_depth:
                self._skip_depth = None
            return
        if tag in BLOCK_TAGS:
            self._flush()
        if tag == "pre":
            self._pre_depth -= 1
        if tag == self.split_tag and self._heading is not None:
            self.sections[-1].title = normalize_inline("".join(self._heading))
            self._heading = None

    @staticmethod
    def _is_furniture(attributes: dict[str, str | None]) -> bool:
        # LibreOffice Help ships platform/module alternatives as hidden spans that a script
        # reveals; the one whose id starts with "default" is what a reader normally sees.
        if "hidden" in attributes and not (attributes.get("id") or "").startswith("default"):
            return True
        style = (attributes.get("style") or "").replace(" ", "").lower()
        if "display:none" in style:
            return True
        names = (attributes.get("class") or "").lower().split() + [(attributes.get("id") or "").lower()]
        return any(name in SKIP_NAMES for name in names)

    # -- text --------------------------------------------------------------------------------
    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
            return
        if self._skip_depth is not None:
            return
        self._buffer.append(data)
        if self._heading is not None:
            self._heading.append(data)

    def _flush(self) -> None:
        raw = "".join(self._buffer)
        self._buffer.clear()
        if self._pre_depth > 0:
            lines = [line.rstrip() for line in raw.strip("\n").split("\n")]
        else:
            lines = [normalize_inline(raw)]
        self.sections[-1].lines.extend(line for line in lines if line.strip())

    def close(self) -> None:
        super().close()
        self._flush()


def extract_html(html: str, split_tag: str | None = None) -> HtmlDocument:
    """Parse ``html`` into its ``<title>`` and prose, cut into sections at ``split_tag`` headings.

    With ``split_tag=None`` the document has a single section holding all its prose.
    """
    parser = _ProseParser(split_tag)
    parser.feed(html)
    parser.close()
    sections = parser.sections
    if not sections[0].lines and len(sections) > 1:
        sections = sections[1:]
    return HtmlDocument(title=normalize_inline("".join(parser.title_parts)), sections=sections)


def html_to_text(html: str) -> tuple[str, str]:
    """Return ``(title, text)`` of an HTML page, one paragraph per line."""
    document = extract_html(html)
    return document.title, document.text
