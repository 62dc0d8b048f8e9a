"""NumPy ``.npz`` files for Finesse raw outputs, written atomically and read without pickle.

Raw arrays are uncompressed ``.npz`` archives loaded with ``allow_pickle=False``; a file that
carries a pickle payload (a ``torch.save`` file, a raw pickle, an object array) is refused
before anything is deserialised. Writes go through :func:`vbert.files.atomic_write` (a
temporary sibling renamed into place, with normal permissions).
"""

from __future__ import annotations

import contextlib
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from vbert.errors import DataError, IntegrityError, VbertError
from vbert.files import atomic_write

PICKLE_PROTOCOL_BYTE = b"\x80"
ZIP_MAGIC = b"PK\x03\x04"


class UnsafeFileError(IntegrityError):
    """A raw file carries a pickle payload or is not a plain NumPy archive."""


@contextlib.contextmanager
def reading_results(source: str) -> Iterator[None]:
    """Report a ``results.json`` whose structure a reader did not expect (a field missing or of
    the wrong type, found by hand editing or damage) as a :class:`DataError` naming ``source``."""
    try:
        yield
    except VbertError:
        raise
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as err:
        raise DataError(
            f"{source} is not a well-formed Finesse results file ({type(err).__name__}: {err}); "
            "give results.json files written by `finesse score`, unedited"
        ) from err


class DamagedFileError(IntegrityError):
    """A raw file is truncated or garbled: not a readable NumPy archive."""


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
        DamagedFileError: the file is truncated or garbled.
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
    try:
        return _read_npz(file)
    except VbertError:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,  # a garbled offset makes zipfile seek before the start of the file (EINVAL)
        ValueError,
        KeyError,
        NotImplementedError,
        RuntimeError,
    ) as err:
        raise DamagedFileError(
            f"{file} is damaged ({type(err).__name__}: {err}); regenerate it with `finesse generate`"
        ) from err


def _read_npz(file: Path) -> dict[str, np.ndarray]:
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
