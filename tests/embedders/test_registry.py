"""The embedder registry: declarative entries, and ``load_embedder`` reading them."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from vbert.embedders import EMBEDDERS, Embedder, EmbedderEntry, load_embedder
from vbert.embedders.registry import entry_for_hub_id, entry_named
from vbert.errors import ConfigError


def test_builtin_entries_declare_what_the_loaders_need() -> None:
    assert EMBEDDERS.names()[:3] == ["default", "multilingual-e5-base", "minilm"]
    small, base, minilm = (EMBEDDERS.get(name) for name in ("default", "multilingual-e5-base", "minilm"))
    assert (small.name, small.hub_id, small.dim, small.max_tokens) == (
        "multilingual-e5-small",
        "intfloat/multilingual-e5-small",
        384,
        512,
    )
    assert small.builder is not None, "the default is built offline"
    assert (base.dim, base.builder, base.license) == (768, None, "mit")
    for e5 in (small, base):
        assert (e5.passage_prefix, e5.query_prefix, e5.pooling) == ("passage: ", "query: ", "mean")
    assert (minilm.name, minilm.max_tokens, minilm.passage_prefix, minilm.query_prefix) == (
        "all-MiniLM-L6-v2",
        256,
        "",
        "",
    )


def test_hub_ids_find_their_entry_whatever_the_case() -> None:
    assert entry_for_hub_id("intfloat/multilingual-e5-base") is EMBEDDERS.get("multilingual-e5-base")
    assert entry_for_hub_id("INTFLOAT/Multilingual-E5-Small") is EMBEDDERS.get("default")
    assert entry_for_hub_id("intfloat/e5-small-v2") is None, "no guessing from the name"


@pytest.fixture
def tiny_entry(tiny_model_dir: Path):
    """A registered entry whose builder returns the tiny test model."""
    entry = EmbedderEntry(
        name="tiny-registered",
        builder=lambda: (tiny_model_dir, {}),
        max_tokens=100,
        dim=32,
        pooling="cls",
        license="mit",
        passage_prefix="doc: ",
        query_prefix="ask: ",
    )
    EMBEDDERS.register("tiny-registered", entry)
    yield entry
    EMBEDDERS._entries.pop("tiny-registered")


def test_load_embedder_takes_settings_from_the_entry(tiny_entry, tiny_model_dir: Path) -> None:
    embedder = load_embedder("tiny-registered", device="cpu")
    assert (embedder.name, embedder.max_tokens, embedder.pooling, embedder.prefix, embedder.query_prefix) == (
        "tiny-registered",
        100,
        "cls",
        "doc: ",
        "ask: ",
    )
    assert load_embedder("Tiny-Registered", prefix="").prefix == "", "arguments override the entry"
    assert entry_named("multilingual-e5-small") is EMBEDDERS.get("default"), "display names load too"
    assert entry_named("ALL-MINILM-L6-V2") is EMBEDDERS.get("minilm")
    copy = tiny_entry.load(tiny_model_dir, device="cpu")  # a local copy of a registered model
    assert (copy.prefix, copy.pooling, copy.max_tokens) == ("doc: ", "cls", 100)
    assert copy.fingerprint == embedder.fingerprint


def test_entries_need_a_source_and_a_known_pooling() -> None:
    with pytest.raises(ConfigError, match="hub_id or a builder"):
        EmbedderEntry(name="x", max_tokens=8, dim=8, pooling="mean", license="mit")
    with pytest.raises(ConfigError, match="pooling 'max'"):
        EmbedderEntry(name="x", hub_id="a/b", max_tokens=8, dim=8, pooling="max", license="mit")  # type: ignore[arg-type]


def test_module_factory_specs(tiny_embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = types.ModuleType("vbert_test_embedder_plugin")
    plugin.make = lambda **kwargs: tiny_embedder
    plugin.not_an_embedder = lambda **kwargs: object()
    plugin.entry = EmbedderEntry(
        name="from-spec", builder=lambda: (Path(tiny_embedder.model_dir), {}), max_tokens=64, dim=32,
        pooling="mean", license="mit",
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, plugin.__name__, plugin)
    assert load_embedder("vbert_test_embedder_plugin:make") is tiny_embedder
    assert load_embedder("vbert_test_embedder_plugin:entry", device="cpu").name == "from-spec"
    with pytest.raises(ConfigError, match="lacks the Embedder protocol"):
        load_embedder("vbert_test_embedder_plugin:not_an_embedder")
    with pytest.raises(ConfigError, match="has no attribute 'missing'"):
        load_embedder("vbert_test_embedder_plugin:missing")


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("minilm2", "unknown embedder 'minilm2'.*default, multilingual-e5-base, minilm"),
        ("./models/nowhere", "no such folder"),
        ("/no/such/model", "no such folder"),
    ],
)
def test_names_that_are_neither_registered_nor_folders_nor_hub_ids(name: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_embedder(name)


def test_the_protocol_includes_encode_queries(tiny_embedder) -> None:
    assert isinstance(tiny_embedder, Embedder)

    class DocumentsOnly:
        name, dim, max_tokens, content_window, fingerprint = "x", 4, 8, 8, "x"

        def encode(self, texts, batch_size=32): ...
        def count_tokens(self, text): ...
        def split(self, text, max_tokens): ...

    assert not isinstance(DocumentsOnly(), Embedder)


@pytest.mark.integration
def test_the_default_embedder_is_the_one_the_shipped_merger_was_trained_on() -> None:
    import vbert

    embedder = load_embedder("default", device="cpu")
    assert (
        embedder.fingerprint == vbert.load_merger("default").config.embedder_fingerprint == "37df967e5f5b5263"
    )
