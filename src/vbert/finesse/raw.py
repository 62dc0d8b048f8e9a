"""The raw-output folder of one competitor: a JSON manifest plus one ``.npz`` per length.

Layout written by ``finesse generate --output DIR``::

    DIR/_chunks/manifest.json, length_004.npz, ...   shared base-embedder chunk vectors
    DIR/<competitor>/manifest.json                   config, probes, fingerprints, machine, files
    DIR/<competitor>/length_004.npz                  rss: chunks, synths (S, L, d), latencies (S,)
                                                      srs: probe, pos_cos, neg_cos, arrangements

Every length file is listed in the manifest with its SHA-256 and is read only after its
path is checked to stay inside the competitor folder, the hash matches and the archive is
checked to hold no pickle payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vbert.errors import DataError, IntegrityError
from vbert.files import read_json, sha256_file
from vbert.finesse.storage import load_npz

RAW_FORMAT = "vbert-finesse-raw/1"
MANIFEST = "manifest.json"
CHUNK_STORE = "_chunks"


class RawOutputError(DataError):
    """A raw folder is missing, incomplete, damaged, or belongs to another run."""


class RawIntegrityError(IntegrityError, RawOutputError):
    """A raw file does not match its manifest's hash, or the manifest points outside its folder."""


def length_file(length: int) -> str:
    return f"length_{length:03d}.npz"


@dataclass
class RawRun:
    """Read access to one competitor's raw folder."""

    folder: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, folder: str | Path) -> RawRun:
        path = Path(folder)
        manifest_file = path / MANIFEST
        if not manifest_file.is_file():
            raise RawOutputError(
                f"{path} has no {MANIFEST}; point --raw at a competitor folder written by `finesse generate`"
            )
        manifest = read_json(manifest_file, "raw manifest")
        if not isinstance(manifest, dict) or manifest.get("format") != RAW_FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
            raise RawOutputError(f"{manifest_file} has format {found!r}, expected {RAW_FORMAT!r}")
        problems = _manifest_problems(manifest)
        if problems:
            raise RawOutputError(
                f"{manifest_file} is damaged or edited: {', '.join(problems)}; re-run `finesse generate`"
            )
        return cls(path, manifest)

    @property
    def name(self) -> str:
        return str(self.manifest["competitor"]["name"])

    @property
    def metric(self) -> str:
        return str(self.manifest["metric"])

    @property
    def lengths(self) -> list[int]:
        return sorted(int(k) for k in self.manifest["lengths"])

    @property
    def not_evaluated(self) -> dict[int, str]:
        return {int(k): str(v) for k, v in self.manifest.get("not_evaluated", {}).items()}

    def require_complete(self) -> None:
        if not self.manifest.get("complete"):
            raise RawOutputError(
                f"{self.folder} is incomplete (generation was interrupted); re-run the same `finesse generate` "
                "command to finish it"
            )

    def arrays(self, length: int) -> dict[str, np.ndarray]:
        """The checked arrays of one length."""
        entry = self.manifest["lengths"].get(str(length))
        if entry is None:
            raise RawOutputError(f"{self.folder} has no length {length}; it has {self.lengths}")
        file = self.length_path(entry, length)
        if not file.is_file():
            raise RawOutputError(f"{file} is missing; re-run `finesse generate` to rebuild it")
        digest = sha256_file(file)
        if not isinstance(entry.get("sha256"), str) or digest != entry["sha256"]:
            raise RawIntegrityError(
                f"{file} does not match the SHA-256 in its manifest (damaged or edited); re-run `finesse generate`"
            )
        return load_npz(file)

    def length_path(self, entry: Any, length: int) -> Path:
        """The file a manifest entry names, which must lie directly inside this run's folder."""
        name = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise RawOutputError(f"{self.folder / MANIFEST} has no file name for length {length}")
        folder = self.folder.resolve()
        file = (folder / name).resolve()
        if file.parent != folder:
            raise RawIntegrityError(
                f"{self.folder / MANIFEST} points length {length} at {name!r}, outside the run folder "
                f"{self.folder}; a raw manifest may only name files inside its own folder"
            )
        return file


def _is_length_map(value: Any, entry_ok: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(key, str) and key.isdigit() and entry_ok(entry) for key, entry in value.items()
    )


def _manifest_problems(manifest: dict[str, Any]) -> list[str]:
    """What a competitor manifest lacks of the structure scoring reads (empty when it is sound)."""
    competitor, config = manifest.get("competitor"), manifest.get("config")
    scoring = config.get("scoring") if isinstance(config, dict) else None
    checks = {
        "competitor.name": isinstance(competitor, dict) and isinstance(competitor.get("name"), str),
        "metric": isinstance(manifest.get("metric"), str),
        "lengths": _is_length_map(
            manifest.get("lengths"),
            lambda entry: isinstance(entry, dict) and isinstance(entry.get("sha256"), str),
        ),
        "not_evaluated": _is_length_map(manifest.get("not_evaluated", {}), lambda reason: True),
        "config.scoring": isinstance(scoring, dict)
        and all(isinstance(scoring.get(key), str) for key in ("formula", "score_version")),
        "chunk_space": isinstance(manifest.get("chunk_space"), str),
        "probes": isinstance(manifest.get("probes"), dict),
        "environments": isinstance(manifest.get("environments", []), list),
        "truncated": isinstance(manifest.get("truncated", {}), dict),
    }
    return [f"bad or missing {key!r}" for key, sound in checks.items() if not sound]


def find_runs(folder: str | Path) -> list[RawRun]:
    """The competitor run in ``folder`` itself, or every competitor run directly inside it."""
    path = Path(folder)
    if (path / MANIFEST).is_file() and path.name != CHUNK_STORE:
        return [RawRun.open(path)]
    if not path.is_dir():
        raise RawOutputError(
            f"raw folder {path} does not exist; run `finesse generate --output {path}` first"
        )
    runs = [
        RawRun.open(child)
        for child in sorted(path.iterdir())
        if child.is_dir() and child.name != CHUNK_STORE and (child / MANIFEST).is_file()
    ]
    if not runs:
        raise RawOutputError(
            f"{path} holds no Finesse raw outputs (no */{MANIFEST}); run `finesse generate` first"
        )
    return runs
