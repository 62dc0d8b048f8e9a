"""HTML pages from the templates in ``finesse/site/``, with styles, scripts and data inlined."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from importlib import resources
from typing import Any

from vbert.finesse.leaderboard.entries import LeaderboardError

SITE_ASSETS = ("uPlot.iife.min.js", "common.js", "anatomy.js")
UPLOT_VERSION = "1.6.32"


def asset(name: str) -> str:
    """The text of one file of ``finesse/site/``."""
    return resources.files("vbert.finesse").joinpath("site", name).read_text(encoding="utf-8")


def json_for_html(data: Any) -> str:
    """Compact JSON with "<" escaped, so no value (a model name, say) can close the <script> it sits in."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).replace(
        "<", "\\u003c"
    )


def render_page(
    template: str, title: str, data: Any, scripts: Sequence[str], content_security_policy: str | None = None
) -> str:
    """A page: the shell ``finesse/site/page.html`` around the body ``template`` from the same folder,
    with styles, scripts and JSON data inlined, and the policy as a ``<meta>`` tag when given."""
    code = []
    for name in scripts:
        text = asset(name)
        if "</script" in text.lower():
            raise LeaderboardError(f"site asset {name} contains '</script' and cannot be inlined")
        code.append(f"/* ---- {name} ---- */\n{text}")
    head = (
        ""
        if content_security_policy is None
        else (f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy}">\n')
    )
    page = asset("page.html").replace("@@HEAD@@", head).replace("@@BODY@@", asset(template))
    replacements = {
        "@@TITLE@@": escape(title),
        "@@STYLE@@": asset("uPlot.min.css") + "\n" + asset("style.css"),
        "@@UPLOT_VERSION@@": UPLOT_VERSION,
        "@@DATA@@": json_for_html(data),
        "@@SCRIPTS@@": "\n".join(code),
    }
    for marker, value in replacements.items():
        page = page.replace(marker, value)
    return page
