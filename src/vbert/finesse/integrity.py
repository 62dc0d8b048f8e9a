"""Content hash and optional HMAC-SHA256 signature of a ``results.json``.

Both are computed over the canonical JSON form of the whole results object except its
``integrity`` block (:func:`vbert.files.canonical_json`: sorted keys, no
whitespace, floats as ``%.17g``). The unkeyed hash detects accidental damage and edits by
people who do not bother to recompute it; the HMAC, made with a secret key at
``finesse score --sign-key KEYFILE`` and checked with ``finesse checksum --key-file KEYFILE``,
detects deliberate tampering too, because recomputing it needs the key.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
from pathlib import Path
from typing import Any

from vbert.errors import ConfigError
from vbert.files import canonical_json

HASH_PREFIX = "sha256:"
SIGNATURE_ALGORITHM = "hmac-sha256"
CANONICAL_FORM = "JSON without the integrity block; keys sorted; no whitespace; floats as %.17g; UTF-8"
MIN_KEY_BYTES = 16


def _payload(results: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in results.items() if k != "integrity"}).encode("utf-8")


def content_hash(results: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical form of ``results`` (its ``integrity`` block excluded)."""
    return HASH_PREFIX + hashlib.sha256(_payload(results)).hexdigest()


def signature(results: dict[str, Any], key: bytes) -> str:
    """Hex HMAC-SHA256 of the canonical form with ``key``."""
    return hmac.new(key, _payload(results), hashlib.sha256).hexdigest()


def read_key(path: str | Path) -> bytes:
    """Read a signing key file (trailing whitespace ignored)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"key file {file} does not exist; create one with "
            '`python -c "import secrets; print(secrets.token_hex(32))" > KEYFILE`'
        )
    key = file.read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"key file {file} holds {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes"
        )
    return key


def seal(results: dict[str, Any], key: bytes | None = None) -> dict[str, Any]:
    """A copy of ``results`` with its ``integrity`` block set (hash, and signature if ``key``)."""
    sealed = copy.deepcopy(results)
    sealed["integrity"] = {
        "canonical_form": CANONICAL_FORM,
        "content_hash": content_hash(sealed),
        "signature": {"algorithm": SIGNATURE_ALGORITHM, "value": signature(sealed, key)} if key else None,
    }
    return sealed


def check(results: dict[str, Any], key: bytes | None = None) -> list[str]:
    """Problems with the hash (and, if ``key`` is given, the signature); empty when all is well."""
    block = results.get("integrity")
    if not isinstance(block, dict):
        return ["results have no integrity block; they were not written by `finesse score`"]
    problems = []
    expected = content_hash(results)
    if block.get("content_hash") != expected:
        problems.append(
            f"content hash mismatch: stored {block.get('content_hash')}, computed {expected}; "
            "the results were changed after they were written"
        )
    if key is not None:
        stored = block.get("signature")
        if not isinstance(stored, dict) or stored.get("algorithm") != SIGNATURE_ALGORITHM:
            problems.append(
                "results carry no HMAC-SHA256 signature; sign them with `finesse score --sign-key KEYFILE`"
            )
        elif not hmac.compare_digest(str(stored.get("value", "")), signature(results, key)):
            problems.append("signature mismatch: the results were changed, or signed with another key")
    return problems


NUMERIC_TOLERANCE = 1e-6
MAX_REPORTED = 20


def _differences(stored: Any, fresh: Any, path: str, out: list[str]) -> None:
    if len(out) >= MAX_REPORTED:
        return
    if isinstance(stored, dict) and isinstance(fresh, dict):
        for key in sorted(set(stored) | set(fresh)):
            if key not in stored or key not in fresh:
                out.append(f"{path}.{key}: present in only one of results and raw recomputation")
            else:
                _differences(stored[key], fresh[key], f"{path}.{key}", out)
    elif isinstance(stored, list) and isinstance(fresh, list):
        if len(stored) != len(fresh):
            out.append(f"{path}: {len(stored)} values in results, {len(fresh)} recomputed")
            return
        for i, (a, b) in enumerate(zip(stored, fresh, strict=True)):
            _differences(a, b, f"{path}[{i}]", out)
    elif isinstance(stored, int | float) and isinstance(fresh, int | float) and not isinstance(stored, bool):
        if abs(float(stored) - float(fresh)) > NUMERIC_TOLERANCE:
            out.append(f"{path}: results say {stored}, raw outputs give {fresh}")
    elif stored != fresh:
        out.append(f"{path}: results say {stored!r}, raw outputs give {fresh!r}")


def verify(raw: str | Path, results: dict[str, Any]) -> list[str]:
    """Recompute every score from the raw folder and list where ``results`` disagree (empty = verified)."""
    from vbert.finesse.raw import RawRun
    from vbert.finesse.scoring import score_run

    run = RawRun.open(raw)
    fresh = score_run(run, formula=results.get("formula"), score_version=results.get("score_version"))
    problems = check(results)
    ignored = {"integrity", "scored_with"}
    stored = {k: v for k, v in results.items() if k not in ignored}
    _differences(stored, {k: v for k, v in fresh.items() if k not in ignored}, "results", problems)
    return problems
