"""``vbert lab``: a local web page that computes Anatomy Laboratory matrices live.

:mod:`vbert.lab.analysis` holds the work (:class:`Lab`: validate a request, embed, merge every
prefix, score the sample); :mod:`vbert.lab.server` serves it over HTTP on loopback.
"""

from __future__ import annotations

from vbert.lab.analysis import NATIVE, Lab, LabInputError, LabLimits, default_mergers, spec_factories
from vbert.lab.server import LabServer, is_loopback, make_server, parse_body

__all__ = [
    "NATIVE",
    "Lab",
    "LabInputError",
    "LabLimits",
    "LabServer",
    "default_mergers",
    "is_loopback",
    "make_server",
    "parse_body",
    "spec_factories",
]
