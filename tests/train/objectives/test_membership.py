"""The ``membership`` objective trains through the registry on sequences (issue 12)."""

from __future__ import annotations

import json
import math

from vbert.train.objectives import OBJECTIVES
from vbert.train.objectives.membership import MembershipObjective, MembershipOptions
from vbert.train.recipe import parse_recipe
from vbert.train.trainer import train

RECIPE = """
name: membership-toy
seed: 1
model: {d_model: 16, num_layers: 1, num_heads: 2, ffn_dim: 32, ppe_dim: 4, dropout: 0.0}
training: {checkpoint_every: 20, log_every: 1, deterministic: true}
stages:
  - {name: long, objective: membership, data: 'synthetic:articles?n=48&dim=16&min_len=16&max_len=40&seed=4',
     lr: 3.0e-3, batch_size: 8, steps: 12, membership: {prefixes: 3, anchor_weight: 1.0}}
"""


def test_membership_objective_trains_from_a_recipe(tmp_path):
    assert OBJECTIVES.get("membership") is MembershipObjective
    recipe = parse_recipe(RECIPE)
    assert recipe.stages[0].options == MembershipOptions(prefixes=3, anchor_weight=1.0)
    train(recipe, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r.get("event", "train") == "train" and "loss" in r]
    assert len(train_rows) == 12
    for row in train_rows:
        assert all(math.isfinite(row[k]) for k in ("loss", "in_batch", "top_down", "bottom_up", "anchor_cos"))
    first, last = train_rows[0], train_rows[-1]
    assert last["top_down"] + last["bottom_up"] < first["top_down"] + first["bottom_up"]
    assert last["anchor_cos"] > 0.5
