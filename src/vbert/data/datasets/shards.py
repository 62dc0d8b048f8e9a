"""Deterministic, atomic, checksummed Parquet shards with a manifest, and resume.

A dataset folder looks like::

    out/
      manifest.json          # written last, by rank 0: parameters, corpus hash, sha256 per file
      README.md              # dataset card with `configs:` so `datasets.load_dataset(out)` works
      data/train-00000.parquet, data/test-00000.parquet, ...
      tokens/tokens-00000.parquet          # atomic (512-to-1) datasets only
      .state/data-00000.json # one record per finished shard ("unit"): its files and their sha256

A unit's files are a deterministic function of (its input slice, the build parameters), the
Parquet writer options are fixed and carry no timestamps, and every file is written to a
temporary name and renamed into place; the unit's state record is renamed into place after
its files. So a build killed at any moment and run again skips exactly the units whose record
matches their files' checksums and rebuilds the rest, ending byte-identical to a build that
was never interrupted. A corrupted or truncated file fails its checksum and is rebuilt.
"""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from vbert.data.datasets.distributed import ShardAssignment
from vbert.data.errors import DatasetMismatchError, DatasetValidationError, DiskFullError
from vbert.files import atomic_path, atomic_write_text, sha256_bytes, sha256_file

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
CARD_NAME = "README.md"
STATE_DIR = ".state"
# Sub-folders whose Parquet files belong to the build; stale files there are removed at the end.
DATA_DIRS = ("data", "tokens")

# Pinned so that the same table always gives the same bytes, whatever pyarrow's defaults become.
PARQUET_WRITE_OPTIONS: dict[str, Any] = {
    "version": "2.6",
    "data_page_version": "1.0",
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "store_schema": True,
}
ROW_GROUP_SIZE = 1024

log = logging.getLogger(__name__)


def canonical_json(obj: Any) -> str:
    """The manifest and state-record layout: sorted keys, indented, paths as strings.

    Unlike :func:`vbert.files.canonical_json` (compact, for content hashes) it is meant to be read;
    the build key hashes it, so it must not change.
    """
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=2, allow_nan=False, default=str) + "\n"


def sha256_json(obj: Any) -> str:
    return sha256_bytes(canonical_json(obj).encode("utf-8"))


def _remove_temp_files(path: Path) -> None:
    """Temporaries a killed build left beside ``path`` (``.name.*.tmp``, and the older ``.name.tmp-PID``)."""
    for stale in path.parent.glob(f".{path.name}.*"):
        stale.unlink(missing_ok=True)


def _disk_full(path: Path, err: OSError) -> DiskFullError:
    return DiskFullError(
        f"no space left on the device while writing {path} ({err.strerror}): free some space "
        f"(`df -h {path.parent}`) or choose another --out, then run the same command again; "
        "finished shards are kept and only unfinished ones are rebuilt"
    )


