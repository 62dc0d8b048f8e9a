"""Metrics as classes: the registry, a toy metric end to end, names from the merger registry,
and the files a run writes (normal permissions; raw manifests confined to their folder)."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from vbert.errors import ConfigError, IntegrityError
from vbert.files import normal_file_mode
from vbert.finesse import METRICS, get_metric, run_benchmark, verify
from vbert.finesse.config import competitor_kinds, parse_config
from vbert.finesse.metrics import FinesseMetric
from vbert.finesse.raw import RawRun
from vbert.finesse.scoring import markdown_table
from vbert.mergers import MERGERS, baseline_names
from vbert.testing import undo_registrations


def test_builtin_metrics_are_registered_classes():
    assert METRICS.names()[:2] == ["rss", "srs"]
    for name in ("rss", "srs"):
        metric = get_metric(name)
        assert isinstance(metric, FinesseMetric) and metric.name == name
        assert metric.metadata()["title"] and metric.columns()
    assert get_metric("rss").has_matrices and not get_metric("srs").has_matrices
    assert get_metric("srs").chunks_per_sample(5, 3) == 4 + 3 * 3


def test_config_allowed_values_come_from_the_registries(make_config):
    assert competitor_kinds() == ["merger", *baseline_names(), "native"]
    with pytest.raises(ConfigError, match="unknown metric 'nope'; use one of rss, srs"):
        parse_config(make_config(metric="nope"), check_paths=False)
    with pytest.raises(ConfigError, match="unknown competitor kind 'median'.*mean-weighted"):
        parse_config(make_config(competitors=[{"name": "m", "kind": "median"}]), check_paths=False)
    with pytest.raises(ConfigError, match="not a FinesseMetric"):
        parse_config(make_config(metric="vbert.mergers:MeanPoolMerger"), check_paths=False)


def test_a_new_baseline_is_a_competitor_kind_and_a_module_factory_spec_is_a_merger(
    tmp_path, make_config, monkeypatch
):
    monkeypatch.setitem(MERGERS._entries, "mean-copy", MERGERS.get("mean"))
    config = make_config(
        competitors=[
            {"name": "copy", "kind": "mean-copy"},
            {"name": "spec", "kind": "merger", "merger": "vbert.mergers:MeanPoolMerger"},
            {"name": "named", "kind": "merger", "merger": "truncation"},
        ]
    )
    run = run_benchmark(config, tmp_path / "out")
    copy, spec = run.results["copy"], run.results["spec"]
    assert copy["competitor"]["kind"] == "mean-copy" and copy["competitor"]["merger"]["name"] == "mean-pool"
    assert spec["competitor"]["merger"]["spec"] == "vbert.mergers:MeanPoolMerger"
    scores = {
        name: {n: e["scores"] for n, e in run.results[name]["lengths"].items()} for name in ("copy", "spec")
    }
    assert scores["spec"] == scores["copy"]  # the same merger, reached two ways
    assert run.results["named"]["competitor"]["merger"]["name"] == "truncation"


@pytest.fixture
def toy_metric_spec():
    with undo_registrations(METRICS, "tests.finesse.metrics.toy_metric"):
        yield "tests.finesse.metrics.toy_metric:Recency"


def test_a_toy_metric_is_one_file_and_runs_end_to_end(tmp_path, make_config, toy_metric_spec):
    toy = toy_metric_spec
    config = make_config(metric=toy)  # a spec; importing it also registers "recency"
    run = run_benchmark(config, tmp_path / "out")
    assert "recency" in METRICS.names()
    results = run.results["mean"]
    assert results["metric"] == toy and results["score_scale"] == 100.0
    assert results["score_version"] is None
    assert set(results["summary"]) == {"samples", "mean_score"}
    assert verify(run.raw_dir / "mean", results) == []
    # The truncation baseline keeps only the first chunk: maximally biased towards it.
    truncation = run.results["truncation"]["lengths"]["5"]["scores"]
    assert all(score < 0 for score in truncation)
    assert "| L | samples | recency |" in markdown_table(results)
    # By its registered name, too.
    by_name = make_config(metric="recency")
    by_name["probes"]["file"] = str(tmp_path / "probes-by-name.parquet")
    again = run_benchmark(by_name, tmp_path / "again")
    assert again.results["mean"]["metric"] == "recency"
    assert again.results["mean"]["lengths"] == results["lengths"]


def test_every_output_gets_normal_permissions(tmp_path, make_config):
    """Regression (#16 defect 5): mkstemp's private 0600 leaked into results, manifests and raw files."""
    config = make_config(competitors=[{"name": "mean", "kind": "mean"}])
    run_benchmark(config, tmp_path / "out")
    written = [
        tmp_path / "probes.parquet",
        tmp_path / "out" / "raw" / "mean" / "manifest.json",
        tmp_path / "out" / "raw" / "mean" / "length_004.npz",
        tmp_path / "out" / "raw" / "_chunks" / "manifest.json",
        tmp_path / "out" / "raw" / "_chunks" / "length_004.npz",
        tmp_path / "out" / "results" / "mean" / "results.json",
        tmp_path / "out" / "results" / "mean" / "results.md",
        tmp_path / "out" / "results" / "summary.md",
    ]
    for file in written:
        assert stat.S_IMODE(os.stat(file).st_mode) == normal_file_mode(), file


@pytest.mark.parametrize("escape", ["../other/length_004.npz", "absolute", "sub/../../other/length_004.npz"])
def test_raw_manifests_cannot_point_outside_their_folder(tmp_path, make_config, escape):
    """Regression (#16 defect 10): a manifest's "file" pointing at another run's npz was scored."""
    config = make_config(
        competitors=[{"name": "mean", "kind": "mean"}, {"name": "other", "kind": "truncation"}]
    )
    run_benchmark(config, tmp_path / "out")
    raw = tmp_path / "out" / "raw"
    foreign = raw / "other" / "length_004.npz"
    manifest_file = raw / "mean" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    entry = manifest["lengths"]["4"]
    entry["file"] = str(foreign) if escape == "absolute" else escape
    entry["sha256"] = json.loads((raw / "other" / "manifest.json").read_text())["lengths"]["4"]["sha256"]
    manifest_file.write_text(json.dumps(manifest))
    run = RawRun.open(raw / "mean")
    with pytest.raises(IntegrityError, match="outside the run folder"):
        run.arrays(4)
    assert np.array_equal(run.arrays(5)["chunks"], RawRun.open(raw / "mean").arrays(5)["chunks"])
