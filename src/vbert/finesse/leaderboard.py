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
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np

from vbert.files import atomic_write_text
from vbert.finesse import integrity
from vbert.finesse.compare import mismatches
from vbert.finesse.raw import RawOutputError, RawRun, find_runs
from vbert.finesse.score import RESULTS_FORMAT
from vbert.finesse.scoring import FORMULAS, sample_score, similarity_matrix
from vbert.finesse.storage import read_json

BANDS: tuple[tuple[int, int], ...] = ((4, 8), (9, 16), (17, 32), (33, 64))
HASH_VALID, HASH_SIGNED, HASH_INVALID = "valid", "signed", "invalid"
DEFAULT_ANATOMY_SAMPLES = 5
MATRIX_SCALE = 32767  # matrices travel as little-endian int16 of round(cos × scale): 3e-5 resolution
SITE_ASSETS = ("uPlot.iife.min.js", "common.js", "anatomy.js")
UPLOT_VERSION = "1.6.32"
_ANATOMY_FILE = re.compile(r"^m\d+\.js$")


class LeaderboardError(ValueError):
    """A results file or raw folder cannot be put on the leaderboard."""


@dataclass(frozen=True)
class HashCheck:
    """``status`` is ``valid`` (content hash matches), ``signed`` (hash and HMAC signature match
    the key) or ``invalid`` (changed after scoring); ``detail`` explains."""

    status: str
    detail: tuple[str, ...] = ()


@dataclass
class SiteReport:
    """What :func:`build_site` wrote."""

    index: Path
    anatomy_files: list[Path]
    page_bytes: int
    anatomy_bytes: int
    results: int
    flagged: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return self.page_bytes + self.anatomy_bytes


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
    return results


