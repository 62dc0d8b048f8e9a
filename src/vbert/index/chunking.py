"""Content-defined chunking: chunk boundaries that stay put when a document is edited locally.

Cutting every ``max_tokens`` tokens (what :meth:`LongDocumentEncoder.chunk` does) shifts every
later boundary when one word is inserted near the start, so every later chunk is new and must
be embedded again. Here a document is first cut into *units* (paragraphs; lines, then sentences,
inside a paragraph that alone exceeds the window; token pieces from ``embedder.split`` inside a
sentence that still does), and units are then grouped into chunks:

* a chunk never exceeds ``max_tokens`` content tokens (checked by re-tokenising the chunk);
* once a chunk holds ``min_tokens``, it ends after a unit whose text hash falls under
  ``unit_tokens / (target_tokens - min_tokens)``, so boundaries depend on the units' own text,
  not on their offset in the document, and chunks average about ``target_tokens``.

An edit changes the units it touches; the first content-defined boundary after it is chosen
the same way as before, so the chunking re-synchronises and later chunks keep their text and
their cache keys (see docs/index.md for the measured share of chunks reused).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from vbert.cache import text_key
from vbert.embedders.base import Embedder

#: Units, coarsest first: paragraphs, then lines, then sentences of a piece that exceeds the window.
UNIT_BREAKS = (
    re.compile(r"\n[ \t]*\n"),
    re.compile(r"\n"),
    re.compile(r"(?<=[.!?。！？])\s+"),
)
CHUNKER_VERSION = 1


@dataclass(frozen=True)
class Chunk:
    """One chunk: its text, its character span ``[start, end)`` in the document, its token count."""

    text: str
    start: int
    end: int
    tokens: int

    @property
    def key(self) -> str:
        """The chunk-cache key (sha256 of the text), the same as :class:`vbert.ChunkCache` uses."""
        return text_key(self.text)


@dataclass(frozen=True)
class ChunkingSpec:
    """Size limits of :func:`chunk_text`, in content tokens of the embedder."""

    max_tokens: int
    min_tokens: int
    target_tokens: int

    @classmethod
    def for_embedder(cls, embedder: Embedder, max_tokens: int | None = None) -> ChunkingSpec:
        """Chunks of at most ``max_tokens`` (default: the embedder's window), about half of it on average."""
        size = max_tokens or embedder.content_window
        if not 1 <= size <= embedder.content_window:
            raise ValueError(
                f"chunk size {size} must be between 1 and the embedder's window ({embedder.content_window})"
            )
        return cls(max_tokens=size, min_tokens=max(size // 4, 1), target_tokens=max(size // 2, 2))

    def __post_init__(self) -> None:
        if not 1 <= self.min_tokens < self.target_tokens <= self.max_tokens:
            raise ValueError(
                f"chunking needs 1 <= min_tokens < target_tokens <= max_tokens, got {self.min_tokens}, "
                f"{self.target_tokens}, {self.max_tokens}"
            )

    @property
    def fingerprint(self) -> str:
        """Identifies the chunking rule; an index refuses to mix chunks made by another rule."""
        return f"cdc{CHUNKER_VERSION}-{self.min_tokens}-{self.target_tokens}-{self.max_tokens}"


def _unit_hash(text: str) -> float:
    """A uniform number in [0, 1) determined by the unit's text alone."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64


def _spans(text: str, pattern: re.Pattern[str], start: int, end: int) -> list[tuple[int, int]]:
    """Non-blank pieces of ``text[start:end]`` between matches of ``pattern``, whitespace trimmed."""
    spans, cursor = [], start
    for match in (*pattern.finditer(text, start, end), None):
        stop = match.start() if match else end
        piece = text[cursor:stop]
        if piece.strip():
            left = cursor + len(piece) - len(piece.lstrip())
            spans.append((left, left + len(piece.strip())))
        if match:
            cursor = match.end()
    return spans


def _units(embedder: Embedder, text: str, max_tokens: int) -> list[tuple[int, int, int]]:
    """``(start, end, tokens)`` of each unit, in order; every unit fits in ``max_tokens``."""
    units: list[tuple[int, int, int]] = []

    def cut(start: int, end: int, level: int) -> None:
        for a, b in _spans(text, UNIT_BREAKS[level], start, end):
            tokens = embedder.count_tokens(text[a:b])
            if tokens <= max_tokens:
                units.append((a, b, tokens))
            elif level + 1 < len(UNIT_BREAKS):
                cut(a, b, level + 1)
            else:
                units.extend(_pieces(embedder, text, a, b, max_tokens))

    cut(0, len(text), 0)
    return units


def _pieces(
    embedder: Embedder, text: str, start: int, end: int, max_tokens: int
) -> list[tuple[int, int, int]]:
    """An oversize sentence cut by ``embedder.split``, each piece located in the document."""
    pieces, cursor = [], start
    for piece in embedder.split(text[start:end], max_tokens):
        found = text.find(piece.strip(), cursor, end)
        left = found if found >= 0 else cursor
        right = min(left + len(piece.strip()), end)
        if right > left:
            pieces.append((left, right, embedder.count_tokens(text[left:right])))
        cursor = right
    return pieces


def chunk_text(embedder: Embedder, text: str, spec: ChunkingSpec) -> list[Chunk]:
    """Cut ``text`` into content-defined chunks of at most ``spec.max_tokens`` tokens each."""
    if not isinstance(text, str):
        raise TypeError(f"documents must be str, got {type(text).__name__}")
    gap = spec.target_tokens - spec.min_tokens
    chunks: list[Chunk] = []
    group_start, group_end, held = -1, -1, 0
    for start, end, tokens in _units(embedder, text, spec.max_tokens):
        if held and held + tokens > spec.max_tokens:
            chunks.extend(_fit(embedder, text, group_start, group_end, spec.max_tokens))
            held = 0
        if not held:
            group_start = start
        group_end, held = end, held + tokens
        if held >= spec.min_tokens and _unit_hash(text[start:end]) < tokens / gap:
            chunks.extend(_fit(embedder, text, group_start, group_end, spec.max_tokens))
            held = 0
    if held:
        chunks.extend(_fit(embedder, text, group_start, group_end, spec.max_tokens))
    return chunks


def _fit(embedder: Embedder, text: str, start: int, end: int, max_tokens: int) -> list[Chunk]:
    """The chunk ``text[start:end]``, re-cut in the rare case joining units made it re-tokenise longer."""
    body = text[start:end]
    tokens = embedder.count_tokens(body)
    if tokens <= max_tokens:
        return [Chunk(body, start, end, tokens)]
    return [Chunk(text[a:b], a, b, n) for a, b, n in _pieces(embedder, text, start, end, max_tokens)]
