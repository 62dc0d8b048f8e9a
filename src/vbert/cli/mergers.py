"""How the command line names and loads mergers.

The names in every ``--merger`` help come from :data:`vbert.mergers.MERGERS`. :func:`vbert.load_merger`
refuses unknown names, missing folders and non-safetensors weights with typed errors before it
loads anything; what is left (the hub unreachable, a broken config) becomes one typed line here.
"""

from __future__ import annotations

from vbert.errors import ConfigError, ResourceError, VbertError
from vbert.mergers import MERGERS, Merger


def merger_names() -> str:
    """``'mean', 'mean-weighted', …`` in registration order, for help texts."""
    return ", ".join(repr(name) for name in MERGERS.names())


def merger_help(what: str = "Merger") -> str:
    return f"{what}: {merger_names()}, a folder written by save_pretrained, or a 'module:factory' spec."


def load_checked_merger(spec: str) -> Merger:
    """:func:`vbert.load_merger`, with every failure a :class:`~vbert.errors.VbertError` of one line."""
    from vbert import load_merger

    try:
        return load_merger(spec)
    except VbertError:
        raise
    except FileNotFoundError as err:
        raise ConfigError(_first_line(err)) from err
    except (OSError, ValueError) as err:  # transformers reports a missing hub model or file as OSError
        raise ResourceError(f"cannot load the merger {spec!r}: {_first_line(err)}") from err


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