def _number(value: Any, where: str) -> float | None:
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
            _number(s, f"{where} lengths.{n}.scores")
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
    competitor = results["competitor"]
    summary = results["summary"]
    lengths = results["lengths"]
    not_evaluated = {str(k): str(v) for k, v in results.get("lengths_not_evaluated", {}).items()}
    where = source
    per_length = [
        [
            int(n),
            _number(entry.get("mean_score"), f"{where} lengths.{n}.mean_score"),
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
        "overall": _number(summary.get("mean_score"), f"{where} summary.mean_score"),
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
    }
    if entry["metric"] == "rss":
        entry.update(
            td=_number(summary.get("mean_td"), f"{where} summary.mean_td"),
            bu=_number(summary.get("mean_bu"), f"{where} summary.mean_bu"),
            latency_full_ms=_number(
                summary.get("median_latency_full_ms"), f"{where} summary.median_latency_full_ms"
            ),
            latency_merge_ms=_number(
                summary.get("median_latency_merge_ms"), f"{where} summary.median_latency_merge_ms"
            ),
            bands=_bands(lengths, [int(n) for n in not_evaluated], where),
        )
    else:
        entry["pbi"] = _number(summary.get("pbi"), f"{where} summary.pbi")
    return entry


def _quantile(values: list[float], q: float) -> float:
    """numpy's default (linear) quantile, including its interpolation rule, on a small list.

    ~100× faster than ``np.quantile`` on the short rows of a similarity matrix, which matters for
    leaderboard runs with thousands of rows.
    """
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    lo = int(h)
    hi = min(lo + 1, len(ordered) - 1)
    a, b, t = ordered[lo], ordered[hi], h - lo
    return b - (b - a) * (1.0 - t) if t >= 0.5 else a + (b - a) * t


def sample_anatomy(sim: np.ndarray, formula: str, score_version: str) -> dict[str, Any]:
    """Scores, per-row quartiles and gaps of one sample's similarity matrix T[i, j] = cos(s_i, c_j).

    ``td_rows`` holds ``[i, Q(memory), Q(noise), gap]`` for the scored Top-Down rows i = 1..L−2
    (memory j ≤ i) and ``bu_rows`` the same for the Bottom-Up anchors a = 1..L−1 (memory: the
    syntheses k ≥ a); Q is Q0.25/Q0.75 for ``q1q3`` and the median for ``q2q2``, exactly as
    :mod:`vbert.finesse.scoring` defines them (the tests check the two agree).
    """
    if formula not in FORMULAS:
        raise ValueError(f"unknown formula {formula!r}; use one of {FORMULAS}")
    q_memory, q_noise = (0.25, 0.75) if formula == "q1q3" else (0.5, 0.5)
    rows = np.asarray(sim, dtype=np.float64).tolist()
    cols = np.asarray(sim, dtype=np.float64).T.tolist()
    n = len(rows)
    td_rows, bu_rows = [], []
    for i in range(1, n - 1):
        memory, noise = _quantile(rows[i][: i + 1], q_memory), _quantile(rows[i][i + 1 :], q_noise)
        td_rows.append([i, memory, noise, memory - noise])
    for a in range(1, n):
        memory, noise = _quantile(cols[a][a:], q_memory), _quantile(cols[a][:a], q_noise)
        bu_rows.append([a, memory, noise, memory - noise])
    td = float(np.mean([r[3] for r in td_rows])) if td_rows else 0.0
    bu = float(np.mean([r[3] for r in bu_rows])) if bu_rows else 0.0
    return {
        "td": td,
        "bu": bu,
        "score": sample_score(td, bu, score_version),
        "td_rows": td_rows,
        "bu_rows": bu_rows,
    }


def encode_matrix(sim: np.ndarray) -> str:
    """Base64 of the little-endian int16 of round(sim × MATRIX_SCALE), row-major."""
    quantised = np.clip(
        np.rint(np.asarray(sim, dtype=np.float64) * MATRIX_SCALE), -MATRIX_SCALE, MATRIX_SCALE
    )
    return base64.b64encode(quantised.astype("<i2").tobytes()).decode("ascii")


def decode_matrix(text: str, length: int) -> np.ndarray:
    """Inverse of :func:`encode_matrix` (what the page's JavaScript does)."""
    values = np.frombuffer(base64.b64decode(text), dtype="<i2").astype(np.float64) / MATRIX_SCALE
    return values.reshape(length, length)


def _pick_samples(scores: Sequence[float], limit: int) -> list[int]:
    best, worst = int(np.argmax(scores)), int(np.argmin(scores))
    if limit <= 0 or limit >= len(scores):
        return list(range(len(scores)))
    chosen = {best, worst}
    for index in range(len(scores)):
        if len(chosen) >= max(limit, 2):
            break
        chosen.add(index)
    return sorted(chosen)


def _rounded(detail: dict[str, Any], decimals: int = 6) -> dict[str, Any]:
    # The page shows 3–4 decimals; full float precision would double the anatomy files.
    def r(value: float) -> float:
        return round(float(value), decimals) + 0.0

    return {
        "td": r(detail["td"]),
        "bu": r(detail["bu"]),
        "score": r(detail["score"]),
        "td_rows": [[row, r(q1), r(q3), r(gap)] for row, q1, q3, gap in detail["td_rows"]],
        "bu_rows": [[row, r(q1), r(q3), r(gap)] for row, q1, q3, gap in detail["bu_rows"]],
    }


def anatomy_payload(run: RawRun, formula: str, score_version: str, max_samples: int) -> dict[str, Any]:
    """Matrices of up to ``max_samples`` samples per length (0 = all; the best and worst always)."""
    if run.metric != "rss":
        raise LeaderboardError(
            f"{run.folder} holds {run.metric} outputs; the Anatomy Laboratory shows rss matrices"
        )
    lengths: dict[str, Any] = {}
    for length in run.lengths:
        arrays = run.arrays(length)
        sims = [similarity_matrix(c, s) for c, s in zip(arrays["chunks"], arrays["synths"], strict=True)]
        details = [sample_anatomy(sim, formula, score_version) for sim in sims]
        scores = [d["score"] for d in details]
        keep = _pick_samples(scores, max_samples)
        lengths[str(length)] = {
            "samples_total": len(sims),
            "best": int(np.argmax(scores)),
            "worst": int(np.argmin(scores)),
            "samples": [{"index": i, "matrix": encode_matrix(sims[i]), **_rounded(details[i])} for i in keep],
        }
    return {"formula": formula, "score_version": score_version, "scale": MATRIX_SCALE, "lengths": lengths}


def match_raw(results: dict[str, Any], runs: Sequence[RawRun]) -> RawRun | None:
    """The raw run whose per-length file hashes are exactly the ones ``results`` were scored from."""
    wanted = {str(k): str(v) for k, v in (results.get("raw_files") or {}).items()}
    if not wanted:
        return None
    for run in runs:
        have = {str(k): str(v.get("sha256")) for k, v in run.manifest.get("lengths", {}).items()}
        if have == wanted:
            return run
    return None


def _discover_runs(results_files: Sequence[Path], raw_dirs: Sequence[Path]) -> list[RawRun]:
    runs: list[RawRun] = []
    for folder in raw_dirs:
        try:
            runs.extend(find_runs(folder))
        except RawOutputError as err:
            raise LeaderboardError(f"--raw {folder}: {err}") from err
    # `finesse run` writes OUT/results/<name>/results.json next to OUT/raw/<name>/.
    seen = {run.folder.resolve() for run in runs}
    for file in results_files:
        beside = file.resolve().parent.parent.parent / "raw"
        if beside.is_dir():
            try:
                found = find_runs(beside)
            except RawOutputError:
                continue
            runs.extend(run for run in found if run.folder.resolve() not in seen)
            seen.update(run.folder.resolve() for run in found)
    return runs


def _labels(names: Sequence[str]) -> list[str]:
    labels: list[str] = []
    for base in names:
        label, n = base, 2
        while label in labels:
            label, n = f"{base} ({n})", n + 1
        labels.append(label)
    return labels


def _asset(name: str) -> str:
    return resources.files("vbert.finesse").joinpath("site", name).read_text(encoding="utf-8")


def _write_public(path: Path, text: str) -> None:
    # The temp file behind an atomic write is private (0600); a web page must be readable by a web server.
    atomic_write_text(path, text)
    os.chmod(path, 0o644)


def _vbert_version() -> str:
    try:
        return metadata.version("vbert")
    except metadata.PackageNotFoundError:
        return "unknown"


def _json_for_html(data: Any) -> str:
    # "<" escaped so no value (a model name, say) can close the <script> element it sits in.
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).replace(
        "<", "\\u003c"
    )


