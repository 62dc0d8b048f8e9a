"""Competitors: the models and baselines a benchmark run compares, resolved from the config.

A competitor is either in ``merger`` mode (base embedder + a merger: kind ``merger`` with
any spec :func:`vbert.load_merger` takes, or a baseline of :data:`vbert.mergers.MERGERS` named
as its kind) or in ``native`` mode (an embedder run on the joined text). Objects can be
injected through the Python API (dependency injection), so users benchmark their own models
without editing the package; in YAML, ``package.module:factory`` (mergers),
``py:module:factory`` or ``py:path/to/file.py:factory`` names a callable that returns the object.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vbert.embedders.base import Embedder, describe_embedder
from vbert.errors import ConfigError
from vbert.finesse.config import MERGER_KIND, NATIVE_KIND, PY_SPEC_PREFIX, BenchmarkConfig, CompetitorConfig
from vbert.mergers import MERGERS, Merger


def resolve_py_spec(spec: str) -> Any:
    """Call the factory named by ``py:package.module:attr`` or ``py:path/to/file.py:attr``.

    Only use configs you trust: the named code runs, as with any plugin.
    """
    target = spec[len(PY_SPEC_PREFIX) :]
    module_part, sep, attr = target.rpartition(":")
    if not sep or not module_part or not attr:
        raise ConfigError(f"{spec!r} must look like py:package.module:factory or py:path/to/file.py:factory")
    if module_part.endswith(".py"):
        file = Path(module_part).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"{spec!r}: file {file} does not exist")
        name = "vbert_finesse_plugin_" + hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:12]
        module = sys.modules.get(name)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(name, file)
            if loader_spec is None or loader_spec.loader is None:
                raise ImportError(f"{spec!r}: cannot import {file}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module
            loader_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_part)
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise AttributeError(f"{spec!r}: {module_part} has no callable {attr!r}")
    return factory()


def load_embedder_spec(spec: str) -> Embedder:
    """An embedder from a config spec: ``default``, ``minilm``, a HF id or folder, or ``py:...``."""
    if spec.startswith(PY_SPEC_PREFIX):
        embedder = resolve_py_spec(spec)
    else:
        from vbert.embedders import load_embedder

        embedder = load_embedder(spec)
    return check_embedder(embedder, spec)


def load_merger_spec(spec: str) -> Merger:
    """A merger from a config spec: a name of :data:`~vbert.mergers.MERGERS` (``default``, ``mean``,
    …), a saved merger folder, a hub id, ``package.module:factory`` or ``py:...``."""
    if spec.startswith(PY_SPEC_PREFIX):
        merger = resolve_py_spec(spec)
    else:
        import vbert

        merger = vbert.load_merger(spec)
    return check_merger(merger, spec)


def check_embedder(obj: Any, where: str) -> Embedder:
    """Refuse objects that lack the :class:`~vbert.embedders.base.Embedder` interface."""
    if not isinstance(obj, Embedder):
        missing = [a for a in ("name", "dim", "max_tokens", "content_window", "fingerprint", "encode",
                               "count_tokens", "split") if not hasattr(obj, a)]  # fmt: skip
        raise TypeError(f"{where}: {type(obj).__name__} is not an Embedder (missing {', '.join(missing)})")
    return obj


def check_merger(obj: Any, where: str) -> Merger:
    """Refuse objects that lack the :class:`~vbert.mergers.Merger` interface."""
    if not isinstance(obj, Merger):
        missing = [a for a in ("name", "fingerprint", "merge", "merge_batch") if not hasattr(obj, a)]
        raise TypeError(f"{where}: {type(obj).__name__} is not a Merger (missing {', '.join(missing)})")
    return obj


@dataclass
class Competitor:
    """A resolved competitor: its config plus the live objects it runs."""

    config: CompetitorConfig
    merger: Merger | None = None
    embedder: Embedder | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def mode(self) -> str:
        return NATIVE_KIND if self.config.kind == NATIVE_KIND else MERGER_KIND

    def describe(self, base_embedder: Embedder | None) -> dict[str, Any]:
        """Names and fingerprints recorded in manifests and results."""
        embedder = self.embedder if self.mode == NATIVE_KIND else base_embedder
        info: dict[str, Any] = {"name": self.name, "kind": self.config.kind, "mode": self.mode}
        if self.merger is not None:
            info["merger"] = {"name": str(self.merger.name), "fingerprint": str(self.merger.fingerprint)}
            if self.config.kind == MERGER_KIND:
                info["merger"]["spec"] = self.config.merger_spec
        if embedder is not None:
            info["embedder"] = describe_embedder(embedder)
        if self.mode == NATIVE_KIND:
            info["on_overflow"] = self.config.overflow
            info["embedder"]["spec"] = self.config.embedder_spec
        return info


def build_competitors(
    config: BenchmarkConfig,
    mergers: Mapping[str, Merger] | None = None,
    native_embedders: Mapping[str, Embedder] | None = None,
    only: list[str] | None = None,
) -> list[Competitor]:
    """Resolve the config's competitors; injected objects (keyed by competitor name) win over specs."""
    mergers = dict(mergers or {})
    native_embedders = dict(native_embedders or {})
    known = {c.name for c in config.competitors}
    unknown = sorted((set(mergers) | set(native_embedders) | set(only or [])) - known)
    if unknown:
        raise ConfigError(f"no competitor named {', '.join(unknown)} in the config; it has {sorted(known)}")
    resolved: list[Competitor] = []
    for spec in config.competitors:
        if only and spec.name not in only:
            continue
        if spec.kind == NATIVE_KIND:
            injected = native_embedders.get(spec.name)
            embedder = (
                check_embedder(injected, spec.name)
                if injected is not None
                else load_embedder_spec(spec.embedder_spec)
            )
            resolved.append(Competitor(spec, embedder=embedder))
            continue
        if spec.name in mergers:
            merger = check_merger(mergers[spec.name], spec.name)
        elif spec.kind == MERGER_KIND:
            merger = load_merger_spec(spec.merger_spec)
        else:  # a baseline, named by its kind
            merger = check_merger(MERGERS.get(spec.kind).factory(), spec.name)
        resolved.append(Competitor(spec, merger=merger))
    return resolved
