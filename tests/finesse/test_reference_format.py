"""Export to the reference finesse-benchmark's benchmark_results.json and its content hash."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vbert.cli.finesse import app
from vbert.errors import ConfigError, DataError, IntegrityError
from vbert.finesse.config import load_preset
from vbert.finesse.integrity import seal
from vbert.finesse.reference_format import (
    check_reference,
    reference_content_hash,
    reference_model_hash,
    to_reference,
)

RESULTS = Path(__file__).resolve().parents[2] / "results" / "finesse" / "mean" / "results.json"
WORKED_EXAMPLE = {
    "config": {"seed": 42, "probe_config": {"sequence_length": {"min": 4, "max": 5}}},
    "average_rss": 12.5,
    "length_scores": {"4": {"rss_scores": [10.0, 15.0]}},
    "model_hash": None,
    "content_hash": "",
}


@pytest.fixture(scope="module")
def results() -> dict:
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def test_content_hash_worked_example():
    # docs/benchmark.md walks through this example line by line.
    canonical = (
        "average_rss:12.5config.probe_config.sequence_length.max:5config.probe_config.sequence_length.min:4"
        "config.seed:42content_hash:length_scores.4.rss_scores:[10.0, 15.0]model_hash:None"
    )
    expected = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert reference_content_hash(WORKED_EXAMPLE) == expected
    assert expected == "c2597b8313e9f9e5f7beb72ece18abba6eb3e7bc032f72135ad12c1a98830981"
    # The stored hash itself is blanked, and key order does not matter.
    reordered = dict(reversed(list({**WORKED_EXAMPLE, "content_hash": "anything"}.items())))
    assert reference_content_hash(reordered) == expected


def test_rss_export_schema_and_scores(results):
    out = to_reference(results)
    assert list(out) == [
        "config", "average_rss", "average_total_latency", "average_synthesis_latency",
        "length_scores", "metadata", "model_hash", "content_hash",
    ]  # fmt: skip
    assert out["config"]["mode"] == "merger_mode" and out["config"]["metric"] == "rss"
    length = results["lengths"]["10"]
    exported = out["length_scores"]["10"]
    assert exported["raw_td"] == length["td"] and exported["raw_bu"] == length["bu"]
    # The results were scored "balanced"; the export uses the leaderboard's (TD+BU)×500.
    assert exported["rss_scores"][0] == pytest.approx((length["td"][0] + length["bu"][0]) * 500, abs=1e-6)
    every = [s for entry in out["length_scores"].values() for s in entry["rss_scores"]]
    assert out["average_rss"] == pytest.approx(sum(every) / len(every), abs=1e-6)
    assert out["metadata"]["vbert_export"]["scores_recomputed_from_rounded_td_bu"] is True
    assert (
        "chunk_space: 'base' (leaderboard: 'merger')"
        in out["metadata"]["vbert_export"]["differences_from_leaderboard"]
    )
    assert out["model_hash"] is None


def test_balanced_export_keeps_the_stored_scores(results):
    out = to_reference(results, score_version="balanced")
    assert out["length_scores"]["4"]["rss_scores"] == results["lengths"]["4"]["scores"]
    assert out["average_rss"] == pytest.approx(results["summary"]["mean_score"], abs=1e-5)


def test_hash_survives_the_json_round_trip_and_catches_edits(results, tmp_path):
    out = to_reference(results)
    reloaded = json.loads(json.dumps(out, indent=2))
    assert check_reference(reloaded)
    reloaded["length_scores"]["4"]["rss_scores"][0] += 1.0
    assert not check_reference(reloaded)


def test_damaged_results_are_refused(results):
    damaged = copy.deepcopy(results)
    damaged["summary"]["mean_score"] = 99.0
    with pytest.raises(IntegrityError, match="integrity"):
        to_reference(damaged)
    with pytest.raises(DataError, match="not a vbert Finesse"):
        to_reference({"format": "something-else"})
    with pytest.raises(ConfigError, match="unknown score version"):
        to_reference(results, score_version="mean")


def test_srs_export():
    srs = {
        "format": "vbert-finesse-results/1",
        "metric": "srs",
        "formula": "q2q2",
        "chunk_space": "base",
        "competitor": {"mode": "merger", "merger": {"name": "m"}, "embedder": {"name": "e", "max_tokens": 512}},
        "probes": {"sequence_length": {"min": 4, "max": 4}, "samples_per_length": 1, "token_per_sample": 256,
                   "group_amount": 2, "seed": 42, "source": {"kind": "files", "path": "corpus"}},
        "lengths": {"4": {"position_scores": [{"2": [1.5, 2.5, 3.5], "3": [0.5, 1.0]}]}},
        "summary": {"mean_score": 1.8, "pbi": 0.4},
    }  # fmt: skip
    out = to_reference(seal(srs))
    assert out["average_srs"] == 1.8 and out["average_pbi"] == 0.4
    assert out["length_scores"] == {"4": {"sample_results": [{"2": [1.5, 2.5, 3.5], "3": [0.5, 1.0]}]}}
    assert out["config"]["metric"] == "srs" and out["config"]["probe_config"]["group_amount"] == 2
    assert check_reference(json.loads(json.dumps(out)))


def test_model_hash_of_weight_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "model.safetensors").write_bytes(b"B")
    (tmp_path / "a.bin").write_bytes(b"A")
    (tmp_path / "config.json").write_text("{}")  # not hashed, as in the reference
    assert reference_model_hash(tmp_path) == hashlib.sha256(b"AB").hexdigest()
    with pytest.raises(DataError, match="not a model folder"):
        reference_model_hash(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no weight files"):
        reference_model_hash(tmp_path / "empty")


def test_cli_export_reference(tmp_path):
    target = tmp_path / "benchmark_results.json"
    result = CliRunner().invoke(app, ["export-reference", str(RESULTS), str(target)])
    assert result.exit_code == 0, result.output
    assert "differs from the official leaderboard" in result.output
    assert check_reference(json.loads(target.read_text(encoding="utf-8")))
    again = CliRunner().invoke(app, ["export-reference", str(RESULTS), str(target)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_reference_preset_mirrors_the_leaderboard():
    config = load_preset("reference")
    assert (config.probes.sequence_length.min, config.probes.sequence_length.max) == (4, 64)
    assert config.probes.samples_per_length == 25 and config.probes.token_per_sample == 256
    assert config.scoring.score_version == "sum" and config.scoring.chunk_space == "merger"
    assert config.probes.document_reuse == "none" and config.seed == 42
    assert config.probes.source.revision == "6a8734bc69fefcbb7735f4f9250f43e4cd7a442e"
    assert len(config.probes.source.data_files) == 32
    assert config.probes.source.data_files[0] == "en/en_part_00000.parquet"  # a hub path, not a local one


def test_native_export_and_model_hash(results, tmp_path):
    native = copy.deepcopy(results)
    native["competitor"] = {**native["competitor"], "kind": "native", "mode": "native", "merger": None}
    native.pop("integrity")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    out = to_reference(seal(native), model_folders={"native": tmp_path}, names={"embedder": "org/long-model"})
    assert out["config"]["mode"] == "native_mode"
    assert out["config"]["models"]["merger"] is None
    assert out["config"]["models"]["native_embedder"]["name"] == "org/long-model"
    assert out["model_hash"] == {"native": hashlib.sha256(b"weights").hexdigest()}
    with pytest.raises(ConfigError, match="missing merger, base_embedder"):
        to_reference(results, model_folders={"native": tmp_path})


def test_init_writes_a_loadable_reference_config(tmp_path):
    from vbert.finesse.config import load_config

    target = tmp_path / "reference.yaml"
    result = CliRunner().invoke(app, ["init", "--preset", "reference", "--output", str(target)])
    assert result.exit_code == 0, result.output
    config = load_config(target)  # checks local paths; the hub data files are left as repository paths
    assert config.probes.source.data_files[-1] == "id/id_part_00000.parquet"
