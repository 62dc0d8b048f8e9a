"""The Python API: run_benchmark with injected objects, no YAML, no loading by name."""

from __future__ import annotations

from vbert.finesse import run_benchmark, verify
from vbert.finesse.integrity import check


def test_run_benchmark_with_injected_models(tmp_path, make_config, fake_embedder, decay_merger):
    config = make_config()
    config["embedder"] = "default"  # never loaded: the injected object wins
    config["probes"]["tokenizer"] = "default"
    config["competitors"][0]["merger"] = "default"
    run = run_benchmark(config, tmp_path / "out", embedder=fake_embedder, mergers={"merger": decay_merger})
    assert set(run.results) == {"merger", "mean", "mean-weighted", "truncation"}
    assert run.probe_set.params["tokenizer"]["name"] == "fake-words"  # the injected embedder cut the probes
    merger = run.results["merger"]
    assert merger["competitor"]["merger"]["name"] == "decay-merger"
    assert check(merger) == []
    assert verify(run.raw_dir / "merger", merger) == []
    assert "| L | merger | mean | mean-weighted | truncation |" in run.summary
    assert (tmp_path / "out" / "results" / "summary.md").read_text() == run.summary
    # Running again reuses everything already written: nothing is embedded, the results are identical.
    embedded = fake_embedder.texts
    again = run_benchmark(config, tmp_path / "out", embedder=fake_embedder, mergers={"merger": decay_merger})
    assert fake_embedder.texts == embedded
    assert again.results == run.results
