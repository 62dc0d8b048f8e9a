"""Safe, atomic file I/O for Finesse: JSON, NumPy ``.npz`` without pickle, canonical hashing.

Every write goes to a temporary file in the target folder and is moved into place with
``os.replace``, so an interrupted run never leaves a half-written file that looks complete.
Raw arrays are NumPy ``.npz`` archives loaded with ``allow_pickle=False``; a file that carries
a pickle payload (a ``torch.save`` file, a raw pickle, an object array) is refused before
anything is deserialised.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

PICKLE_PROTOCOL_BYTE = b"\x80"
ZIP_MAGIC = b"PK\x03\x04"


class UnsafeFileError(ValueError):
    """A raw file carries a pickle payload or is not a plain NumPy archive."""


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` atomically: ``write`` fills a temp file in the same folder, then it is renamed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented, key-sorted UTF-8 JSON, atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n")


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Read a JSON file, naming the file when it is missing or malformed."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{what} {file} does not exist")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{what} {file} is not valid JSON ({err}); it may be truncated or edited by hand"
        ) from err


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Save numeric arrays to an uncompressed ``.npz`` atomically; object arrays are refused."""
    for name, value in arrays.items():
        if np.asarray(value).dtype.hasobject:
            raise TypeError(f"array {name!r} has dtype object; only numeric arrays are stored (never pickle)")
    atomic_write(path, lambda handle: np.savez(handle, **{k: np.asarray(v) for k, v in arrays.items()}))


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Load a ``.npz`` archive after checking it holds only plain numeric ``.npy`` members.

    Raises:
        UnsafeFileError: the file is a pickle, a ``torch.save`` archive, or holds an object array.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"raw file {file} does not exist; re-run `finesse generate` to produce it")
    with file.open("rb") as handle:
        head = handle.read(4)
    if head[:1] == PICKLE_PROTOCOL_BYTE:
        raise UnsafeFileError(
            f"{file} is a pickle file; Finesse never unpickles (it can run arbitrary code). "
            "Regenerate the raw outputs with `finesse generate`, which writes NumPy .npz files."
        )
    if head != ZIP_MAGIC:
        raise UnsafeFileError(f"{file} is not a NumPy .npz archive; regenerate it with `finesse generate`")
    with zipfile.ZipFile(file) as archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                raise UnsafeFileError(
                    f"{file} contains {member!r}, which is not a NumPy array (a torch.save/pickle payload?); "
                    "Finesse refuses it. Regenerate the raw outputs with `finesse generate`."
                )
            with archive.open(member) as entry:
                version = np.lib.format.read_magic(entry)
                header = (
                    np.lib.format.read_array_header_1_0(entry)
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0(entry)
                )
            if np.dtype(header[2]).hasobject:
                raise UnsafeFileError(
                    f"{file} member {member!r} is an object array, stored as a pickle payload; "
                    "Finesse refuses to load it. Regenerate the raw outputs with `finesse generate`."
                )
    with np.load(file, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()
