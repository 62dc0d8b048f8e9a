"""Fuzzing the recipe parser (#16): any text, any bytes, any edit of a shipped recipe gives a
valid :class:`Recipe` or a :class:`RecipeError`, never a traceback."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.mutations import edited
from vbert.errors import ConfigError
from vbert.train.recipe import Recipe, RecipeError, load_recipe, parse_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SHIPPED = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(RECIPES.glob("*.yaml"))]
FUZZ = settings(max_examples=150, deadline=None)


def _parsed_or_refused(text: str) -> None:
    try:
        recipe = parse_recipe(text, "fuzzed.yaml")
    except RecipeError as err:
        assert "fuzzed.yaml" in str(err)
        return
    assert isinstance(recipe, Recipe)
    recipe.fingerprint()
    for stage in recipe.stages:
        stage.warmup_for(100)


@FUZZ
@given(st.sampled_from(SHIPPED).flatmap(edited))
def test_edited_recipes_parse_or_fail_with_a_recipe_error(recipe):
    _parsed_or_refused(yaml.safe_dump(recipe, allow_unicode=True))


@FUZZ
@given(st.text(alphabet=st.sampled_from("ab: -[]{}&*!|>\"'#\n\t0.,") | st.characters(), max_size=200))
def test_any_text_parses_or_fails_with_a_recipe_error(text):
    _parsed_or_refused(text)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_any_file_loads_or_fails_with_a_recipe_error(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "recipe.yaml")
        path.write_bytes(content)
        with contextlib.suppress(RecipeError):
            load_recipe(path)


@pytest.mark.parametrize("text", ["[" * 1_000, "a: " + "{b: " * 50_000, "- " * 5_000 + "x"])
def test_deeply_nested_yaml_is_a_recipe_error(text):
    """Regression: PyYAML's recursive composer raised RecursionError out of parse_recipe."""
    with pytest.raises(ConfigError, match="nested too deeply|not valid YAML|must hold a mapping"):
        parse_recipe(text)


def test_a_recipe_file_that_is_not_utf8_is_a_recipe_error(tmp_path):
    """Regression: load_recipe let UnicodeDecodeError out."""
    path = tmp_path / "recipe.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(RecipeError, match="not UTF-8"):
        load_recipe(path)
