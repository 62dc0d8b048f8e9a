"""End to end on the real default embedder (offline multilingual-e5-small) and an untrained merger
saved to a folder: build probes from a text folder → generate (merger, mean, mean-weighted,
truncation) → score → checksum → verify → inspect → compare, all through the CLI."""

from __future__ import annotations

import importlib
import json

import pytest
import yaml
from typer.testing import CliRunner

from vbert.cli.finesse import app

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

pytestmark = pytest.mark.integration


def _invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


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

    _invoke("build-probes", "--config", config_file)
    probes = [json.loads(line) for line in (tmp_path / "probes.jsonl").read_text().splitlines()]
    assert probes[0]["finesse_probe_set"]["tokenizer"]["name"] == "multilingual-e5-small"
    assert all(row["n_tokens"] <= 64 for row in probes[1:])

    _invoke("generate", "--config", config_file, "--output", tmp_path / "raw")
    table = _invoke("score", "--raw", tmp_path / "raw", "--output", tmp_path / "results", "--sign-key", key)
    assert "| **all** |" in table
    names = ["merger", "mean", "mean-weighted", "truncation"]
    files = [tmp_path / "results" / name / "results.json" for name in names]
    for name, file in zip(names, files, strict=True):
        _invoke("checksum", "--results", file, "--key-file", key)
        _invoke("verify", "--raw", tmp_path / "raw" / name, "--results", file)
    results = {name: json.loads(file.read_text()) for name, file in zip(names, files, strict=True)}
    assert results["merger"]["competitor"]["embedder"]["name"] == "multilingual-e5-small"
    # With equal-length chunks, token weighting changes nothing.
    assert results["mean"]["summary"]["mean_score"] == pytest.approx(
        results["mean-weighted"]["summary"]["mean_score"], abs=1e-3
    )
    # Real text: mean pooling keeps its chunks apart from the following ones; truncation cannot.
    assert results["mean"]["summary"]["mean_score"] > results["truncation"]["summary"]["mean_score"]
    _invoke("inspect", "--raw", tmp_path / "raw" / "mean", "--length", "5", "--worst",
            "--output-dir", tmp_path / "plots")  # fmt: skip
    assert len(list((tmp_path / "plots").glob("*.png"))) == 2
    comparison = _invoke("compare", *files)
    assert "| L | merger | mean | mean-weighted | truncation |" in comparison