def render_page(template: str, title: str, data: Any, scripts: Sequence[str]) -> str:
    """Fill a page template from ``finesse/site/`` with its styles, scripts and JSON data inlined."""
    from html import escape

    code = []
    for name in scripts:
        text = _asset(name)
        if "</script" in text.lower():
            raise LeaderboardError(f"site asset {name} contains '</script' and cannot be inlined")
        code.append(f"/* ---- {name} ---- */\n{text}")
    page = _asset(template)
    replacements = {
        "@@TITLE@@": escape(title),
        "@@STYLE@@": _asset("uPlot.min.css") + "\n" + _asset("style.css"),
        "@@UPLOT_VERSION@@": UPLOT_VERSION,
        "@@DATA@@": _json_for_html(data),
        "@@SCRIPTS@@": "\n".join(code),
    }
    for marker, value in replacements.items():
        page = page.replace(marker, value)
    return page


def build_site(
    results_files: Sequence[str | Path],
    out: str | Path,
    raw_dirs: Sequence[str | Path] = (),
    key: bytes | None = None,
    anatomy_samples: int = DEFAULT_ANATOMY_SAMPLES,
    title: str = "Finesse leaderboard",
) -> SiteReport:
    """Write ``out/index.html`` (+ ``out/anatomy/*.js``) for the given results files.

    Args:
        results_files: ``results.json`` files written by ``finesse score``.
        out: output folder (created; files this function wrote before are replaced).
        raw_dirs: raw folders of ``finesse generate`` for the Anatomy Laboratory; a results file
            is paired with the raw run whose file hashes it records. ``finesse run`` layouts
            (``OUT/results/<name>/results.json`` beside ``OUT/raw/``) are found without this.
        key: HMAC key to check signatures with (results signed with it show as ``signed``).
        anatomy_samples: samples per length kept for the Anatomy Laboratory (the best and the
            worst always among them); 0 keeps every sample.
        title: page title.
    """
    if not results_files:
        raise LeaderboardError("give at least one results.json (written by `finesse score`)")
    if anatomy_samples < 0:
        raise LeaderboardError(f"anatomy_samples must be 0 (all) or positive, got {anatomy_samples}")
    files = [Path(f) for f in results_files]
    loaded = [load_results(f) for f in files]
    checks = [hash_status(r, key) for r in loaded]
    # Labels are unique within a metric's table (an rss and an srs run of one model share its name).
    names = [
        f"{r['metric']}\0{r['competitor'].get('name', f.stem)}" for r, f in zip(loaded, files, strict=True)
    ]
    labels = [label.split("\0", 1)[1] for label in _labels(names)]
    entries = [
        summarise(r, f"m{i}", label, check, str(f))
        for i, (r, label, check, f) in enumerate(zip(loaded, labels, checks, files, strict=True))
    ]
    rss = [e for e in entries if e["metric"] == "rss"]
    srs = sorted((e for e in entries if e["metric"] != "rss"), key=lambda e: -(e["overall"] or 0.0))
    ranked = sorted(
        (e for e in rss if e["hash"]["status"] != HASH_INVALID and e["overall"] is not None),
        key=lambda e: -e["overall"],
    )
    for rank, entry in enumerate(ranked, start=1):
        entry["rank"] = rank

    warnings: list[str] = []
    flagged = [e["label"] for e in entries if e["hash"]["status"] == HASH_INVALID]
    if flagged:
        warnings.append(
            f"{len(flagged)} result(s) do not verify (changed after scoring, or signed with another key): "
            f"{', '.join(flagged)}. They are shown flagged ⚠ and are not ranked."
        )
    rss_results = [r for r in loaded if r["metric"] == "rss"]
    if len(rss_results) > 1:
        problems = mismatches(rss_results)
        if problems:
            warnings.append("These results are not directly comparable: " + "; ".join(problems) + ".")

    out_dir = Path(out)
    anatomy_dir = out_dir / "anatomy"
    runs = _discover_runs(files, [Path(d) for d in raw_dirs])
    written: list[Path] = []
    for entry, results in zip(entries, loaded, strict=True):
        if entry["metric"] != "rss" or not runs:
            continue
        run = match_raw(results, runs)
        if run is None:
            warnings.append(
                f"no raw folder matches {entry['label']} ({entry['source']}): its Anatomy Laboratory is "
                "unavailable; pass the `finesse generate` output it was scored from with --raw"
            )
            continue
        try:
            payload = anatomy_payload(run, entry["formula"], entry["score_version"], anatomy_samples)
        except RawOutputError as err:
            warnings.append(
                f"raw files of {entry['label']} cannot be read ({err}); no Anatomy Laboratory for it"
            )
            continue
        payload["label"] = entry["label"]
        path = anatomy_dir / f"{entry['id']}.js"
        _write_public(
            path,
            "window.FinesseAnatomyData = window.FinesseAnatomyData || {};\n"
            f"window.FinesseAnatomyData[{json.dumps(entry['id'])}] = "
            f"{json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(',', ':'))};\n",
        )
        entry["anatomy"] = f"anatomy/{entry['id']}.js"
        written.append(path)
    if anatomy_dir.is_dir():
        for stale in anatomy_dir.iterdir():
            if _ANATOMY_FILE.match(stale.name) and stale not in written:
                stale.unlink()

    data = {
        "title": title,
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "vbert_version": _vbert_version(),
        "bands": [{"key": f"{lo}–{hi}", "lo": lo, "hi": hi} for lo, hi in BANDS],
        "models": rss,
        "srs": srs,
        "warnings": warnings,
    }
    page = render_page("leaderboard.html", title, data, (*SITE_ASSETS, "leaderboard.js"))
    index = out_dir / "index.html"
    _write_public(index, page)
    _write_public(
        out_dir / "THIRD_PARTY_LICENSES.txt", f"uPlot {UPLOT_VERSION}\n\n" + _asset("uPlot.LICENSE")
    )
    return SiteReport(
        index=index,
        anatomy_files=written,
        page_bytes=index.stat().st_size,
        anatomy_bytes=sum(p.stat().st_size for p in written),
        results=len(entries),
        flagged=flagged,
        warnings=warnings,
    )
