"""Files written as one unit, hashed, and in canonical JSON: the one place vbert does this.

Every write goes to a temporary sibling and is renamed onto the target, so a reader never sees a
half-written file and a crash leaves the old one intact. Temporary files and folders get the
permissions the umask gives any new file (0644/0755 usually), not mkstemp's private 0600/0700.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

_HASH_BLOCK = 1 << 22


def vbert_home() -> Path:
    """Where vbert keeps models, corpora and caches: ``$VBERT_HOME``, or ``~/.cache/vbert``."""
    return Path(os.environ.get("VBERT_HOME", Path.home() / ".cache" / "vbert"))


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def normal_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file under the current umask."""
    return 0o666 & ~_umask()


def normal_dir_mode() -> int:
    """The mode ``mkdir`` would give a new folder under the current umask."""
    return 0o777 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, normal_file_mode())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` atomically: ``write`` fills a binary handle on a temporary sibling."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        write(handle)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: object, *, sort_keys: bool = True) -> None:
    """Indented UTF-8 JSON; NaN and infinity are refused (they are not JSON)."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")


@contextlib.contextmanager
def atomic_folder(folder: str | Path, *, temp_prefix: str = ".tmp-") -> Iterator[Path]:
    """Yield an empty temporary sibling folder; on success it replaces ``folder`` by renames.

    An old ``folder`` is first moved aside and removed only after the new one is in place, so
    a crash leaves either the old folder, the new one, or the old one beside a temporary that
    the next call removes.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temp = folder.with_name(f"{temp_prefix}{folder.name}")
    if temp.exists():
        shutil.rmtree(temp)
    temp.mkdir(mode=normal_dir_mode())
    try:
        yield temp
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    fix_permissions(temp)
    if folder.exists():
        stale = folder.with_name(f"{temp_prefix}old-{folder.name}")
        if stale.exists():
            shutil.rmtree(stale)
        folder.replace(stale)
        temp.replace(folder)
        shutil.rmtree(stale)
    else:
        temp.replace(folder)


def fix_permissions(root: str | Path) -> None:
    """Give ``root`` and everything below it the umask's normal modes (libraries that write
    through mkstemp/mkdtemp, such as ``save_pretrained`` or ``export-hub``, leave 0600/0700)."""
    root = Path(root)
    file_mode, dir_mode = normal_file_mode(), normal_dir_mode()
    if root.is_file():
        os.chmod(root, file_mode)
        return
    os.chmod(root, dir_mode)
    for parent, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(Path(parent, name), dir_mode)
        for name in files:
            os.chmod(Path(parent, name), file_mode)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Read a JSON file, naming the file when it is missing or malformed."""
    from vbert.errors import DataError

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{what} {file} does not exist")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise DataError(
            f"{what} {file} is not valid JSON ({err}); it may be truncated or edited by hand"
        ) from err


def canonical_json(data: Any) -> str:
    """The canonical text form that content hashes and signatures are computed over.

    Rules: object keys sorted; no whitespace; strings as JSON with non-ASCII kept; integers
    and booleans as JSON; every float as C ``%.17g`` (exact round trip, ``-0.0`` as ``0``);
    NaN and infinity are refused. Tuples are lists.
    """
    if isinstance(data, Mapping):
        items = []
        for key in sorted(data):
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON needs string keys, got {key!r}")
            items.append(json.dumps(key, ensure_ascii=False) + ":" + canonical_json(data[key]))
        return "{" + ",".join(items) + "}"
    if isinstance(data, list | tuple):
        return "[" + ",".join(canonical_json(item) for item in data) + "]"
    if isinstance(data, bool) or data is None:
        return json.dumps(data)
    if isinstance(data, int | np.integer):
        return str(int(data))
    if isinstance(data, float | np.floating):
        value = float(data)
        if not math.isfinite(value):
            raise ValueError("canonical JSON cannot hold NaN or infinity")
        return "%.17g" % (value + 0.0)  # + 0.0 turns -0.0 into 0.0
    if isinstance(data, str):
        return json.dumps(data, ensure_ascii=False)
    raise TypeError(f"canonical JSON cannot hold a value of type {type(data).__name__}")


def sha256_canonical(data: Any) -> str:
    """Hex SHA-256 of :func:`canonical_json` of ``data`` (UTF-8)."""
    return sha256_bytes(canonical_json(data).encode("utf-8"))
