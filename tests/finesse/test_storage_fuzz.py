"""Fuzzing the raw ``.npz`` reader (#16): a damaged archive, bytes overwritten, truncated or
inserted anywhere, loads as plain arrays or is refused with an :class:`IntegrityError`; it is
never unpickled and never raises a zipfile or NumPy error."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbert.errors import IntegrityError
from vbert.finesse.storage import load_npz

_buffer = io.BytesIO()
np.savez(_buffer, sim=np.arange(12, dtype=np.float32).reshape(3, 4), lengths=np.array([4, 8]))
VALID = _buffer.getvalue()


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["overwrite", "truncate", "insert"]))
        if edit == "truncate":
            del data[at:]
        else:
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at : at + (len(chunk) if edit == "overwrite" else 0)] = chunk
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged() | st.binary(max_size=64))
def test_damaged_archives_load_or_are_refused_with_an_integrity_error(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "length_004.npz")
        path.write_bytes(content)
        try:
            arrays = load_npz(path)
        except IntegrityError as err:
            assert str(path) in str(err)
            return
        assert all(not value.dtype.hasobject for value in arrays.values())


@pytest.mark.parametrize("keep", [30, 200, len(VALID) - 10])
def test_a_truncated_archive_is_an_integrity_error(tmp_path, keep):
    """Regression: truncation raised zipfile.BadZipFile / EOFError from load_npz."""
    path = tmp_path / "length_004.npz"
    path.write_bytes(VALID[:keep])
    with pytest.raises(IntegrityError, match="damaged"):
        load_npz(path)


def test_a_garbled_end_record_is_an_integrity_error(tmp_path):
    """Regression (found by the fuzzer): one byte inserted into the end-of-archive record made
    zipfile seek before the start of the file, and load_npz raised OSError (EINVAL)."""
    path = tmp_path / "length_004.npz"
    path.write_bytes(VALID[:566] + b"\x01" + VALID[566:-1])
    with pytest.raises(IntegrityError, match="damaged"):
        load_npz(path)
