"""Named registries: the single list of what exists (mergers, embedders, objectives, metrics).

A registry maps a short name to an entry (a class, a factory, or a declarative record). Lookups
also accept ``"package.module:attribute"`` specs, so a user's own merger or metric works
everywhere a built-in name does, without registering it first::

    MERGERS = Registry("merger", builtins=("vbert.mergers",))

    @MERGERS.register("mean")
    class MeanPoolMerger: ...

    MERGERS.get("mean")                       # the class
    MERGERS.get("my_package.mergers:MaxPool") # imported on demand
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import import_module
from typing import Generic, TypeVar, overload

from vbert.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → entry, with ``module:attribute`` specs and a clear error for unknown names."""

    def __init__(self, kind: str, *, builtins: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._builtins = builtins
        self._entries: dict[str, T] = {}
        self._loaded = not builtins

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, entry: T) -> T: ...

    def register(self, name: str, entry: T | None = None):
        """Register ``entry`` under ``name``; without ``entry``, return a decorator."""
        if not name or ":" in name:
            raise ConfigError(f"a {self.kind} name must be non-empty and contain no ':' (got {name!r})")

        def add(value: T) -> T:
            if name in self._entries and self._entries[name] is not value:
                raise ConfigError(f"a {self.kind} named {name!r} is already registered")
            self._entries[name] = value
            return value

        return add if entry is None else add(entry)

    def get(self, name: str) -> T:
        """The entry named ``name``, or the attribute a ``module:attribute`` spec points to."""
        if ":" in name:
            return self._import_spec(name)
        self._load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names())} "
                "(or give a 'package.module:attribute' spec)"
            ) from None

    def names(self) -> list[str]:
        self._load_builtins()
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (":" in name or name in self.names())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        self._load_builtins()
        return list(self._entries.items())

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._builtins:
                import_module(module)

    def _import_spec(self, spec: str) -> T:
        module_name, _, attribute = spec.partition(":")
        try:
            module = import_module(module_name)
        except ImportError as err:
            raise ConfigError(f"{self.kind} spec {spec!r}: cannot import {module_name!r} ({err})") from err
        try:
            return getattr(module, attribute)
        except AttributeError:
            raise ConfigError(
                f"{self.kind} spec {spec!r}: {module_name} has no attribute {attribute!r}"
            ) from None
