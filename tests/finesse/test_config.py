"""The strict config schema: unknown keys named, min ≤ max, paths checked, presets valid."""

from __future__ import annotations

import pytest
import yaml

from vbert.finesse.config import ConfigError, load_config, load_preset, parse_config, preset_text


def _write(tmp_path, data) -> str:
    path = tmp_path / "benchmark.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def test_misspelt_key_is_an_error_naming_the_key_and_the_fix(tmp_path, make_config):
    data = make_config()
    data["probes"]["tokper_sample"] = 500  # the reference's leaderboard typo, silently ignored there
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, data))
    message = str(err.value)
    assert "probes.tokper_sample" in message
    assert "did you mean 'token_per_sample'" in message


def test_unknown_keys_are_named_at_every_level(tmp_path, make_config):
    data = make_config()
    data["colour"] = "blue"
    data["competitors"][1]["weigths"] = True
    data["probes"]["source"]["pth"] = "x"
    with pytest.raises(ConfigError) as err:
        parse_config(data, check_paths=False)
    message = str(err.value)
    assert "'colour'" in message
    assert "competitors.1.weigths" in message
    assert "probes.source.files.pth" in message or "probes.source.pth" in message
    assert "did you mean 'path'" in message


def test_min_must_not_exceed_max(make_config):
    data = make_config()
    data["probes"]["sequence_length"] = {"min": 9, "max": 5}
    with pytest.raises(ConfigError, match=r"min \(9\) must be ≤ sequence_length.max \(5\)"):
        parse_config(data, check_paths=False)


def test_lengths_below_three_are_refused(make_config):
    data = make_config()
    data["probes"]["sequence_length"] = {"min": 2, "max": 5}
    with pytest.raises(ConfigError, match="sequence_length.min"):
        parse_config(data, check_paths=False)


def test_missing_corpus_and_merger_paths_are_reported(tmp_path, make_config):
    data = make_config()
    data["probes"]["source"]["path"] = str(tmp_path / "nowhere")
    data["competitors"][0]["merger"] = "./no-such-merger"
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, data))
    assert "corpus path" in str(err.value) and "nowhere" in str(err.value)
    assert "no-such-merger" in str(err.value)


def test_relative_paths_resolve_against_the_config_folder(tmp_path, make_config, corpus):
    data = make_config()
    data["probes"]["source"]["path"] = corpus.name
    data["probes"]["file"] = "probes.jsonl"
    config = load_config(_write(tmp_path, data))
    assert config.probes.source.path == str(tmp_path / corpus.name)
    assert config.probes.file == str(tmp_path / "probes.jsonl")


def test_types_are_not_coerced(make_config):
    data = make_config()
    data["probes"]["samples_per_length"] = "5"
    with pytest.raises(ConfigError, match="samples_per_length"):
        parse_config(data, check_paths=False)


def test_competitor_fields_must_fit_their_kind_and_names_are_unique(make_config):
    data = make_config(competitors=[{"name": "mean", "kind": "mean", "merger": "default"}])
    with pytest.raises(ConfigError, match="only allowed with kind: merger"):
        parse_config(data, check_paths=False)
    data = make_config(competitors=[{"name": "a", "kind": "mean"}, {"name": "a", "kind": "truncation"}])
    with pytest.raises(ConfigError, match="repeated: a"):
        parse_config(data, check_paths=False)
    data = make_config(competitors=[{"name": "../evil", "kind": "mean"}])
    with pytest.raises(ConfigError, match="names a folder"):
        parse_config(data, check_paths=False)


def test_hub_datasets_must_pin_a_revision(make_config):
    data = make_config()
    data["probes"]["source"] = {"kind": "huggingface", "path": "wikimedia/wikipedia", "name": "20231101.en"}
    with pytest.raises(ConfigError, match="revision"):
        parse_config(data, check_paths=False)
    data["probes"]["source"]["revision"] = "b04c8d1ceb2f5cd4588862100d08de323dccfbaa"
    assert parse_config(data, check_paths=False).probes.source.revision.startswith("b04c")


@pytest.mark.parametrize("name", ["quick", "leaderboard"])
def test_presets_are_valid_and_commented(name):
    config = load_preset(name)
    text = preset_text(name)
    assert text.count("#") > 10
    assert config.scoring.score_version == "balanced"
    if name == "quick":
        assert (config.probes.sequence_length.min, config.probes.sequence_length.max) == (4, 16)
    else:
        assert (config.probes.sequence_length.min, config.probes.sequence_length.max) == (4, 64)
        assert config.probes.samples_per_length == 25
        assert config.seed == 42
    assert {c.kind for c in config.competitors} >= {"merger", "mean", "mean-weighted", "truncation"}


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_text("huge")
    with pytest.raises(ConfigError, match="finesse init"):
        load_config(tmp_path / "absent.yaml")
