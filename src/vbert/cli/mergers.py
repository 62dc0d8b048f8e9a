"""How the command line names and loads mergers.

The names in every ``--merger`` help come from :data:`vbert.mergers.MERGERS`, and a merger the
user names is checked before it is loaded, so a wrong name or a broken folder is one line of
error instead of a traceback (or a slow hub lookup for something that was meant as a path).
"""

from __future__ import annotations

import re
from pathlib import Path

from vbert.errors import ConfigError, DataError, IntegrityError, ResourceError
from vbert.mergers import MERGERS, Merger

WEIGHTS_NAME = "model.safetensors"
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # a pickle protocol 2+ header, or torch.save's zip


def merger_names() -> str:
    """``'default', 'mean', …`` in registration order, for help texts."""
    return ", ".join(repr(name) for name in MERGERS.names())


def merger_help(what: str = "Merger") -> str:
    return f"{what}: {merger_names()}, a folder written by save_pretrained, or a 'module:factory' spec."


def check_merger_spec(spec: str) -> None:
    """Raise a :class:`~vbert.errors.VbertError` when ``spec`` cannot name a loadable merger."""
    path = Path(spec).expanduser()
    if path.exists():
        _check_folder(spec, path)
    elif spec not in MERGERS and not _HUB_ID.fullmatch(spec):
        raise ConfigError(
            f"no merger named {spec!r} and no folder {spec}; known names: {merger_names()} "
            "(or a folder written by save_pretrained, a hub id 'org/name', a 'module:factory' spec)"
        )


def load_checked_merger(spec: str) -> Merger:
    """:func:`check_merger_spec`, then :func:`vbert.load_merger` with its errors made typed and one line."""
    from vbert import load_merger

    check_merger_spec(spec)
    try:
        return load_merger(spec)
    except (ConfigError, DataError, IntegrityError, ResourceError):
        raise
    except FileNotFoundError as err:
        raise ConfigError(_first_line(err)) from err
    except (OSError, ValueError) as err:  # transformers reports a missing hub model or file as OSError
        raise ResourceError(f"cannot load the merger {spec!r}: {_first_line(err)}") from err


def _check_folder(spec: str, path: Path) -> None:
    if not path.is_dir():
        raise ConfigError(f"{spec} is a file; a merger is a folder with config.json and {WEIGHTS_NAME}")
    for name in ("config.json", WEIGHTS_NAME):
        if not (path / name).is_file():
            raise DataError(f"{spec} has no {name}: it is not a merger folder written by save_pretrained")
    weights = path / WEIGHTS_NAME
    with open(weights, "rb") as handle:
        head = handle.read(8)
    if head.startswith(_PICKLE_MAGIC):
        raise IntegrityError(f"{weights} is a pickle, not safetensors; vbert never unpickles a model")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(weights, framework="np"):
            pass
    except (SafetensorError, OSError) as err:
        raise IntegrityError(f"{weights} is not a valid safetensors file ({_first_line(err)})") from err


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
