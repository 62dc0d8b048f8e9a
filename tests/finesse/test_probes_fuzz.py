"""Fuzzing the probe-set reader (#16): a damaged ``probes.jsonl`` or ``probes.parquet`` (bytes
overwritten, truncated or inserted) loads as the probe set or is refused with a
:class:`ProbeSetError`, never a pyarrow, JSON or Unicode error."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbert.data.corpora.files import iter_files
from vbert.finesse.probes import ProbeSetError, build_probes, load_probes, save_probes


@pytest.fixture
def saved(tmp_path, corpus, fake_embedder):
    probe_set = build_probes(
        iter_files(corpus), fake_embedder, lengths=[3, 4], samples_per_length=2, token_per_sample=8, seed=3
    )
    return {
        suffix: save_probes(probe_set, tmp_path / f"probes{suffix}").read_bytes()
        for suffix in (".jsonl", ".parquet")
    }


@st.composite
def edits(draw: st.DrawFn) -> list[tuple[str, float, bytes]]:
    kinds = st.sampled_from(["overwrite", "truncate", "insert"])
    return draw(
        st.lists(st.tuples(kinds, st.floats(0, 1), st.binary(min_size=1, max_size=8)), min_size=1, max_size=3)
    )


def _damage(data: bytes, changes: list[tuple[str, float, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, where, chunk in changes:
        at = int(where * max(len(out) - 1, 0))
        if kind == "truncate":
            del out[at:]
        else:
            out[at : at + (len(chunk) if kind == "overwrite" else 0)] = chunk
    return bytes(out)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from([".jsonl", ".parquet"]), edits())
def test_damaged_probe_files_load_or_are_refused_with_a_probe_set_error(saved, suffix, changes):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, f"probes{suffix}")
        path.write_bytes(_damage(saved[suffix], changes))
        with contextlib.suppress(ProbeSetError):
            load_probes(path)


@pytest.mark.parametrize(
    ("suffix", "content"),
    [(".jsonl", b"\xff\xfe{}\n"), (".jsonl", b"[1]\n"), (".parquet", b"PAR1garbage"), (".parquet", b"")],
)
def test_unreadable_probe_files_are_probe_set_errors(tmp_path, suffix, content):
    """Regression: non-UTF-8 JSONL, a non-object header and garbled Parquet escaped as other errors."""
    path = tmp_path / f"probes{suffix}"
    path.write_bytes(content)
    with pytest.raises(ProbeSetError):
        load_probes(path)
