"""The lab's analysis: one pasted sample → its Top-Down and Bottom-Up matrices, live.

Paste a text (cut into chunks with the embedder's tokenizer) or several chunks, choose an
embedder and a merger, and see the similarity matrices of that one sample, with the
memory/noise split of each row, its quartiles and gap, exactly as the Finesse benchmark
scores them (:mod:`vbert.finesse.metrics.rss`). Analyses run one at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import numpy as np

from vbert.embedders.base import Embedder
from vbert.errors import ConfigError, DataError
from vbert.finesse.metrics import FORMULAS
from vbert.finesse.metrics.rss import SCORE_VERSIONS
from vbert.mergers import Merger, baseline_names

NATIVE = "native"
CHUNK_SPACES = ("base", "merger")


def default_mergers() -> list[str]:
    """What the lab offers unless told otherwise: every baseline merger, then ``native``."""
    return [*baseline_names(), NATIVE]


class LabInputError(DataError):
    """Bad input to the lab: ``message`` says what and how to fix it; ``field`` names the input."""

    def __init__(self, message: str, field: str | None = None, status: int = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.field = field
        self.status = int(status)


@dataclass(frozen=True)
class LabLimits:
    """Input size limits (keep one request to a few seconds of CPU)."""

    max_text_chars: int = 100_000
    max_chunks: int = 64
    min_chunks: int = 3
    min_chunk_tokens: int = 4
    max_body_bytes: int = 1_000_000


@dataclass
class Lab:
    """Embedders and mergers by name (factories, loaded on first use) and the analysis itself.

    ``mergers`` maps names to factories; the name ``native`` (when ``native=True``) is the
    embedder itself run on the joined prefix texts, as in the benchmark's native mode.
    """

    embedders: Mapping[str, Callable[[], Embedder]]
    mergers: Mapping[str, Callable[[], Merger]]
    native: bool = True
    limits: LabLimits = field(default_factory=LabLimits)
    default_chunk_tokens: int = 64
    _loaded: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.embedders:
            raise ConfigError("the lab needs at least one embedder")
        if not self.mergers and not self.native:
            raise ConfigError("the lab needs at least one merger (or native=True)")

    def merger_names(self) -> list[str]:
        return [*self.mergers, *([NATIVE] if self.native and NATIVE not in self.mergers else [])]

    def options(self) -> dict[str, Any]:
        """What the page offers (names, formulas, limits, defaults)."""
        return {
            "embedders": list(self.embedders),
            "mergers": self.merger_names(),
            "formulas": list(FORMULAS),
            "score_versions": list(SCORE_VERSIONS),
            "chunk_spaces": list(CHUNK_SPACES),
            "limits": {
                "max_text_chars": self.limits.max_text_chars,
                "max_chunks": self.limits.max_chunks,
                "min_chunks": self.limits.min_chunks,
                "min_chunk_tokens": self.limits.min_chunk_tokens,
                "max_body_bytes": self.limits.max_body_bytes,
            },
            "defaults": {
                "embedder": next(iter(self.embedders)),
                "merger": self.merger_names()[0],
                "chunk_tokens": self.default_chunk_tokens,
                "formula": "q1q3",
                "score_version": "balanced",
                "chunk_space": "base",
            },
        }

    def _get(self, kind: str, name: str, factories: Mapping[str, Callable[[], Any]]) -> Any:
        key = (kind, name)
        if key not in self._loaded:
            try:
                self._loaded[key] = factories[name]()
            except Exception as err:  # any loader failure becomes a message in the page
                raise LabInputError(
                    f"the {kind} {name!r} cannot be loaded here: {err}", kind, HTTPStatus.UNPROCESSABLE_ENTITY
                ) from err
        return self._loaded[key]

    def analyze(self, request: Any) -> dict[str, Any]:
        """Validate a request, embed, merge every prefix and return the sample's matrices."""
        if not isinstance(request, dict):
            raise LabInputError("the request body must be a JSON object")
        known = {
            "text",
            "chunks",
            "embedder",
            "merger",
            "chunk_tokens",
            "formula",
            "score_version",
            "chunk_space",
        }
        unknown = sorted(set(request) - known)
        if unknown:
            raise LabInputError(
                f"unknown field(s) {', '.join(unknown)}; the API accepts {sorted(known)}", unknown[0]
            )
        defaults = self.options()["defaults"]
        embedder_name = _choice(request, "embedder", list(self.embedders), defaults["embedder"])
        merger_name = _choice(request, "merger", self.merger_names(), defaults["merger"])
        formula = _choice(request, "formula", list(FORMULAS), "q1q3")
        version = _choice(request, "score_version", list(SCORE_VERSIONS), "balanced")
        chunk_space = _choice(request, "chunk_space", list(CHUNK_SPACES), "base")
        texts_given = request.get("text") is not None
        chunks_given = request.get("chunks") is not None
        if texts_given == chunks_given:
            raise LabInputError(
                "send either 'text' (cut into chunks for you) or 'chunks' (a list of texts)", "text"
            )
        # Everything that needs no model is checked first, so a bad request never waits for a load.
        if texts_given:
            text = self._clean_text(request["text"])
            tokens = request.get("chunk_tokens", self.default_chunk_tokens)
            if isinstance(tokens, bool) or not isinstance(tokens, int):
                raise LabInputError(
                    f"Tokens per chunk must be a whole number, got {tokens!r}.", "chunk_tokens"
                )
        else:
            chunks = self._clean_chunks(request["chunks"])
        with self._lock:
            embedder = self._get("embedder", embedder_name, self.embedders)
            if texts_given:
                chunks = self._cut(text, tokens, embedder)
            else:
                self._check_window(chunks, embedder)
            return self._compute(chunks, embedder, merger_name, formula, version, chunk_space)

    def _clean_text(self, text: Any) -> str:
        if not isinstance(text, str):
            raise LabInputError("'text' must be a string", "text")
        text = text.strip()
        if not text:
            raise LabInputError("The text is empty: paste a document (at least three chunks long).", "text")
        limit = self.limits.max_text_chars
        if len(text) > limit:
            raise LabInputError(
                f"The text has {len(text):,} characters; the lab takes at most {limit:,}. Paste a shorter part.",
                "text",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        return text

    def _cut(self, text: str, tokens: int, embedder: Embedder) -> list[str]:
        window = int(embedder.content_window)
        low = self.limits.min_chunk_tokens
        if not low <= tokens <= window:
            raise LabInputError(
                f"Tokens per chunk must be from {low} to {window} (the window of {embedder.name}), got {tokens}.",
                "chunk_tokens",
            )
        chunks = [c for c in embedder.split(text, tokens) if c.strip()]
        self._check_count(
            len(chunks),
            f"The text gives {len(chunks)} chunk(s) of up to {tokens} tokens; a sample needs at least {{}}. "
            "Paste more text or lower the tokens per chunk.",
            f"The text gives {len(chunks)} chunks of up to {tokens} tokens; the lab shows at most {{}}. "
            "Shorten the text or raise the tokens per chunk.",
        )
        return chunks

    def _check_count(self, count: int, too_few: str, too_many: str) -> None:
        """Refuse a sample of fewer or more chunks than the lab's limits (the messages get the limit)."""
        lo, hi = self.limits.min_chunks, self.limits.max_chunks
        if count < lo:
            raise LabInputError(too_few.format(lo), "text")
        if count > hi:
            raise LabInputError(too_many.format(hi), "text")

    def _clean_chunks(self, chunks: Any) -> list[str]:
        if not isinstance(chunks, list) or not all(isinstance(c, str) for c in chunks):
            raise LabInputError("'chunks' must be a list of strings", "chunks")
        cleaned = [c.strip() for c in chunks if c.strip()]
        if not cleaned:
            raise LabInputError(
                "The chunks are empty: paste at least three paragraphs separated by blank lines.", "text"
            )
        self._check_count(
            len(cleaned),
            f"Got {len(cleaned)} non-empty chunk(s); a sample needs at least {{}}. "
            "Separate paragraphs with a blank line, or let the lab cut the text.",
            f"Got {len(cleaned)} chunks; the lab shows at most {{}}. Remove some.",
        )
        total = sum(len(c) for c in cleaned)
        if total > self.limits.max_text_chars:
            raise LabInputError(
                f"The chunks have {total:,} characters; the lab takes at most {self.limits.max_text_chars:,}.",
                "text",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        return cleaned

    def _check_window(self, chunks: list[str], embedder: Embedder) -> None:
        window = int(embedder.content_window)
        for index, chunk in enumerate(chunks):
            count = embedder.count_tokens(chunk)
            if count > window:
                raise LabInputError(
                    f"Chunk {index} has {count} tokens, more than the {window}-token window of {embedder.name}, "
                    "which would cut it silently. Split it, or let the lab cut the text.",
                    "text",
                )

    def _compute(
        self,
        chunks: list[str],
        embedder: Embedder,
        merger_name: str,
        formula: str,
        version: str,
        chunk_space: str,
    ) -> dict[str, Any]:
        from vbert.finesse.batching import single_merges
        from vbert.finesse.metrics.rss import sample_anatomy, similarity_matrix
        from vbert.mergers import prefix_merges

        token_counts = np.array([embedder.count_tokens(c) for c in chunks], dtype=np.int64)
        native = merger_name == NATIVE and NATIVE not in self.mergers
        if native:  # checked before any embedding, so a refusal is instant
            prefixes = [" ".join(chunks[: i + 1]) for i in range(len(chunks))]
            longest = embedder.count_tokens(prefixes[-1])
            if longest > embedder.content_window:
                raise LabInputError(
                    f"The joined text has {longest} tokens, more than the {embedder.content_window}-token window "
                    f"of {embedder.name}: native mode cannot embed it whole. Use fewer or shorter chunks, or a "
                    "merger.",
                    "merger",
                )
        merger = None if native else self._get("merger", merger_name, self.mergers)
        start = time.perf_counter()
        vectors = np.asarray(embedder.encode(chunks), dtype=np.float32)
        embed_ms = (time.perf_counter() - start) * 1000.0
        if merger is None:
            start = time.perf_counter()
            synths = np.asarray(embedder.encode(prefixes), dtype=np.float32)
            merge_ms = (time.perf_counter() - start) * 1000.0
            chunk_vectors, space = vectors, NATIVE
            merger_info = {"name": NATIVE, "fingerprint": str(embedder.fingerprint)}
        else:
            start = time.perf_counter()
            synths = prefix_merges(merger, vectors, token_counts)
            merge_ms = (time.perf_counter() - start) * 1000.0
            chunk_vectors = vectors if chunk_space == "base" else single_merges(merger, vectors, token_counts)
            space = chunk_space
            merger_info = {"name": str(merger.name), "fingerprint": str(merger.fingerprint)}
        sim = similarity_matrix(chunk_vectors, synths)
        detail = sample_anatomy(sim, formula, version)
        return {
            "chunks": [
                {"index": i, "text": c, "tokens": int(n)}
                for i, (c, n) in enumerate(zip(chunks, token_counts, strict=True))
            ],
            "matrix": np.round(sim, 6).tolist(),
            **detail,
            "formula": formula,
            "score_version": version,
            "chunk_space": space,
            "embedder": {"name": str(embedder.name), "fingerprint": str(embedder.fingerprint)},
            "merger": merger_info,
            "timings_ms": {"embed": round(embed_ms, 3), "merge_prefixes": round(merge_ms, 3)},
        }


def _choice(request: dict[str, Any], key: str, allowed: Sequence[str], default: str) -> str:
    value = request.get(key, default)
    if value not in allowed:
        raise LabInputError(
            f"Unknown {key.replace('_', ' ')} {value!r}; choose one of {', '.join(allowed)}.", key
        )
    return str(value)


def spec_factories(
    embedder_specs: Sequence[str], merger_specs: Sequence[str]
) -> tuple[dict[str, Callable[[], Embedder]], dict[str, Callable[[], Merger]]]:
    """Loader factories for embedder and merger specs as the benchmark config accepts them
    (``default``, ``minilm``, a folder, ``py:module:factory``; mergers also every name of
    :data:`vbert.mergers.MERGERS` and ``package.module:factory``); ``native`` is left to the lab."""
    from vbert.finesse.competitors import load_embedder_spec, load_merger_spec

    embedders = {spec: (lambda s=spec: load_embedder_spec(s)) for spec in embedder_specs}
    mergers = {spec: (lambda s=spec: load_merger_spec(s)) for spec in merger_specs if spec != NATIVE}
    return embedders, mergers