@contextmanager
def _disk_full_reported(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _disk_full(path, err) from err
        raise


def write_text_atomically(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` through a temporary file and a rename."""
    with _disk_full_reported(path):
        atomic_write_text(path, text)


def write_parquet_atomically(table: pa.Table, path: Path) -> None:
    """Write ``table`` as Parquet with the pinned options (same table, same bytes), atomically."""
    with _disk_full_reported(path), atomic_path(path) as temp:
        pq.write_table(table, temp, row_group_size=ROW_GROUP_SIZE, **PARQUET_WRITE_OPTIONS)


@dataclass(frozen=True)
class ShardFile:
    """One Parquet file of a unit, as recorded in the state record and the manifest."""

    path: str
    split: str
    rows: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OutputTable:
    """A table a unit produces: where it goes (relative to the dataset root) and its split."""

    path: str
    split: str
    table: pa.Table


@dataclass
class UnitRecord:
    """The state record of a finished unit (``.state/<unit>.json``)."""

    unit: str
    build_key: str
    input_sha256: str
    files: list[ShardFile]
    stats: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "build_key": self.build_key,
            "input_sha256": self.input_sha256,
            "files": [f.to_dict() for f in self.files],
            "stats": dict(self.stats),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> UnitRecord:
        return cls(
            unit=raw["unit"],
            build_key=raw["build_key"],
            input_sha256=raw["input_sha256"],
            files=[ShardFile(**f) for f in raw["files"]],
            stats={k: int(v) for k, v in raw.get("stats", {}).items()},
        )


def verify_files(root: Path, files: Iterable[ShardFile], checksums: bool = True) -> list[str]:
    """Problems found checking ``files`` under ``root`` against their size and, with ``checksums``,
    their sha256 (empty = fine)."""
    problems = []
    for f in files:
        path = root / f.path
        if not path.is_file():
            problems.append(f"{f.path}: missing")
        elif path.stat().st_size != f.bytes:
            problems.append(
                f"{f.path}: {path.stat().st_size} bytes, expected {f.bytes} (truncated or replaced)"
            )
        elif checksums and sha256_file(path) != f.sha256:
            problems.append(f"{f.path}: sha256 does not match the recorded checksum (corrupted)")
    return problems


class ShardStore:
    """Reads and writes the units of one dataset folder for one set of build parameters.

    ``build_key`` hashes everything that shapes the content (dataset kind, embedder
    fingerprint, chunking, seed, dtype, shard size, split rule); a folder holding units or a
    manifest of another key is refused unless ``overwrite`` is set.
    """

    def __init__(
        self,
        root: str | Path,
        build_key: str,
        assignment: ShardAssignment | None = None,
        overwrite: bool = False,
    ) -> None:
        self.root = Path(root)
        self.build_key = build_key
        self.assignment = assignment or ShardAssignment()
        self.overwrite = overwrite
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(
                f"output path {self.root} exists and is not a folder; choose another --out"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / STATE_DIR).mkdir(exist_ok=True)
        self._check_existing_build()

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    def _record_path(self, unit: str) -> Path:
        return self.root / STATE_DIR / f"{unit}.json"

    def _check_existing_build(self) -> None:
        other_keys = set()
        if self.manifest_path.is_file():
            try:
                other = json.loads(self.manifest_path.read_text(encoding="utf-8")).get("build_key")
            except (json.JSONDecodeError, AttributeError):
                other = "unreadable manifest"
            if other != self.build_key:
                other_keys.add(str(other))
        for record_path in sorted((self.root / STATE_DIR).glob("*.json")):
            try:
                key = json.loads(record_path.read_text(encoding="utf-8")).get("build_key")
            except (json.JSONDecodeError, AttributeError):
                continue  # an unreadable record only marks its own unit as unfinished
            if key != self.build_key:
                other_keys.add(str(key))
        if not other_keys:
            return
        if not self.overwrite:
            raise DatasetMismatchError(
                f"{self.root} already holds a dataset built with other parameters (build key "
                f"{sorted(other_keys)[0][:12]}…, this command's is {self.build_key[:12]}…): use a new --out "
                "folder, or pass --overwrite to replace it"
            )
        if self.assignment.is_main:
            self.manifest_path.unlink(missing_ok=True)

    def read_record(self, unit: str) -> UnitRecord | None:
        path = self._record_path(unit)
        if not path.is_file():
            return None
        try:
            return UnitRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            return None

    def is_complete(self, unit: str, input_sha256: str) -> bool:
        """True when ``unit`` was built from this input with these parameters and its files check out."""
        record = self.read_record(unit)
        if record is None or record.build_key != self.build_key or record.input_sha256 != input_sha256:
            return False
        problems = verify_files(self.root, record.files)
        if problems:
            log.warning("shard %s will be rebuilt: %s", unit, "; ".join(problems))
            return False
        return True

    def write_unit(
        self, unit: str, input_sha256: str, outputs: list[OutputTable], stats: Mapping[str, int]
    ) -> UnitRecord:
        """Write a unit's tables, then its state record; every write is atomic."""
        self.manifest_path.unlink(missing_ok=True)  # the folder is no longer a finished dataset
        previous = self.read_record(unit)
        self._record_path(unit).unlink(missing_ok=True)
        files = []
        for output in outputs:
            path = self.root / output.path
            _remove_temp_files(path)
            write_parquet_atomically(output.table, path)
            files.append(
                ShardFile(
                    path=output.path,
                    split=output.split,
                    rows=output.table.num_rows,
                    bytes=path.stat().st_size,
                    sha256=sha256_file(path),
                )
            )
        if previous is not None:
            kept = {f.path for f in files}
            for old in previous.files:
                if old.path not in kept:
                    (self.root / old.path).unlink(missing_ok=True)
        record = UnitRecord(unit, self.build_key, input_sha256, files, {k: int(v) for k, v in stats.items()})
        write_text_atomically(self._record_path(unit), canonical_json(record.to_dict()))
        return record

    def check_units(self, units: list[tuple[str, str]]) -> tuple[list[UnitRecord], list[str]]:
        """Records of ``units`` (name, input sha256) that are complete, and the names of those that are not."""
        records, missing = [], []
        for unit, input_sha in units:
            record = self.read_record(unit)
            if (
                record is None
                or record.build_key != self.build_key
                or record.input_sha256 != input_sha
                or verify_files(self.root, record.files)
            ):
                missing.append(unit)
            else:
                records.append(record)
        return records, missing

    def remove_stale(self, records: list[UnitRecord]) -> None:
        """Delete files and state records that the finished build does not list (an older, larger build)."""
        keep_files = {f.path for r in records for f in r.files}
        keep_records = {f"{r.unit}.json" for r in records}
        for sub in DATA_DIRS:
            folder = self.root / sub
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                rel = path.relative_to(self.root).as_posix()
                if path.is_file() and (
                    ".tmp-" in path.name or (path.suffix == ".parquet" and rel not in keep_files)
                ):
                    path.unlink()
        for path in (self.root / STATE_DIR).iterdir():
            if path.is_file() and path.name not in keep_records:
                path.unlink()
        for path in self.root.glob(".*.tmp-*"):
            path.unlink()

    def write_manifest(self, manifest: Mapping[str, Any], card: str) -> None:
        write_text_atomically(self.root / CARD_NAME, card)
        write_text_atomically(self.manifest_path, canonical_json(manifest))


def read_manifest(root: str | Path) -> dict[str, Any]:
    """Load ``manifest.json`` of a dataset folder, with a clear error when there is none."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise DatasetValidationError(
            f"{Path(root)} has no {MANIFEST_NAME}: it is not a finished vbert dataset (a build may still be "
            "running or was interrupted; run the same build command again to finish it)"
        )
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as err:  # invalid JSON or UTF-8, nesting too deep
        raise DatasetValidationError(
            f"{path} is not valid JSON ({type(err).__name__}); rebuild the dataset"
        ) from err
    if not isinstance(manifest, dict):
        raise DatasetValidationError(f"{path} holds no JSON object; rebuild the dataset")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DatasetValidationError(
            f"{path} has format_version {manifest.get('format_version')!r}, this vbert reads {FORMAT_VERSION}; "
            "rebuild the dataset with this version"
        )
    problem = _manifest_problem(manifest)
    if problem:
        raise DatasetValidationError(f"{path} is not a dataset manifest ({problem}); rebuild the dataset")
    return manifest


_FILE_FIELDS = {"path": str, "split": str, "rows": int, "bytes": int, "sha256": str}


def _manifest_problem(manifest: Mapping[str, Any]) -> str | None:
    """What makes ``manifest`` unreadable for the readers here, or None when it has their shape."""
    if not isinstance(manifest.get("kind"), str):
        return "no 'kind'"
    splits = manifest.get("splits")
    if not isinstance(splits, dict) or not all(
        isinstance(entry, dict) and type(entry.get("rows")) is int for entry in splits.values()
    ):
        return "'splits' must map each split to its rows"
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not all(
        isinstance(shard, dict) and isinstance(shard.get("files"), list) for shard in shards
    ):
        return "'shards' must be a list of shards with 'files'"
    for shard in shards:
        for file in shard["files"]:
            if not isinstance(file, dict) or set(file) != set(_FILE_FIELDS):
                return f"a shard file needs exactly the fields {', '.join(_FILE_FIELDS)}"
            if not all(type(file[k]) is kind for k, kind in _FILE_FIELDS.items()):
                return f"a shard file has a field of the wrong type: {file!r:.80}"
            parts = Path(file["path"]).parts
            if not parts or Path(file["path"]).is_absolute() or ".." in parts:
                return f"file path {file['path']!r} is not inside the dataset folder"
    return None


def manifest_files(manifest: Mapping[str, Any]) -> list[ShardFile]:
    return [ShardFile(**f) for shard in manifest["shards"] for f in shard["files"]]
