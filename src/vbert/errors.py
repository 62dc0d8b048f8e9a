"""One root for every error vbert raises on purpose, so callers and the CLI can tell them apart.

Each class also derives from the built-in exception a caller would expect (``ValueError`` for
bad input, ``RuntimeError`` for an environment problem), so ``except ValueError`` keeps working.
The CLI maps each kind to one exit code (:data:`EXIT_CODES`) and prints one line, no traceback.
"""

from __future__ import annotations


class VbertError(Exception):
    """Anything vbert reports on purpose; ``str(err)`` is a complete sentence for the user."""

    exit_code = 1


class ConfigError(VbertError, ValueError):
    """A setting, recipe, preset, option or name is invalid or unknown."""

    exit_code = 2


class DataError(VbertError, ValueError):
    """Input data (a text, a JSONL row, a vector, a dataset) is malformed or unusable."""

    exit_code = 3


class IntegrityError(VbertError, ValueError):
    """Stored data fails a checksum, a content hash, or a safety check (pickle, path escape)."""

    exit_code = 4


class ResourceError(VbertError, RuntimeError):
    """The environment stops the work: disk full, a locked or read-only file, no network."""

    exit_code = 5


EXIT_CODES = {
    cls.__name__: cls.exit_code for cls in (VbertError, ConfigError, DataError, IntegrityError, ResourceError)
}
