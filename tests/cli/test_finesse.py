"""End to end through the `finesse` CLI on the tiny fake embedder:
probes → generate (merger, mean, mean-weighted, truncation, native) → score → checksum → verify
→ inspect → compare, plus `run` and the error paths users hit first."""

from __future__ import annotations

import json
import pickle

import yaml
from typer.testing import CliRunner

from vbert.cli.finesse import app
from vbert.errors import DataError, IntegrityError
from vbert.finesse.integrity import seal

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_end_to_end(tmp_path, make_config):
    config = make_config()
    conftest = config["embedder"].split(":", 1)[1].rsplit(":", 1)[0]
    config["competitors"].append(
        {"name": "native", "kind": "native", "embedder": f"py:{conftest}:make_native_embedder"}
    )
    config_file = tmp_path / "bench.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    key = tmp_path / "key"
    key.write_text("a-secret-key-of-32-characters!!!")

    result = _invoke("build-probes", "--config", config_file)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "sha256:" in result.output

    raw = tmp_path / "raw"
    result = _invoke("generate", "--config", config_file, "--output", raw)
    assert result.exit_code == 0, result.output
    names = ["merger", "mean", "mean-weighted", "truncation", "native"]
    assert all((raw / name / "manifest.json").is_file() for name in names)

    out = tmp_path / "results"
    result = _invoke("score", "--raw", raw, "--output", out, "--sign-key", key)
    assert result.exit_code == 0, result.output
    assert "| **all** |" in result.output
    assert (out / "summary.md").is_file()
    results = {name: json.loads((out / name / "results.json").read_text()) for name in names}
    mean = results["mean"]
    assert mean["formula"] == "q1q3" and mean["score_version"] == "balanced" and mean["chunk_space"] == "base"
    assert mean["lengths_evaluated"] == [3, 4, 5, 6]
    assert set(mean["lengths"]["4"]) >= {
        "scores",
        "td",
        "bu",
        "latency_full_ms",
        "latency_merge_ms",
        "mean_score",
    }
    assert mean["environment"]["machine"]["cpu"] and mean["environment"]["packages"]["numpy"]
    assert results["native"]["lengths_not_evaluated"].keys() == {"6"}
    assert results["merger"]["competitor"]["merger"]["fingerprint"] == "decay-merger-v1"

    mean_file = out / "mean" / "results.json"
    assert _invoke("checksum", "--results", mean_file, "--key-file", key).exit_code == 0
    result = _invoke("verify", "--raw", raw / "mean", "--results", mean_file)
    assert result.exit_code == 0, result.output

    # One number changed: the checksum fails.
    tampered = json.loads(mean_file.read_text())
    tampered["lengths"]["4"]["scores"][0] += 1.0
    tampered_file = tmp_path / "tampered.json"
    tampered_file.write_text(json.dumps(tampered))
    result = _invoke("checksum", "--results", tampered_file)
    assert result.exit_code == 1 and "content hash mismatch" in result.output
    # Re-sealed by a forger without the key: the hash passes, the signature and verify do not.
    forged_file = tmp_path / "forged.json"
    forged_file.write_text(json.dumps(seal(tampered)))
    assert _invoke("checksum", "--results", forged_file).exit_code == 0
    result = _invoke("checksum", "--results", forged_file, "--key-file", key)
    assert result.exit_code == 1 and "signature" in result.output
    result = _invoke("verify", "--raw", raw / "mean", "--results", forged_file)
    assert result.exit_code == 1 and "results.lengths.4.scores[0]" in result.output

    plots = tmp_path / "plots"
    result = _invoke("inspect", "--raw", raw / "merger", "--length", "5", "--best", "--output-dir", plots)
    assert result.exit_code == 0, result.output
    pngs = sorted(plots.glob("*.png"))
    assert [p.name.rsplit("_", 1)[1] for p in pngs] == ["bu.png", "td.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert _invoke("inspect", "--raw", raw / "merger", "--length", "5", "--sample", "9").exit_code == 2

    files = [out / name / "results.json" for name in names]
    result = _invoke("compare", *files, "--output", tmp_path / "compare.md")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.startswith("| L |"))
    assert header == "| L | merger | mean | mean-weighted | truncation | native |"
    assert "not evaluated" in result.output
    assert (tmp_path / "compare.md").read_text() in result.output + "\n"

    result = _invoke("run", "--config", config_file, "--output", tmp_path / "run", "--competitor", "mean")
    assert result.exit_code == 0, result.output
    rerun = json.loads((tmp_path / "run" / "results" / "mean" / "results.json").read_text())
    assert rerun["lengths"]["5"]["scores"] == mean["lengths"]["5"]["scores"]


def test_init_writes_a_preset_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "benchmark.yaml"
    result = _invoke("init", "--preset", "leaderboard", "--output", target)
    assert result.exit_code == 0, result.output
    assert "max: 64" in target.read_text()
    result = _invoke("init", "--output", target)
    assert result.exit_code == 2 and "--force" in result.output
    assert _invoke("init", "--output", target, "--force").exit_code == 0
    assert "max: 16" in target.read_text()


def test_cli_errors_are_one_clear_line(tmp_path, make_config):
    config = make_config()
    config["probes"]["tokper_sample"] = 500
    config_file = tmp_path / "bad.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = _invoke("build-probes", "--config", config_file)
    assert result.exit_code == 2
    assert "probes.tokper_sample" in result.output and "Traceback" not in result.output

    config = make_config()
    config["probes"]["sequence_length"] = {"min": 3, "max": 40}
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = _invoke("build-probes", "--config", config_file)
    assert result.exit_code == DataError.exit_code  # not enough documents: a data problem
    assert "needs" in result.output and "found only" in result.output


def test_pickled_raw_files_are_refused(tmp_path, make_config):
    config = make_config(competitors=[{"name": "mean", "kind": "mean"}])
    config_file = tmp_path / "bench.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert _invoke("run", "--config", config_file, "--output", tmp_path / "out").exit_code == 0
    raw = tmp_path / "out" / "raw" / "mean"
    manifest = json.loads((raw / "manifest.json").read_text())
    payload = pickle.dumps({"chunks": "anything"})
    (raw / "length_004.npz").write_bytes(payload)
    import hashlib

    manifest["lengths"]["4"]["sha256"] = hashlib.sha256(payload).hexdigest()  # a consistent, malicious folder
    (raw / "manifest.json").write_text(json.dumps(manifest))
    result = _invoke("score", "--raw", raw, "--output", tmp_path / "scored")
    assert result.exit_code == IntegrityError.exit_code
    assert "pickle" in result.output and "never unpickles" in result.output


def test_metrics_and_their_help_come_from_the_registry():
    from vbert.finesse.metrics import METRICS, get_metric

    result = _invoke("metrics")
    assert result.exit_code == 0, result.output
    for name in METRICS.names():
        assert f"{name}: {get_metric(name).title}" in result.output
    assert "Metrics: " + ", ".join(METRICS.names()) in " ".join(_invoke("--help").output.split())
