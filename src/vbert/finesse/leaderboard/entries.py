"""One ``results.json`` → one leaderboard entry: load it, check its hash, summarise what the page shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vbert.errors import DataError, VbertError
from vbert.files import read_json
from vbert.finesse import integrity
from vbert.finesse.metrics import get_metric
from vbert.finesse.scoring import RESULTS_FORMAT

BANDS: tuple[tuple[int, int], ...] = ((4, 8), (9, 16), (17, 32), (33, 64))
HASH_VALID, HASH_SIGNED, HASH_INVALID = "valid", "signed", "invalid"


class LeaderboardError(DataError):
    """A results file or raw folder cannot be put on the leaderboard."""


@dataclass(frozen=True)
class HashCheck:
    """``status`` is ``valid`` (content hash matches), ``signed`` (hash and HMAC signature match
    the key) or ``invalid`` (changed after scoring); ``detail`` explains."""

    status: str
    detail: tuple[str, ...] = ()


def hash_status(results: dict[str, Any], key: bytes | None = None) -> HashCheck:
    """Check a results object's content hash, and its signature when ``key`` is given."""
    problems = integrity.check(results)
    if problems:
        return HashCheck(HASH_INVALID, tuple(problems))
    signed = isinstance(results["integrity"].get("signature"), dict)
    if key is None:
        note = ("signature present but not checked: pass --key-file to check it",) if signed else ()
        return HashCheck(HASH_VALID, note)
    if not signed:
        return HashCheck(HASH_VALID, ("content hash matches; the results are not signed",))
    problems = integrity.check(results, key)
    if problems:
        return HashCheck(HASH_INVALID, tuple(problems))
    return HashCheck(HASH_SIGNED, ("content hash and HMAC-SHA256 signature match the key",))


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a ``results.json`` written by ``finesse score``, refusing other files with a clear message."""
    file = Path(path)
    try:
        results = read_json(file, "results file")
    except (FileNotFoundError, ValueError) as err:
        raise LeaderboardError(str(err)) from err
    if not isinstance(results, dict) or results.get("format") != RESULTS_FORMAT:
        found = results.get("format") if isinstance(results, dict) else type(results).__name__
        raise LeaderboardError(
            f"{file} is not a Finesse results file (format {found!r}, expected {RESULTS_FORMAT!r}); "
            "give the results.json files written by `finesse score`"
        )
    for key in ("metric", "competitor", "lengths", "summary", "lengths_evaluated"):
        if key not in results:
            raise LeaderboardError(f"{file} has no {key!r} field; re-run `finesse score` to rewrite it")
    try:
        get_metric(str(results["metric"]))
    except VbertError as err:
        raise LeaderboardError(f"{file}: {err}") from err
    return results


def number(value: Any, where: str) -> float | None:
    """``value`` as a float (None stays None); anything else is a :class:`LeaderboardError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LeaderboardError(f"{where} should be a number, found {value!r}")
    return float(value)


def _machine(results: dict[str, Any]) -> str:
    environment = results.get("environment") or {}
    machine = environment.get("machine") or {}
    parts = [str(machine.get("cpu") or "unknown CPU")]
    if machine.get("gpu"):
        parts.append(f"GPU {machine['gpu']}")
    if machine.get("torch"):
        parts.append(f"torch {machine['torch']}")
    return " · ".join(parts)


def _bands(lengths: dict[str, Any], not_evaluated: Sequence[int], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lo, hi in BANDS:
        evaluated = sorted(int(k) for k in lengths if lo <= int(k) <= hi)
        missing = sorted(n for n in not_evaluated if lo <= n <= hi)
        if not evaluated and not missing:
            out[f"{lo}–{hi}"] = None
            continue
        scores = [
            number(s, f"{where} lengths.{n}.scores")
            for n in evaluated
            for s in lengths[str(n)].get("scores", [])
        ]
        out[f"{lo}–{hi}"] = {
            "score": float(np.mean(scores)) if scores else None,
            "evaluated": evaluated,
            "missing": missing,
        }
    return out


def summarise(
    results: dict[str, Any], model_id: str, label: str, check: HashCheck, source: str
) -> dict[str, Any]:
    """The leaderboard entry of one results object (what the page shows)."""
    metric = get_metric(str(results["metric"]))
    competitor = results["competitor"]
    summary = results["summary"]
    lengths = results["lengths"]
    not_evaluated = {str(k): str(v) for k, v in results.get("lengths_not_evaluated", {}).items()}
    per_length = [
        [
            int(n),
            number(entry.get("mean_score"), f"{source} lengths.{n}.mean_score"),
            int(entry.get("samples", 0)),
        ]
        for n, entry in sorted(lengths.items(), key=lambda item: int(item[0]))
    ]
    entry: dict[str, Any] = {
        "id": model_id,
        "label": label,
        "name": str(competitor.get("name", label)),
        "kind": str(competitor.get("kind", "")),
        "mode": str(competitor.get("mode", "")),
        "metric": str(results["metric"]),
        "formula": str(results.get("formula")),
        "score_version": str(results.get("score_version")),
        "chunk_space": str(results.get("chunk_space")),
        "overall": number(summary.get("mean_score"), f"{source} summary.mean_score"),
        "lengths_evaluated": sorted(int(n) for n in results["lengths_evaluated"]),
        "lengths_not_evaluated": not_evaluated,
        "per_length": per_length,
        "hash": {"status": check.status, "detail": list(check.detail)},
        "source": source,
        "probes": str((results.get("probes") or {}).get("content_hash", "")),
        "machine": _machine(results),
        "embedder": str((competitor.get("embedder") or {}).get("name", "")),
        "merger": str((competitor.get("merger") or {}).get("name", "")),
        "rank": None,
        "anatomy": None,
        **metric.leaderboard_fields(results, number, source),
    }
    if metric.ranked:  # the main table shows scores per length band
        entry["bands"] = _bands(lengths, [int(n) for n in not_evaluated], source)
    return entry
