"""The ``query-document`` objective: its InfoNCE by hand, learning a toy problem, and `vbert train` on built data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.data.test_query_documents import PLAN, topic_documents
from vbert.cli.train import app
from vbert.data.query_documents import build_query_documents, write_query_documents
from vbert.errors import ConfigError
from vbert.model import SequenceMergerModel
from vbert.testing import WordHashEmbedder
from vbert.testing.tiny_models import tiny_merger
from vbert.train.objectives import OBJECTIVES
from vbert.train.objectives.query_document import (
    QueryDocumentObjective,
    QueryDocumentOptions,
    query_document_loss,
)
from vbert.train.recipe import load_recipe


def _items(documents, queries, langs):
    return [
        {
            "inputs": np.asarray(d, np.float32),
            "queries": np.asarray(q, np.float32).reshape(-1, 2),
            "lang": lang,
        }
        for d, q, lang in zip(documents, queries, langs, strict=True)
    ]


def test_two_documents_by_hand():
    # merged = the chunks' mean (an untrained residual-to-mean merger): doc 0 → (1, 0), doc 1 → (0, 1)
    documents = [[[1.0, 1.0], [1.0, -1.0]], [[1.0, 1.0], [-1.0, 1.0], [0.0, 1.0]]]
    queries = [[[3.0, 4.0]], [[0.0, 2.0], [1.0, 0.0]]]  # doc 0 asked once, doc 1 twice
    batch = QueryDocumentObjective.collate(_items(documents, queries, ["en", "en"]), None)
    assert batch["queries"].shape == (3, 2) and batch["query_document"].tolist() == [0, 1, 1]
    assert batch["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    tau = 0.5
    # cosines of each query with (doc 0, doc 1): (0.6, 0.8), (0, 1), (1, 0); target docs 0, 1, 1
    by_hand = np.mean(
        [
            -0.6 / tau + math.log(math.exp(0.6 / tau) + math.exp(0.8 / tau)),
            -1.0 / tau + math.log(math.exp(0.0) + math.exp(1.0 / tau)),
            -0.0 / tau + math.log(math.exp(1.0 / tau) + math.exp(0.0)),
        ]
    )
    merged = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss, accuracy = query_document_loss(
        batch["queries"],
        merged,
        batch["query_document"],
        batch["same_language"][batch["query_document"]],
        tau,
    )
    assert loss.item() == pytest.approx(by_hand, rel=1e-6) and accuracy.item() == pytest.approx(1 / 3)

    merger = tiny_merger(2, num_heads=1, ppe_dim=0).eval()
    options = QueryDocumentOptions(temperature=tau, chunk_weight=0.0, anchor_weight=0.0)
    out = QueryDocumentObjective(merger, options)(**batch, seed=0)
    assert out["loss"].item() == pytest.approx(by_hand, rel=1e-5)
    assert out["anchor_cos"].item() == pytest.approx(1.0, abs=1e-6) and "chunk" not in out

    # documents of other languages never compete: each query has only its own document left
    apart = QueryDocumentObjective.collate(_items(documents, queries, ["en", "de"]), None)
    assert apart["same_language"].tolist() == [[True, False], [False, True]]
    assert QueryDocumentObjective(merger, options)(**apart, seed=0)["query"].item() == pytest.approx(0.0)


def test_the_loss_falls_on_a_toy_problem():
    """Documents share a topic direction; each query is one of its document's chunks plus noise."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    d, n_docs = 16, 12
    topic = rng.standard_normal(d) * 2
    documents = [topic + rng.standard_normal((int(rng.integers(6, 14)), d)) for _ in range(n_docs)]
    queries = [doc[rng.integers(len(doc), size=2)] + 0.3 * rng.standard_normal((2, d)) for doc in documents]
    items = [
        {"inputs": doc.astype(np.float32), "queries": q.astype(np.float32), "lang": "en"}
        for doc, q in zip(documents, queries, strict=True)
    ]
    batch = QueryDocumentObjective.collate(items, None)
    options = QueryDocumentOptions(temperature=0.05, chunk_weight=1.0, anchor_weight=0.1)
    objective = QueryDocumentObjective(tiny_merger(d), options)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        out = objective(**batch, seed=step)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append((out["query"].item(), out["chunk"].item()))
    first, last = np.mean(losses[:5], axis=0), np.mean(losses[-5:], axis=0)
    assert last[0] < 0.8 * first[0] and last[1] < first[1]
    assert torch.isfinite(out["loss"]) and 0.0 <= out["query_acc"].item() <= 1.0


def test_the_shipped_recipe_has_the_experiments_settings():
    recipe = load_recipe(Path(__file__).resolve().parents[3] / "recipes" / "retrieval-finetune.yaml")
    (stage,) = recipe.stages
    assert stage.objective == "query-document" and stage.lr == 1e-5 and stage.batching == "random"
    assert stage.options == QueryDocumentOptions(temperature=0.05, chunk_weight=1.0, anchor_weight=100.0)
    assert (recipe.model.num_layers, recipe.model.d_model, recipe.model.residual_to_mean) == (2, 384, True)


RECIPE = """
name: query-document-toy
seed: 0
model: {{d_model: 16, num_layers: 1, num_heads: 2, ffn_dim: 32, ppe_dim: 4, dropout: 0.0}}
training: {{checkpoint_every: 6, log_every: 1, deterministic: true}}
stages:
  - {{name: retrieval, objective: query-document, data: {data}, lr: 1.0e-3, batch_size: 4, steps: 6,
     query-document: {{temperature: 0.1, chunk_weight: 1.0, anchor_weight: 10.0}}}}
"""


def test_vbert_train_runs_a_recipe_on_a_built_dataset(tmp_path):
    assert OBJECTIVES.get("query-document") is QueryDocumentObjective
    embedder = WordHashEmbedder(16, content_window=30, name="word-hash", fingerprint="wh-16")
    rows = build_query_documents(topic_documents(6), embedder, None, PLAN).rows
    data = tmp_path / "data" / "query-documents.parquet"
    write_query_documents(
        rows, data, PLAN, embedder={"name": embedder.name, "fingerprint": embedder.fingerprint}
    )
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(data=data), encoding="utf-8")
    output = tmp_path / "run"
    result = CliRunner().invoke(app, ["--recipe", str(recipe), "--output", str(output), "--no-progress"])
    assert result.exit_code == 0, result.output
    lines = (output / "metrics.jsonl").read_text().splitlines()
    train_rows = [r for r in map(json.loads, lines) if r["event"] == "train"]
    assert len(train_rows) == 6
    for row in train_rows:
        assert all(math.isfinite(row[k]) for k in ("loss", "query", "query_acc", "chunk", "anchor_cos"))
    merger = SequenceMergerModel.from_pretrained(output / "model")
    assert merger.config.d_model == 16
    with pytest.raises(ConfigError, match="no splits"):
        QueryDocumentObjective.open_data(str(data), "validation")
    card = (output / "model" / "README.md").read_text()
    assert "query-document" in card and str(data) in card
