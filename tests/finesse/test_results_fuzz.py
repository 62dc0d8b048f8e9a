"""Fuzzing the results.json readers (#16): the leaderboard, ``finesse compare`` and the reference
export take any edit of a committed results.json, its hash recomputed or not, and give a result
or a typed :class:`VbertError`, never a traceback."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.mutations import edited
from vbert.errors import VbertError
from vbert.files import read_json
from vbert.finesse.compare import compare_files
from vbert.finesse.integrity import seal
from vbert.finesse.leaderboard.site import build_site
from vbert.finesse.reference_format import to_reference

COMMITTED = Path(__file__).resolve().parents[2] / "results" / "finesse"
RESULTS = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(COMMITTED.glob("*/results.json"))]


def _every_reader(results: object, folder: Path) -> None:
    path = folder / "results.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    readers = (
        lambda: build_site([path], folder / "site"),
        lambda: compare_files([path]),
        lambda: to_reference(read_json(path)),
    )
    for read in readers:
        with contextlib.suppress(VbertError):
            read()


def test_the_committed_results_are_read_by_every_reader(tmp_path):
    """The starting point of the fuzzing is valid: every reader accepts it unchanged."""
    path = tmp_path / "results.json"
    for results in RESULTS:
        path.write_text(json.dumps(results), encoding="utf-8")
        build_site([path], tmp_path / "site")
        compare_files([path])
        to_reference(read_json(path))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(RESULTS).flatmap(edited), st.booleans())
def test_edited_results_are_read_or_refused_with_a_typed_error(results, rehash):
    if rehash and isinstance(results, dict):
        results = seal(results)  # a hostile edit that also recomputes the content hash
    with tempfile.TemporaryDirectory() as folder:
        _every_reader(results, Path(folder))


def test_a_score_edited_to_null_is_a_data_error_not_a_type_error(tmp_path):
    """Regression: compare and the leaderboard raised TypeError on ``"mean_score": null``."""
    import pytest

    from vbert.errors import DataError

    results = seal({**RESULTS[0], "summary": {**RESULTS[0]["summary"], "mean_score": None}})
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    with pytest.raises(DataError, match="not a well-formed Finesse results file"):
        compare_files([path])
    with pytest.raises(DataError, match="not a well-formed Finesse results file"):
        to_reference(seal({**results, "competitor": None}))
