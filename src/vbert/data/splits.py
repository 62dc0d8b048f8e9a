"""Deterministic train/validation/test splits by document.

Each article's split is a function of ``(seed, its group)`` only: the sha256 of the two is
mapped to a number in [0, 1) and compared with the cumulative fractions. So

* the same seed always gives the same split, on any machine and in any order;
* adding or removing documents never moves the others;
* parallel translations (same ``Article.group``) always land in the same split, so a page
  cannot be trained on in one language and tested on in another. Articles without a group
  are split on their own id.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence

from vbert.data.article import Article

SPLIT_NAMES = ("train", "validation", "test")
DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}
DEFAULT_SEED = 0


def split_key(article: Article) -> str:
    """What decides the split: the translation group, or the id for an article without one."""
    return f"group:{article.group}" if article.group else f"id:{article.id}"


def normalize_fractions(fractions: Mapping[str, float] | Sequence[float]) -> dict[str, float]:
    """Check fractions (a mapping, or three numbers for train/validation/test) and return a mapping."""
    if not isinstance(fractions, Mapping):
        values = list(fractions)
        if len(values) != len(SPLIT_NAMES):
            raise ValueError(f"give {len(SPLIT_NAMES)} fractions (train, validation, test), got {values}")
        fractions = dict(zip(SPLIT_NAMES, values, strict=True))
    result = {str(name): float(value) for name, value in fractions.items()}
    if not result or any(not math.isfinite(v) or v < 0 for v in result.values()):
        raise ValueError(f"split fractions must be finite and non-negative, got {result}")
    if not math.isclose(sum(result.values()), 1.0, abs_tol=1e-9):
        raise ValueError(f"split fractions must sum to 1, got {result} (sum {sum(result.values())})")
    return result


def _unit_interval(seed: int | str, key: str) -> float:
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(
    article: Article,
    seed: int | str = DEFAULT_SEED,
    fractions: Mapping[str, float] | Sequence[float] = DEFAULT_FRACTIONS,
) -> str:
    """The split (``"train"``, ``"validation"`` or ``"test"`` by default) ``article`` belongs to."""
    shares = normalize_fractions(fractions)
    point = _unit_interval(seed, split_key(article))
    cumulative = 0.0
    last = next(name for name in reversed(shares) if shares[name] > 0)
    for name, share in shares.items():
        cumulative += share
        if point < cumulative and share > 0:
            return name
    return last  # point fell past the last boundary only through rounding


def filter_split(
    articles: Iterable[Article],
    split: str,
    seed: int | str = DEFAULT_SEED,
    fractions: Mapping[str, float] | Sequence[float] = DEFAULT_FRACTIONS,
) -> Iterator[Article]:
    """Yield the articles of one split, in their original order."""
    shares = normalize_fractions(fractions)
    if split not in shares:
        raise ValueError(f"unknown split {split!r}; the fractions define {', '.join(shares)}")
    return (article for article in articles if split_of(article, seed, shares) == split)
