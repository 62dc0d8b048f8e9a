"""The one record type every corpus yields."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Article:
    """One document of a corpus.

    Attributes:
        id: stable across runs and machines (derived from the source and path, never a counter).
        lang: BCP-47-ish language code (``en``, ``de``, ``pt-BR``, ``zh-CN``, ``ko`` ...).
        title: human-readable title; may be empty.
        text: plain text, paragraphs separated by newlines.
        source: where it came from (``debian-handbook``, ``files``, ``wikipedia`` ...).
        license: SPDX-like license expression of the text.
        group: id shared by parallel translations of the same page (``""`` when none);
            splits keep a group together so translations cannot leak across splits.
    """

    id: str
    lang: str
    title: str
    text: str
    source: str
    license: str
    group: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict) -> Article:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__ if k in row})

    @property
    def text_sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()
