"""The objectives registry: recipes and the trainer take objectives from it, so a new one is one file."""

from __future__ import annotations

import json

import pytest

from tests.train.objectives.toy_objective import TargetNormObjective, TargetNormOptions
from vbert.train.objectives import OBJECTIVES, DistillObjective, VBertObjective
from vbert.train.recipe import RecipeError, parse_recipe
from vbert.train.trainer import train

TOY_RECIPE = """
name: toy
seed: 1
model: {d_model: 16, num_layers: 1, num_heads: 2, ffn_dim: 32, ppe_dim: 4, dropout: 0.0}
training: {checkpoint_every: 5, log_every: 1, deterministic: true}
stages:
  - {name: toy, objective: OBJECTIVE, data: 'synthetic:articles?n=32&dim=16&max_len=8&seed=4',
     lr: 1.0e-2, batch_size: 8, steps: 10, OPTIONS}
"""


def toy_recipe(objective: str = "target-norm", options: str = "target-norm: {norm: 2.0}") -> str:
    return TOY_RECIPE.replace("OBJECTIVE", f"'{objective}'").replace("OPTIONS", options)


def test_builtin_objectives_are_registered():
    assert {"vbert", "distill"} <= set(OBJECTIVES.names())
    assert OBJECTIVES.get("vbert") is VBertObjective and OBJECTIVES.get("distill") is DistillObjective
    assert (VBertObjective.data_kind, DistillObjective.data_kind) == ("sequences", "pairs")


def test_a_new_objective_is_one_file_and_its_registration(tmp_path):
    assert OBJECTIVES.get("target-norm") is TargetNormObjective
    recipe = parse_recipe(toy_recipe())
    assert recipe.stages[0].options == TargetNormOptions(norm=2.0)

    output = train(recipe, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, 11))
    first, last = rows[0], rows[-1]
    assert first["loss"] >= (2.0 - first["norm"]) ** 2, (
        "the option reaches the loss (Jensen: mean of squares)"
    )
    assert abs(last["norm"] - 2.0) < 0.5 * abs(first["norm"] - 2.0), "the toy objective trains the merger"
    assert "| 1 | toy | target-norm |" in (output / "README.md").read_text()


def test_a_new_objectives_options_are_checked():
    with pytest.raises(RecipeError, match=r"stages\.0\.target-norm\.nrom: Extra inputs are not permitted"):
        parse_recipe(toy_recipe(options="target-norm: {nrom: 2.0}"))
    with pytest.raises(RecipeError, match=r"stages\.0\.target-norm\.norm: Input should be greater than 0"):
        parse_recipe(toy_recipe(options="target-norm: {norm: 0}"))
    with pytest.raises(RecipeError, match="a 'distill' block needs objective: distill"):
        parse_recipe(toy_recipe(options="distill: {loss: mse}"))


def test_an_objective_by_module_spec_needs_no_registration():
    spec = "tests.train.objectives.toy_objective:TargetNormObjective"
    recipe = parse_recipe(toy_recipe(spec, options=f"'{spec}': {{norm: 0.5}}"))
    assert recipe.stages[0].options == TargetNormOptions(norm=0.5)
    with pytest.raises(RecipeError, match="has no attribute 'Missing'"):
        parse_recipe(toy_recipe("tests.train.objectives.toy_objective:Missing", options="split: train"))
