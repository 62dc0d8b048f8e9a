"""Optional dependencies of the integrations: import them or name the extra that installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from vbert.errors import ResourceError


class MissingExtraError(ResourceError, ImportError):
    """An optional dependency of an integration is not installed."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or fail with the ``pip install 'vbert[extra]'`` that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"this vbert integration needs {module.split('.')[0]}, which is not installed: "
            f"run `pip install 'vbert[{extra}]'`"
        ) from err
