"""Fuzzing raw manifests (#16 "fuzz every parser"): an edited or damaged manifest is scored,
or refused with a typed vbert error; never a traceback of another kind."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbert.errors import VbertError
from vbert.finesse import run_benchmark
from vbert.finesse.raw import RawRun
from vbert.finesse.scoring import score_run

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
TOP = ("competitor", "metric", "lengths", "not_evaluated", "config", "chunk_space", "probes", "environments",
       "truncated", "complete")  # fmt: skip
IN_LENGTH = ("file", "sha256", "samples")


@pytest.fixture
def raw_run(tmp_path, make_config):
    """One tiny run, shared by every example of the test that uses it."""
    config = make_config(competitors=[{"name": "mean", "kind": "mean"}])
    config["probes"]["sequence_length"] = {"min": 3, "max": 4}
    run_benchmark(config, tmp_path / "out")
    folder = tmp_path / "out" / "raw" / "mean"
    return folder, json.loads((folder / "manifest.json").read_text())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(TOP) | st.sampled_from(IN_LENGTH), value=JSON, delete=st.booleans())
def test_an_edited_manifest_is_scored_or_refused_with_a_typed_error(raw_run, where, value, delete):
    folder, original = raw_run
    manifest = copy.deepcopy(original)
    target = manifest["lengths"]["3"] if where in IN_LENGTH else manifest
    if delete:
        target.pop(where, None)
    else:
        target[where] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))
    try:
        score_run(RawRun.open(folder))
    except (VbertError, FileNotFoundError):
        pass
    finally:
        (folder / "manifest.json").write_text(json.dumps(original))
