"""Fetch Debian packages without installing them: ``apt-get download`` + ``dpkg-deb -x``.

Each package is extracted into a temporary folder that is renamed into place only after its
marker file (holding the ``.deb``'s sha256) is written, so a folder with a marker is always a
complete extraction and a killed fetch leaves only temporary folders, removed on the next run.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vbert.data.errors import DebianFetchError, DiskFullError, NetworkError, PackageNotFoundError
from vbert.files import normal_dir_mode, sha256_file

MARKER = ".vbert-package.json"
TEMP_PREFIX = ".partial-"
APT_LISTS = Path("/var/lib/apt/lists")

_NETWORK_SIGNS = (
    "Could not resolve",
    "Temporary failure resolving",
    "Could not connect",
    "Connection failed",
    "Connection timed out",
    "Network is unreachable",
    "Unable to connect",
)
_MISSING_SIGNS = (
    "Unable to locate package",
    "has no installation candidate",
    "Can't select candidate version",
)
_DISK_SIGNS = ("No space left on device", "You don't have enough free space")


@dataclass(frozen=True)
class FetchedPackage:
    """An extracted package: its files live under ``root`` (``root/usr/share/...``)."""

    name: str
    version: str
    deb_sha256: str
    deb_bytes: int
    root: Path
    downloaded: bool


def _run(command: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as err:
        raise DebianFetchError(
            f"`{command[0]}` was not found: the debian corpus is fetched with Debian's package tools "
            "(apt-get, dpkg-deb) on Debian or Ubuntu; elsewhere use the 'files' or 'wikipedia' corpus"
        ) from err


def _raise_for_apt(package: str, result: subprocess.CompletedProcess[str], what: str) -> None:
    output = f"{result.stdout}\n{result.stderr}"
    last = next((line for line in reversed(output.strip().splitlines()) if line.strip()), "")
    if any(sign in output for sign in _MISSING_SIGNS):
        raise PackageNotFoundError(
            f"APT has no package named {package!r} ({last.strip()}); check the name with "
            f"`apt-cache search {package.split('-')[0]}`, or run `apt-get update` if the lists are old"
        )
    if any(sign in output for sign in _NETWORK_SIGNS):
        raise NetworkError(
            f"could not reach the Debian mirror to {what} {package} ({last.strip()}); check the network "
            "or the proxy settings in /etc/apt/apt.conf.d, then run the fetch again (finished packages are kept)"
        )
    if any(sign in output for sign in _DISK_SIGNS):
        raise DiskFullError(
            f"the disk is full while trying to {what} {package}: free some space and run again"
        )
    raise DebianFetchError(f"`{' '.join(result.args)}` failed (exit {result.returncode}): {last.strip()}")


def ensure_apt_lists(apt_get: str = "apt-get", lists_dir: Path = APT_LISTS) -> None:
    """Run ``apt-get update`` when the package lists are empty (a fresh container)."""
    if lists_dir.is_dir() and any(lists_dir.glob("*_Packages*")):
        return
    if os.geteuid() != 0:
        raise DebianFetchError(
            f"the APT package lists in {lists_dir} are empty and refreshing them needs root: "
            "run `sudo apt-get update` once, then fetch again"
        )
    result = _run([apt_get, "update"])
    if result.returncode != 0 or "Failed to fetch" in result.stdout + result.stderr:
        _raise_for_apt("the package lists", result, "update")


@contextmanager
def exclusive_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` so two fetches never write the same cache at once."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise DebianFetchError(
                f"another process is fetching into {folder}; wait for it to finish (or remove a stale "
                f"{folder / '.lock'} if no fetch is running)"
            ) from err
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_marker(folder: Path) -> dict | None:
    """The marker of a complete extraction, or None when ``folder`` is absent or incomplete."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return marker if isinstance(marker, dict) and "deb_sha256" in marker else None


def remove_partials(packages_dir: Path) -> None:
    """Delete temporary folders left by a fetch that was killed."""
    if packages_dir.is_dir():
        for leftover in packages_dir.glob(f"{TEMP_PREFIX}*"):
            shutil.rmtree(leftover, ignore_errors=True)


def download_debs(names: Sequence[str], folder: Path, apt_get: str = "apt-get") -> dict[str, Path]:
    """Download several ``.deb`` files with one ``apt-get download`` call (much faster than one each).

    Returns the files that arrived. A network or disk failure raises; an unknown package makes
    apt download nothing, so :func:`fetch_package` then fetches one by one and names the culprit.
    """
    if not names:
        return {}
    result = _run([apt_get, "-o", "APT::Sandbox::User=root", "download", *names], cwd=folder)
    output = result.stdout + result.stderr
    if result.returncode != 0 and any(sign in output for sign in _NETWORK_SIGNS + _DISK_SIGNS):
        _raise_for_apt(" ".join(names), result, "download")
    return {name: debs[0] for name in names if (debs := sorted(folder.glob(f"{name}_*.deb")))}


def fetch_package(
    name: str,
    packages_dir: Path,
    *,
    deb: Path | None = None,
    refresh: bool = False,
    apt_get: str = "apt-get",
    dpkg_deb: str = "dpkg-deb",
) -> FetchedPackage:
    """Download (unless ``deb`` is given) and extract one package into ``packages_dir/name``.

    Nothing is done when a complete extraction is already there (unless ``refresh``).
    """
    target = packages_dir / name
    marker = None if refresh else read_marker(target)
    if marker is not None:
        return FetchedPackage(
            name, marker["version"], marker["deb_sha256"], marker["deb_bytes"], target, False
        )
    packages_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{name}-", dir=packages_dir))
    try:
        deb = deb if deb is not None else _download(name, work, apt_get)
        tree = work / "tree"
        result = _run([dpkg_deb, "-x", str(deb), str(tree)])
        if result.returncode != 0:
            _raise_for_apt(name, result, "extract")
        version = _run([dpkg_deb, "-f", str(deb), "Version"]).stdout.strip()
        info = {
            "package": name,
            "version": version,
            "deb_sha256": sha256_file(deb),
            "deb_bytes": deb.stat().st_size,
        }
        (tree / MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.chmod(tree, normal_dir_mode())  # mkdtemp's folder is private (0700)
        os.replace(tree, target)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise DiskFullError(
                f"the disk holding {packages_dir} is full while fetching {name}; free some space "
                f"(or set VBERT_HOME to a larger disk) and run again"
            ) from err
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return FetchedPackage(name, version, info["deb_sha256"], info["deb_bytes"], target, True)


def _download(name: str, folder: Path, apt_get: str) -> Path:
    # Running as root, apt hands downloads to the unprivileged _apt user, who cannot write
    # into a private temporary folder; downloading as the caller is what we want here.
    result = _run([apt_get, "-o", "APT::Sandbox::User=root", "download", name], cwd=folder)
    debs = sorted(folder.glob(f"{name}_*.deb"))
    if result.returncode != 0 or not debs:
        _raise_for_apt(name, result, "download")
    return debs[0]
