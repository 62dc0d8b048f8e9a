"""Render roff man pages to plain prose with ``man`` (man-db + groff)."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
from pathlib import Path

from vbert.data.corpora.html_text import normalize_inline
from vbert.data.errors import ManPageError

# Wide enough that groff never wraps a paragraph: one paragraph per output line.
MANWIDTH = 10000
_OVERSTRIKE = re.compile(r".\x08")
_BOX_DRAWING = re.compile(r"[\u2500-\u257f]+")
_COMPRESSED = {".gz": gzip.open}
ROFF_COMMENTS = ('.\\"', "'\\\"", ".\\#")


def manpage_title(path: str | Path) -> str:
    """``ls.1.gz`` -> ``ls(1)``: the name and section read from the file name."""
    name = Path(path).name
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    stem, dot, section = name.rpartition(".")
    return f"{stem}({section})" if dot and stem else name


def read_roff_head(path: Path, limit: int = 8192) -> str:
    """The first ``limit`` bytes of a (possibly gzipped) roff file, decoded leniently."""
    opener = _COMPRESSED.get(path.suffix, open)
    with opener(path, "rb") as f:
        return f.read(limit).decode("utf-8", errors="replace")


def is_manpage_stub(path: str | Path) -> bool:
    """True for links and ``.so`` include stubs, which only point at another page."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return True
    for line in read_roff_head(path).splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(ROFF_COMMENTS) or stripped == ".":
            continue
        return stripped.startswith(".so ")
    return True


def render_manpage(path: str | Path, timeout: float = 120.0) -> str:
    """Run ``man`` on one page file at a very wide ``MANWIDTH``; return its raw terminal text."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAN_KEEP_FORMATTING", "MANPAGER", "PAGER")}
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", MANWIDTH=str(MANWIDTH), MAN_DISABLE_SECCOMP="1")
    command = ["man", "--nh", "--nj", "-E", "UTF-8", "-l", str(path)]
    try:
        result = subprocess.run(command, capture_output=True, env=env, timeout=timeout, check=False)
    except FileNotFoundError as err:
        raise ManPageError(
            "the `man` program is not installed; man pages are rendered with man-db and groff "
            "(Debian/Ubuntu: `apt-get install man-db groff-base`)"
        ) from err
    except subprocess.TimeoutExpired as err:
        raise ManPageError(f"`man` took longer than {timeout:.0f}s on {path}") from err
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise ManPageError(
            f"`man` failed on {path} (exit {result.returncode}): {detail[-1] if detail else ''}"
        )
    return result.stdout.decode("utf-8", errors="replace")


def manpage_text(rendered: str) -> str:
    """Clean ``man`` output: drop the header and footer lines, table rules and overstrikes.

    Returns one paragraph per line, whitespace collapsed.
    """
    lines = [_BOX_DRAWING.sub(" ", _OVERSTRIKE.sub("", line)) for line in rendered.splitlines()]
    content = [i for i, line in enumerate(lines) if line.strip()]
    if len(content) <= 2:
        return ""
    body = lines[content[0] + 1 : content[-1]]
    return "\n".join(text for text in (normalize_inline(line) for line in body) if text)
