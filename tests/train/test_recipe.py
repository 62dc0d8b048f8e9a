"""Recipe schema: the shipped recipes validate and say what they claim; bad recipes fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbert.errors import ConfigError
from vbert.model import SequenceMergerConfig
from vbert.train.objectives import DistillOptions, VBertOptions
from vbert.train.recipe import ARCHITECTURE_FIELDS, ModelSpec, Recipe, RecipeError, load_recipe, parse_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
MINIMAL = """
name: t
model: {d_model: 16, num_layers: 1, num_heads: 2, ffn_dim: 16, ppe_dim: 4}
stages:
  - {name: a, objective: distill, data: "synthetic:pairs", lr: 1.0e-3, batch_size: 4, steps: 3}
"""


def recipe_with(stage_extra: str = "", top_extra: str = "", model: str | None = None) -> str:
    model = model or "{d_model: 16, num_layers: 1, num_heads: 2, ffn_dim: 16, ppe_dim: 4}"
    return (
        f"name: t\nmodel: {model}\n{top_extra}\nstages:\n"
        f"  - {{name: a, objective: distill, data: 'synthetic:pairs', lr: 1.0e-3, batch_size: 4{stage_extra}}}\n"
    )


def test_every_shipped_recipe_validates():
    names = {path.stem for path in RECIPES.glob("*.yaml")}
    assert {
        "rocket",
        "distill-10to1",
        "overload",
        "vbert-only",
        "rocket-no-ppe",
        "rocket-additive-pe",
        "rocket-no-residual",
        "tiny",
    } <= names
    for path in RECIPES.glob("*.yaml"):
        recipe = load_recipe(path)
        assert recipe.name == path.stem


def test_rocket_is_the_published_protocol():
    rocket = load_recipe(RECIPES / "rocket.yaml")
    vbert, overload, refine = rocket.stages
    d = rocket.model.d_model
    assert (vbert.objective, overload.objective, refine.objective) == ("vbert", "distill", "distill")
    assert vbert.ppe_dim == d // 2 and overload.ppe_dim == refine.ppe_dim == 16
    assert overload.lr > refine.lr, "Progressive Overload uses the higher learning rate"
    assert refine.steps is not None and refine.steps > max(vbert.steps, overload.steps)
    assert "512" in overload.data and "10-to-1" in refine.data
    assert rocket.validation.probes is not None and rocket.validation.pairs is not None


def test_ablations_are_the_rocket_minus_one_thing():
    rocket = load_recipe(RECIPES / "rocket.yaml")
    stages = {stage.name: stage for stage in rocket.stages}

    def same(recipe_name: str, names: list[str]) -> None:
        recipe = load_recipe(RECIPES / f"{recipe_name}.yaml")
        assert [stage.name for stage in recipe.stages] == names
        for stage in recipe.stages:
            assert stage == stages[stage.name]
        assert recipe.model == rocket.model and recipe.validation == rocket.validation

    same("distill-10to1", ["refine"])
    same("overload", ["overload", "refine"])
    same("vbert-only", ["vbert"])

    no_ppe = load_recipe(RECIPES / "rocket-no-ppe.yaml")
    assert no_ppe.model.position_mode == "none" and all(stage.ppe_dim is None for stage in no_ppe.stages)
    additive = load_recipe(RECIPES / "rocket-additive-pe.yaml")
    assert additive.model.position_mode == "additive" and all(s.ppe_dim is None for s in additive.stages)
    no_residual = load_recipe(RECIPES / "rocket-no-residual.yaml")
    assert not no_residual.model.residual_to_mean and no_residual.stages == rocket.stages
    assert no_residual.model.model_copy(update={"residual_to_mean": True}) == rocket.model
    for ablation in (no_ppe, additive):
        assert [s.model_copy(update={"ppe_dim": None}) for s in ablation.stages] == [
            s.model_copy(update={"ppe_dim": None}) for s in rocket.stages
        ]


def test_tiny_recipe_runs_every_objective_on_synthetic_data():
    tiny = load_recipe(RECIPES / "tiny.yaml")
    assert [stage.objective for stage in tiny.stages] == ["vbert", "distill", "distill"]
    assert all(stage.data.startswith("synthetic:") for stage in tiny.stages)
    assert tiny.training.deterministic


def test_defaults_are_filled_per_objective():
    recipe = parse_recipe(MINIMAL)
    stage = recipe.stages[0]
    assert isinstance(stage.options, DistillOptions) and stage.options.loss == "cosine"
    vbert = parse_recipe(MINIMAL.replace("objective: distill", "objective: vbert")).stages[0]
    assert isinstance(vbert.options, VBertOptions)
    assert vbert.options.detach_target is True and vbert.options.representation == "pooled"
    dumped = vbert.model_dump(mode="json")
    assert (
        dumped["vbert"] == vbert.options.model_dump() and "options" not in dumped and "distill" not in dumped
    )
    assert recipe.fingerprint() == parse_recipe(MINIMAL + "\n").fingerprint()
    assert recipe.fingerprint() != parse_recipe(MINIMAL.replace("steps: 3", "steps: 4")).fingerprint()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (recipe_with(", steps: 3, step: 4"), r"stages\.0\.step: Extra inputs are not permitted"),
        (recipe_with(", steps: 3", top_extra="trainig: {}"), r"trainig: Extra inputs are not permitted"),
        (recipe_with(), "exactly one of steps or epochs"),
        (recipe_with(", steps: 3, epochs: 1"), "exactly one of steps or epochs"),
        (recipe_with(", steps: 3, warmup_steps: 1, warmup_ratio: 0.1"), "warmup_steps or warmup_ratio"),
        (recipe_with(", steps: 3, batching: sorted"), r"stages\.0\.batching: Input should be"),
        (recipe_with(", steps: 3, vbert: {}"), "needs objective: vbert"),
        (recipe_with(", steps: 3, max_length: 8"), "no longer match its target"),
        (recipe_with(", steps: 3, ppe_dim: 5"), "even number between 0 and d_model // 2 = 8"),
        (recipe_with(", steps: 3, ppe_dim: 10"), "even number between 0 and d_model // 2 = 8"),
        (recipe_with(", steps: 3, distill: {loss: huber}"), r"stages\.0\.distill\.loss"),
        (
            recipe_with(
                ", steps: 3, ppe_dim: 4",
                model="{d_model: 16, num_heads: 2, ppe_dim: 4, position_mode: additive}",
            ),
            "only apply to position_mode ppe",
        ),
        (recipe_with(", steps: 3", model="{init_from: some/folder, d_model: 16}"), r"remove \['d_model'\]"),
        (recipe_with(", steps: 3", model="{d_model: 16, num_heads: 3}"), "divisible by num_heads"),
        (
            recipe_with(", steps: 3", model="{d_model: 16, num_heads: 2, ppe_dim: 10}"),
            "ppe_dim must be an even",
        ),
        (
            recipe_with(", steps: 3", model="{d_model: 16, num_heads: 2, dropout: 1.5}"),
            r"dropout must be in \[0, 1\)",
        ),
        (
            recipe_with(", steps: 3", model="{d_model: 16, num_heads: 2, position_mode: rope}"),
            r"model\.position_mode",
        ),
        (
            recipe_with(", steps: 3, objective: contrastive"),
            r"unknown objective 'contrastive'; known: .*distill",
        ),
        (
            recipe_with(", steps: 3, distill: {lost: mse}"),
            r"stages\.0\.distill\.lost: Extra inputs are not permitted",
        ),
        (recipe_with(", steps: 3, options: {loss: mse}"), "a block named after it"),
        ("name: t\nstages: []\n", "at least 1 item"),
        ("- just a list\n", "must hold a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_recipes_name_the_problem(text: str, message: str):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(text, "bad.yaml")


def test_vbert_stage_needs_two_sequences_and_unique_names():
    with pytest.raises(RecipeError, match="batch_size >= 2"):
        parse_recipe(
            MINIMAL.replace("objective: distill", "objective: vbert").replace(
                "batch_size: 4", "batch_size: 1"
            )
        )
    doubled = MINIMAL + "  - {name: a, objective: distill, data: x, lr: 1.0e-3, batch_size: 4, steps: 3}\n"
    with pytest.raises(RecipeError, match=r"repeated: \['a'\]"):
        parse_recipe(doubled)


def test_model_settings_are_the_configs():
    """The model block's defaults are SequenceMergerConfig's, not a copy."""
    config = SequenceMergerConfig()
    assert ModelSpec().architecture() == {name: getattr(config, name) for name in ARCHITECTURE_FIELDS}
    assert set(ModelSpec.model_fields) == {"init_from", *ARCHITECTURE_FIELDS}


def test_recipe_fingerprints_are_those_of_the_shipped_runs():
    """Recipes hash as they did when the shipped model was trained (its card records the fingerprint)."""
    card = (RECIPES.parent / "src" / "vbert" / "pretrained" / "default-merger" / "README.md").read_text()
    assert "Recipe `retrieval-finetune` (fingerprint `0383bd5ac1c82cbf`)" in card
    assert load_recipe(RECIPES / "retrieval-finetune.yaml").fingerprint() == "0383bd5ac1c82cbf"
    assert load_recipe(RECIPES / "distill-10to1.yaml").fingerprint() == "c1c44c29d82441d3"
    assert load_recipe(RECIPES / "rocket.yaml").fingerprint() == "d379346d2a8abcad"
    assert load_recipe(RECIPES / "tiny.yaml").fingerprint() == "a4aee59ba8a077b4"


def test_batching_is_hashed_only_when_set_away_from_its_default():
    tiny = (RECIPES / "tiny.yaml").read_text()
    assert "batching" not in tiny and tiny.count("    batch_size: 16\n") == 3
    bucketed = tiny.replace("    batch_size: 16\n", "    batch_size: 16\n    batching: length-buckets\n")
    assert parse_recipe(bucketed).fingerprint() == "a4aee59ba8a077b4"
    shuffled = parse_recipe(bucketed.replace("batching: length-buckets", "batching: random", 1))
    assert [stage.batching for stage in shuffled.stages] == ["random", "length-buckets", "length-buckets"]
    assert shuffled.fingerprint() != "a4aee59ba8a077b4"
    assert Recipe.model_validate(shuffled.model_dump(mode="json")) == shuffled


def test_a_dumped_recipe_validates_to_the_same_recipe():
    recipe = load_recipe(RECIPES / "rocket.yaml")
    assert Recipe.model_validate(recipe.model_dump(mode="json")) == recipe


def test_recipe_errors_are_config_errors():
    assert issubclass(RecipeError, ConfigError)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")
