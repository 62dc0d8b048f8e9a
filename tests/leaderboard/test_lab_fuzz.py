"""Fuzzing the lab's request path (#16 "fuzz every parser"): whatever the bytes or the JSON, the
answer is a value or a typed error the server turns into a 4xx, never another exception."""

from __future__ import annotations

import contextlib
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbert.errors import DataError
from vbert.lab import Lab, LabInputError, parse_body
from vbert.mergers import MeanPoolMerger

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELDS = ("text", "chunks", "embedder", "merger", "chunk_tokens", "formula", "score_version", "chunk_space")
REQUESTS = st.dictionaries(
    st.sampled_from(FIELDS), JSON | st.lists(st.text(max_size=30), max_size=6), max_size=5
)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200) | JSON.map(lambda value: json.dumps(value).encode()))
def test_parse_body_returns_json_or_a_data_error(body):
    with contextlib.suppress(DataError):
        parse_body(body)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=REQUESTS | JSON)
def test_analyze_answers_or_refuses_with_a_typed_error(fakes, request):
    lab = Lab(embedders={"words": fakes.WordEmbedder}, mergers={"mean": MeanPoolMerger})
    try:
        result = lab.analyze(request)
    except LabInputError as err:
        assert 400 <= err.status < 500
    else:
        assert len(result["matrix"]) == len(result["chunks"]) >= 3
