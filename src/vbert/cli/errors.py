"""How every vbert command reports a failure: one red line on stderr and a typed exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NoReturn

import typer

from vbert.errors import VbertError

#: Exit code for a usage error found by a command itself (typer uses 2 for its own).
USAGE_EXIT_CODE = 2


def fail(message: str | BaseException, code: int | None = None) -> NoReturn:
    """Print ``error: message`` in red on stderr and exit; a :class:`VbertError` picks its own code."""
    if code is None:
        code = message.exit_code if isinstance(message, VbertError) else USAGE_EXIT_CODE
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=code)


@contextlib.contextmanager
def reported(*also: type[BaseException]) -> Iterator[None]:
    """Turn any :class:`VbertError` (and the extra exception types given) into :func:`fail`."""
    try:
        yield
    except (VbertError, *also) as err:
        fail(err)
