"""Fuzzing the Finesse config loader (#16): any YAML text or bytes, any edit of a shipped preset,
gives a valid :class:`BenchmarkConfig` or a :class:`ConfigError`, never a traceback."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.mutations import edited
from vbert.errors import ConfigError
from vbert.finesse.config import BenchmarkConfig, config_to_dict, load_config, parse_config, preset_text

PRESETS = [yaml.safe_load(preset_text(name)) for name in ("quick", "leaderboard", "reference")]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PRESETS).flatmap(edited))
def test_edited_presets_validate_or_fail_with_a_config_error(data):
    try:
        config = parse_config(data, "fuzzed.yaml", check_paths=False)
    except ConfigError as err:
        assert "fuzzed.yaml" in str(err)
        return
    assert isinstance(config, BenchmarkConfig)
    assert parse_config(config_to_dict(config), "round trip", check_paths=False) == config


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_file_loads_or_fails_with_a_config_error(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "finesse.yaml")
        path.write_bytes(content)
        with contextlib.suppress(ConfigError):
            assert isinstance(load_config(path), BenchmarkConfig)


@pytest.mark.parametrize("content", [b"[" * 1_000, b"name: " + b"{a: " * 5_000, b"name: \xff\xfe\n"])
def test_deep_nesting_and_bad_encoding_are_config_errors(tmp_path, content):
    """Regression: load_config let RecursionError and UnicodeDecodeError out."""
    path = tmp_path / "finesse.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="nested too deeply|not UTF-8"):
        load_config(path)
