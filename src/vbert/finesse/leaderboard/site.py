"""``build_site``: the leaderboard page and its Anatomy Laboratory files for a set of results."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vbert.files import atomic_write_text
from vbert.finesse.compare import mismatches, unique_labels
from vbert.finesse.environment import vbert_version
from vbert.finesse.leaderboard.anatomy import DEFAULT_ANATOMY_SAMPLES, anatomy_payload, match_raw
from vbert.finesse.leaderboard.entries import (
    BANDS,
    HASH_INVALID,
    LeaderboardError,
    hash_status,
    load_results,
    summarise,
)
from vbert.finesse.leaderboard.page import SITE_ASSETS, UPLOT_VERSION, asset, render_page
from vbert.finesse.metrics import get_metric
from vbert.finesse.raw import RawOutputError, RawRun, find_runs
from vbert.finesse.storage import reading_results

_ANATOMY_FILE = re.compile(r"^m\d+\.js$")
#: The static site runs only its own inlined scripts and styles (and its anatomy files), and loads nothing else.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self' file: 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
)


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


def _warnings(entries: list[dict[str, Any]], loaded: list[dict[str, Any]]) -> list[str]:
    warnings: list[str] = []
    flagged = [e["label"] for e in entries if e["hash"]["status"] == HASH_INVALID]
    if flagged:
        warnings.append(
            f"{len(flagged)} result(s) do not verify (changed after scoring, or signed with another key): "
            f"{', '.join(flagged)}. They are shown flagged ⚠ and are not ranked."
        )
    for metric in dict.fromkeys(r["metric"] for r in loaded):
        same_metric = [r for r in loaded if r["metric"] == metric]
        problems = mismatches(same_metric) if len(same_metric) > 1 else []
        if problems:
            warnings.append("These results are not directly comparable: " + "; ".join(problems) + ".")
    return warnings


def _write_anatomy(entry: dict[str, Any], run: RawRun, anatomy_dir: Path, samples: int) -> Path:
    payload = anatomy_payload(run, entry["formula"], entry["score_version"], samples)
    payload["label"] = entry["label"]
    path = anatomy_dir / f"{entry['id']}.js"
    atomic_write_text(
        path,
        "window.FinesseAnatomyData = window.FinesseAnatomyData || {};\n"
        f"window.FinesseAnatomyData[{json.dumps(entry['id'])}] = "
        f"{json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(',', ':'))};\n",
    )
    entry["anatomy"] = f"anatomy/{entry['id']}.js"
    return path


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
    with reading_results(", ".join(map(str, files))):
        loaded = [load_results(f) for f in files]
        checks = [hash_status(r, key) for r in loaded]
        # Labels are unique within a metric's table (an rss and an srs run of one model share its name).
        names = [
            f"{r['metric']}\0{r['competitor'].get('name', f.stem)}"
            for r, f in zip(loaded, files, strict=True)
        ]
        labels = [label.split("\0", 1)[1] for label in unique_labels(names)]
        entries = [
            summarise(r, f"m{i}", label, check, str(f))
            for i, (r, label, check, f) in enumerate(zip(loaded, labels, checks, files, strict=True))
        ]
        metrics = [get_metric(e["metric"]) for e in entries]
        main = [e for e, m in zip(entries, metrics, strict=True) if m.ranked]
        others = sorted(
            (e for e, m in zip(entries, metrics, strict=True) if not m.ranked),
            key=lambda e: -(e["overall"] or 0.0),
        )
        ranked = sorted(
            (e for e in main if e["hash"]["status"] != HASH_INVALID and e["overall"] is not None),
            key=lambda e: -e["overall"],
        )
        for rank, entry in enumerate(ranked, start=1):
            entry["rank"] = rank
        warnings = _warnings(entries, loaded)

    out_dir = Path(out)
    anatomy_dir = out_dir / "anatomy"
    runs = _discover_runs(files, [Path(d) for d in raw_dirs])
    written: list[Path] = []
    for entry, results, metric in zip(entries, loaded, metrics, strict=True):
        if not metric.has_matrices or not runs:
            continue
        run = match_raw(results, runs)
        if run is None:
            warnings.append(
                f"no raw folder matches {entry['label']} ({entry['source']}): its Anatomy Laboratory is "
                "unavailable; pass the `finesse generate` output it was scored from with --raw"
            )
            continue
        try:
            written.append(_write_anatomy(entry, run, anatomy_dir, anatomy_samples))
        except RawOutputError as err:
            warnings.append(
                f"raw files of {entry['label']} cannot be read ({err}); no Anatomy Laboratory for it"
            )
    if anatomy_dir.is_dir():
        for stale in anatomy_dir.iterdir():
            if _ANATOMY_FILE.match(stale.name) and stale not in written:
                stale.unlink()

    data = {
        "title": title,
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "vbert_version": vbert_version(),
        "bands": [{"key": f"{lo}–{hi}", "lo": lo, "hi": hi} for lo, hi in BANDS],
        "models": main,  # the ranked table, with the Anatomy Laboratory
        "srs": others,  # results of unranked metrics (SRS), listed below it
        "warnings": warnings,
    }
    page = render_page("leaderboard.html", title, data, (*SITE_ASSETS, "leaderboard.js"), PAGE_POLICY)
    index = out_dir / "index.html"
    atomic_write_text(index, page)
    atomic_write_text(
        out_dir / "THIRD_PARTY_LICENSES.txt", f"uPlot {UPLOT_VERSION}\n\n" + asset("uPlot.LICENSE")
    )
    return SiteReport(
        index=index,
        anatomy_files=written,
        page_bytes=index.stat().st_size,
        anatomy_bytes=sum(p.stat().st_size for p in written),
        results=len(entries),
        flagged=[e["label"] for e in entries if e["hash"]["status"] == HASH_INVALID],
        warnings=warnings,
    )
