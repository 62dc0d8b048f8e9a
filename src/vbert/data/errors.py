"""The errors the data layer raises, each one of the :mod:`vbert.errors` kinds.

One place, so a caller sees every failure a corpus fetch, a dataset build or a read can report,
and the CLI maps each to its exit code (see :data:`vbert.errors.EXIT_CODES`).
"""

from __future__ import annotations

from vbert.errors import ConfigError, DataError, IntegrityError, ResourceError


class DiskFullError(ResourceError):
    """The disk filled up while writing; what was finished is kept, and a rerun resumes."""


# -- corpora ------------------------------------------------------------------------------------


class CorpusIntegrityError(IntegrityError):
    """A corpus file is missing or does not match the checksum its manifest records."""


class DebianFetchError(ResourceError):
    """A Debian documentation package could not be fetched, unpacked or converted."""


class PackageNotFoundError(DebianFetchError, ConfigError):
    """APT has no such package (misspelt, or not in this release), or vbert cannot convert it."""

    exit_code = ConfigError.exit_code


class NetworkError(DebianFetchError):
    """The Debian mirror could not be reached."""


class PackageLayoutError(DebianFetchError):
    """A package does not keep its pages where the converter looks (its layout changed)."""


class ManPageError(DataError):
    """``man`` could not render a page."""


# -- datasets -----------------------------------------------------------------------------------


class DatasetError(DataError):
    """A dataset cannot be built from this input (no articles, an embedder returning NaN, ...)."""


class DatasetMismatchError(ConfigError):
    """The output folder already holds a build made with other parameters."""


class IncompleteBuildError(IntegrityError):
    """Some shards are missing or failed their checksum when the manifest was to be written."""


class DatasetValidationError(IntegrityError):
    """A dataset folder does not match its manifest."""
