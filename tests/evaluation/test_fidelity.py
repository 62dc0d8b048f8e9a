import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vbert import MeanPoolMerger
from vbert.evaluation.fidelity import distillation_fidelity, format_fidelity_markdown


class FirstChunk:
    """A deliberately poor merger: keeps only the first vector."""

    fingerprint = "first-chunk"

    def merge_batch(self, batch, mask, weights=None):
        return batch[:, 0] / np.linalg.norm(batch[:, 0], axis=1, keepdims=True)


def _pairs(n: int = 60, dim: int = 8, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        inputs = rng.normal(size=(2 + i % 9, dim)).astype(np.float32)
        inputs /= np.linalg.norm(inputs, axis=1, keepdims=True)
        target = inputs.mean(axis=0)
        pairs.append({"inputs": inputs, "target": target / np.linalg.norm(target)})
    return pairs


def test_mean_pooling_is_exact_when_the_teacher_is_the_mean():
    report = distillation_fidelity(_pairs(), {"mean": MeanPoolMerger(), "first": FirstChunk()})
    mean, first = report["methods"]["mean"], report["methods"]["first"]
    assert mean["cosine"]["mean"] == pytest.approx(1.0, abs=1e-5)
    assert first["cosine"]["mean"] < 0.8
    low, high = first["minus_baseline"]["ci95"]
    assert low <= first["minus_baseline"]["mean"] <= high < 0
    assert set(mean["by_length"]) == {"2-4", "5-7", "8-10"}
    assert sum(band["n"] for band in mean["by_length"].values()) == 60
    table = format_fidelity_markdown(report)
    assert "| first |" in table and "minus mean" in table


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="no pairs"):
        distillation_fidelity([], {"mean": MeanPoolMerger()})
    with pytest.raises(ValueError, match="baseline 'mean' is not among"):
        distillation_fidelity(_pairs(4), {"first": FirstChunk()})


def test_cli_scores_a_built_dataset(tmp_path):
    from vbert.cli.main import app
    from vbert.data.datasets import CommonOptions, build_n_to_one
    from vbert.testing.toy import ToyEmbedder, toy_articles

    options = CommonOptions(split_rule=lambda a: "test", split_spec="all test")
    build_n_to_one(
        toy_articles(6, seed=0, max_words=120),
        ToyEmbedder(dim=16, max_tokens=64),
        tmp_path / "pairs",
        max_chunks=5,
        chunk_tokens=8,
        options=options,
    )
    out = tmp_path / "distill.json"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "distill",
            "--data",
            str(tmp_path / "pairs"),
            "--merger",
            "mean",
            "--merger",
            "weighted=mean-weighted",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["methods"]) == {"mean", "weighted"}
    assert 0 < report["methods"]["mean"]["cosine"]["mean"] <= 1
    assert report["embedder"]["name"] == "toy-embedder"
