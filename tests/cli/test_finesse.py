"""End to end through the `finesse` CLI on the tiny fake embedder:
probes → generate (merger, mean, mean-weighted, truncation, native) → score → checksum → verify
→ inspect → compare, plus `run` and the error paths users hit first."""

from __future__ import annotations

import importlib
import json
import pickle

import pytest
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


# End to end on the real default embedder (offline multilingual-e5-small) and an untrained merger
# saved to a folder: build probes from a text folder → generate (merger, mean, mean-weighted,
# truncation) → score → checksum → verify → inspect → compare, all through the CLI.
# Real English prose that every Python installation carries: long stdlib module docstrings.
MODULES = [
    "argparse",
    "ast",
    "cmd",
    "configparser",
    "copy",
    "csv",
    "doctest",
    "ftplib",
    "heapq",
    "inspect",
    "io",
    "itertools",
    "json",
    "pdb",
    "random",
    "re",
    "sched",
    "shelve",
    "socket",
    "statistics",
    "struct",
    "subprocess",
    "timeit",
    "unittest",
    "uuid",
]


def _invoke_ok(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.integration
def test_quick_run_on_the_default_embedder(tmp_path):
    torch = pytest.importorskip("torch")
    from vbert.model import SequenceMergerConfig, SequenceMergerModel

    torch.manual_seed(0)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in MODULES:
        (corpus / f"{name}.txt").write_text(importlib.import_module(name).__doc__, encoding="utf-8")
    merger_dir = tmp_path / "untrained-merger"
    model = SequenceMergerModel(SequenceMergerConfig(d_model=384, num_layers=1, num_heads=6, ffn_dim=768))
    model.save_pretrained(merger_dir)

    config = {
        "name": "integration",
        "embedder": "default",
        "probes": {
            "file": "probes.jsonl",
            "source": {"kind": "files", "path": "corpus", "lang": "en"},
            "sequence_length": {"min": 3, "max": 5},
            "samples_per_length": 2,
            "token_per_sample": 64,
        },
        "competitors": [
            {"name": "merger", "kind": "merger", "merger": str(merger_dir)},
            {"name": "mean", "kind": "mean"},
            {"name": "mean-weighted", "kind": "mean-weighted"},
            {"name": "truncation", "kind": "truncation"},
        ],
        "runtime": {"progress": False, "warmup": 1},
    }
    config_file = tmp_path / "benchmark.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    key = tmp_path / "key"
    key.write_text("integration-test-signing-key-0123456789")

    _invoke_ok("build-probes", "--config", config_file)
    probes = [json.loads(line) for line in (tmp_path / "probes.jsonl").read_text().splitlines()]
    assert probes[0]["finesse_probe_set"]["tokenizer"]["name"] == "multilingual-e5-small"
    assert all(row["n_tokens"] <= 64 for row in probes[1:])

    _invoke_ok("generate", "--config", config_file, "--output", tmp_path / "raw")
    table = _invoke_ok(
        "score", "--raw", tmp_path / "raw", "--output", tmp_path / "results", "--sign-key", key
    )
    assert "| **all** |" in table
    names = ["merger", "mean", "mean-weighted", "truncation"]
    files = [tmp_path / "results" / name / "results.json" for name in names]
    for name, file in zip(names, files, strict=True):
        _invoke_ok("checksum", "--results", file, "--key-file", key)
        _invoke_ok("verify", "--raw", tmp_path / "raw" / name, "--results", file)
    results = {name: json.loads(file.read_text()) for name, file in zip(names, files, strict=True)}
    assert results["merger"]["competitor"]["embedder"]["name"] == "multilingual-e5-small"
    # With equal-length chunks, token weighting changes nothing.
    assert results["mean"]["summary"]["mean_score"] == pytest.approx(
        results["mean-weighted"]["summary"]["mean_score"], abs=1e-3
    )
    # Real text: mean pooling keeps its chunks apart from the following ones; truncation cannot.
    assert results["mean"]["summary"]["mean_score"] > results["truncation"]["summary"]["mean_score"]
    _invoke_ok("inspect", "--raw", tmp_path / "raw" / "mean", "--length", "5", "--worst",
            "--output-dir", tmp_path / "plots")  # fmt: skip
    assert len(list((tmp_path / "plots").glob("*.png"))) == 2
    comparison = _invoke_ok("compare", *files)
    assert "| L | merger | mean | mean-weighted | truncation |" in comparison
