"""What several commands share, declared once: options, and how a command group is made."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

CacheOpt = Annotated[Path | None, typer.Option(help="Chunk cache SQLite file (default under $VBERT_HOME).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the chunk cache.")]


def command_group(name: str, help: str) -> typer.Typer:
    """A command group that prints its help when called bare and reports errors without tracebacks."""
    return typer.Typer(
        name=name, help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
    )


def option_groups(command: Callable[..., Any]) -> Callable[..., Any]:
    """Let COMMAND take groups of options as dataclasses: Typer sees each dataclass-typed parameter
    as that dataclass's fields, in its place (so ``--help`` lists them there), and COMMAND gets
    them back as one instance. The fields are declared like parameters: ``Annotated`` options
    with defaults."""
    hints = typing.get_type_hints(command, include_extras=True)
    groups: dict[str, type] = {}
    parameters: list[inspect.Parameter] = []
    for parameter in inspect.signature(command).parameters.values():
        kind = hints[parameter.name]
        if dataclasses.is_dataclass(kind):
            groups[parameter.name] = kind
            fields = typing.get_type_hints(kind, include_extras=True)
            parameters += [
                inspect.Parameter(
                    f.name, inspect.Parameter.KEYWORD_ONLY, annotation=fields[f.name], default=f.default
                )
                for f in dataclasses.fields(kind)
            ]
        else:
            parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=kind))

    @functools.wraps(command)
    def with_groups(**options: Any) -> Any:
        for name, kind in groups.items():
            names = [f.name for f in dataclasses.fields(kind)]
            options[name] = kind(**{key: options.pop(key) for key in names})
        return command(**options)

    with_groups.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    with_groups.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_groups
