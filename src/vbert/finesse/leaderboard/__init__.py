"""``finesse leaderboard``: a static, self-contained web site from ``results.json`` files.

The site opens from disk (``file://``) with no network: one ``index.html`` holds the styles,
the scripts (uPlot, vendored under ``finesse/site/``) and the leaderboard data; the Anatomy
Laboratory's similarity matrices, which can be large, sit beside it in ``anatomy/<id>.js``
and are loaded only when a model is chosen.

* Leaderboard: one row per result (model, mode, formula version, chunk space, Finesse
  overall and per length band, median latencies, lengths evaluated, hash status).
* Quality vs latency: Finesse against median latency (log axis), full time or merging only,
  and per-length curves of the chosen models.
* Anatomy Laboratory (needs the raw folders of ``finesse generate``): the Top-Down and
  Bottom-Up matrices of a sample, the memory/noise split of a row, its quartiles and gap.

Every result's content hash (and, with a key, its HMAC signature) is checked with
:func:`vbert.finesse.integrity.check`. A result that does not verify is shown flagged and
never ranked; it is never silently mixed in with the others.

Modules: :mod:`.entries` (one results file → one leaderboard entry), :mod:`.anatomy` (which
samples the Anatomy Laboratory keeps, and their data), :mod:`.codec` (matrices as compact
base64), :mod:`.page` (HTML templates and assets), :mod:`.site` (the whole site).
"""

from __future__ import annotations

from vbert.finesse.leaderboard.entries import (
    HASH_INVALID,
    HASH_SIGNED,
    HASH_VALID,
    HashCheck,
    LeaderboardError,
    hash_status,
    load_results,
    summarise,
)
from vbert.finesse.leaderboard.site import SiteReport, build_site

__all__ = [
    "HASH_INVALID",
    "HASH_SIGNED",
    "HASH_VALID",
    "HashCheck",
    "LeaderboardError",
    "SiteReport",
    "build_site",
    "hash_status",
    "load_results",
    "summarise",
]
