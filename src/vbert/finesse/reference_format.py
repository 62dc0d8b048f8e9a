"""Export a vbert Finesse ``results.json`` in the reference implementation's format.

The reference package ``finesse-benchmark`` (v0.16+, HEAD v0.18.9) writes ``benchmark_results.json``:

* rss: ``config``, ``average_rss``, ``average_total_latency``, ``average_synthesis_latency``,
  ``length_scores`` {"L": {``rss_scores``, ``total_latency_scores``, ``synthesis_latency_scores``,
  ``raw_td``, ``raw_bu``}}, ``metadata``, ``model_hash``, ``content_hash``;
* srs: ``config``, ``average_srs``, ``average_pbi``, ``length_scores`` {"L": {``sample_results``:
  [{"p": [score per position]}]}}, ``metadata``, ``model_hash``, ``content_hash``.

``content_hash`` follows the reference's algorithm (:func:`reference_content_hash`), so the
reference's ``finesse checksum --json-path`` accepts the file. ``model_hash`` follows its file
hash (:func:`reference_model_hash`) when model folders are given, else it is ``null`` (what the
reference writes when it cannot hash). Every setting that differs from the official leaderboard
is listed in ``metadata.vbert_export.differences_from_leaderboard``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vbert.errors import ConfigError, DataError, IntegrityError
from vbert.finesse.metrics import get_metric
from vbert.finesse.metrics.rss import sample_score
from vbert.finesse.storage import reading_results

#: File suffixes whose bytes the reference's ``model_hash`` covers (config and code are not hashed).
MODEL_HASH_SUFFIXES = (".bin", ".safetensors", ".model", ".onnx", ".pt")
SCORE_VERSIONS = ("sum", "balanced")
#: The official leaderboard (benchmark.leaderboard.yaml at HEAD) as it actually runs: its
#: ``tokper_sample: 500`` is a typo the reference's schema ignores, so chunks are 256 tokens.
LEADERBOARD = {
    "metric": "rss",
    "formula": "q1q3",
    "score_version": "sum",
    "chunk_space": "merger",
    "sequence_length": {"min": 4, "max": 64},
    "samples_per_length": 25,
    "token_per_sample": 256,
    "seed": 42,
    "document_reuse": "none",
}


def _flatten(value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else str(key), out)
    else:
        out.append(f"{path}:{value}")


def reference_content_hash(results: Mapping[str, Any]) -> str:
    """The reference's ``content_hash``: hex SHA-256 of its flattened, sorted, joined form.

    The dict, with ``content_hash`` set to ``""``, is flattened to ``dotted.key.path:value``
    strings (dicts recursed, lists and scalars rendered by Python's ``str``), the strings are
    sorted and joined with no separator, and the UTF-8 bytes are hashed. It is unkeyed: it
    catches accidents, not someone who edits the file and recomputes it.
    """
    lines: list[str] = []
    _flatten({**results, "content_hash": ""}, "", lines)
    return hashlib.sha256("".join(sorted(lines)).encode("utf-8")).hexdigest()


def reference_model_hash(folder: str | Path) -> str:
    """The reference's ``model_hash`` of a local model folder: SHA-256 over its weight files' bytes.

    Files ending in .bin/.safetensors/.model/.onnx/.pt, walking the folder in sorted order.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root} is not a model folder: model_hash needs the local files")
    digest = hashlib.sha256()
    found = False
    for current, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(MODEL_HASH_SUFFIXES):
                found = True
                with open(Path(current) / name, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
    if not found:
        raise DataError(f"{root} holds no weight files ({', '.join(MODEL_HASH_SUFFIXES)})")
    return digest.hexdigest()


def _r(value: float) -> float:
    return round(float(value), 6)


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return _r(sum(present) / len(present)) if present else None


def _datasets(probes: Mapping[str, Any]) -> list[dict[str, Any]]:
    source = probes.get("source", {})
    if source.get("kind") == "huggingface":
        return [
            {
                "path": source.get("path"),
                "split": source.get("split", "train"),
                "text_column": source.get("text_column", "text"),
                "commit_hash": source.get("revision"),
                "data_dir": source.get("data_dir"),
                "data_files": source.get("data_files"),
            }
        ]
    # A local corpus has no hub commit: the probe set's content hash pins the exact texts instead.
    return [
        {
            "path": f"vbert-{source.get('kind', 'files')}:{source.get('name') or source.get('path')}",
            "split": source.get("split") or "train",
            "text_column": "text",
            "commit_hash": probes.get("content_hash"),
            "data_dir": None,
            "data_files": None,
        }
    ]


def _models(competitor: Mapping[str, Any], names: Mapping[str, str | None]) -> dict[str, Any]:
    embedder = competitor.get("embedder") or {}
    embedder_entry = {
        "name": names.get("embedder") or embedder.get("name"),
        "pool_type": names.get("embedder_pool_type") or "mean",
        "prefix": names.get("embedder_prefix"),
        "max_context_length": embedder.get("max_tokens"),
    }
    models: dict[str, Any] = {
        "merger": None,
        "base_embedder": None,
        "native_embedder": None,
        "byok_embedder": None,
    }
    if competitor.get("mode") == "native":
        models["native_embedder"] = embedder_entry
    else:
        merger = competitor.get("merger") or {}
        models["merger"] = {
            "name": names.get("merger") or merger.get("name"),
            "pool_type": "pooler",
            "prefix": None,
            "max_context_length": None,
        }
        models["base_embedder"] = embedder_entry
    return models


def _differences(results: Mapping[str, Any], score_version: str) -> list[str]:
    probes, config = results["probes"], results.get("config", {})
    found = {
        "metric": results["metric"],
        "formula": results["formula"],
        "score_version": score_version if get_metric(str(results["metric"])).uses_score_version else "sum",
        "chunk_space": results.get("chunk_space")
        if results["competitor"].get("mode") == "merger"
        else "merger",
        "sequence_length": probes.get("sequence_length"),
        "samples_per_length": probes.get("samples_per_length"),
        "token_per_sample": probes.get("token_per_sample"),
        "seed": config.get("seed", probes.get("seed")),
        "document_reuse": probes.get("document_reuse"),
    }
    return [
        f"{key}: {found[key]!r} (leaderboard: {value!r})"
        for key, value in LEADERBOARD.items()
        if found[key] != value
    ]


def to_reference(
    results: Mapping[str, Any],
    *,
    score_version: str = "sum",
    names: Mapping[str, str | None] | None = None,
    model_folders: Mapping[str, str | Path] | None = None,
) -> dict[str, Any]:
    """The reference's ``benchmark_results.json`` object for one competitor's vbert results.

    Args:
        results: a vbert ``results.json`` object (its own content hash is checked first).
        score_version: rss per-sample formula of the output: ``sum`` ((TD+BU)×500, the reference
            since v0.16 and its leaderboard) or ``balanced`` (the published formula).
        names: display names for the reference config: ``merger``, ``embedder`` (e.g. hub ids),
            ``embedder_pool_type``, ``embedder_prefix``.
        model_folders: local folders to compute ``model_hash`` from: ``merger`` and
            ``base_embedder`` (merger mode) or ``native``.
    """
    from vbert.finesse.integrity import check

    if score_version not in SCORE_VERSIONS:
        raise ConfigError(f"unknown score version {score_version!r}; use one of {', '.join(SCORE_VERSIONS)}")
    if not isinstance(results, Mapping) or not str(results.get("format", "")).startswith(
        "vbert-finesse-results/"
    ):
        raise DataError("not a vbert Finesse results.json (its 'format' is not vbert-finesse-results/N)")
    with reading_results("the results"):
        problems = check(dict(results))
        if problems:
            raise IntegrityError(f"the results fail their own integrity check: {'; '.join(problems)}")
        return _reference(results, score_version, dict(names or {}), model_folders)


def _reference(
    results: Mapping[str, Any],
    score_version: str,
    names: dict[str, str | None],
    model_folders: Mapping[str, str | Path] | None,
) -> dict[str, Any]:
    competitor, probes = results["competitor"], results["probes"]
    mode = "native_mode" if competitor.get("mode") == "native" else "merger_mode"
    environment = results.get("environment", {})
    machine, packages = environment.get("machine", {}), environment.get("packages", {})
    config = {
        "metric": results["metric"],
        "formula": results["formula"],
        "mode": mode,
        "models": _models(competitor, names),
        "probe_config": {
            "sequence_length": dict(probes["sequence_length"]),
            "samples_per_length": probes["samples_per_length"],
            "token_per_sample": probes["token_per_sample"],
            "group_amount": probes.get("group_amount"),
        },
        "datasets": _datasets(probes),
        "output": {"format": "json", "sign": True},
        "advanced": {"batch_size": results.get("config", {}).get("runtime", {}).get("batch_size", 32)},
        "seed": results.get("config", {}).get("seed", probes.get("seed")),
    }
    lengths = {int(length): entry for length, entry in results["lengths"].items()}
    uses_score_version = get_metric(str(results["metric"])).uses_score_version
    out: dict[str, Any] = {"config": config}
    exporter = _SCORE_EXPORTERS.get(str(results["metric"]))
    if exporter is None:
        raise ConfigError(
            f"the reference format has no {results['metric']!r} metric; it holds {', '.join(_SCORE_EXPORTERS)}"
        )
    out.update(exporter(results, lengths, score_version))
    version = score_version if uses_score_version else None
    out["metadata"] = {
        "package_versions": {"finesse-benchmark": None, "vbert": packages.get("vbert")},
        "dataset": [[d["path"], d["split"], d["text_column"], d["commit_hash"]] for d in config["datasets"]],
        "config": config,
        "device_info": {
            "cpu": machine.get("cpu"),
            "gpu": machine.get("gpu"),
            "cuda_version": machine.get("cuda"),
            "torch_version": machine.get("torch"),
        },
        "scoring_method": f"{results['metric']}:{results['formula']}" + (f":{version}" if version else ""),
        "vbert_export": {
            "source_format": results["format"],
            "source_content_hash": results.get("integrity", {}).get("content_hash"),
            "probe_content_hash": probes.get("content_hash"),
            "reference_tokenizer": probes.get("tokenizer"),
            "competitor": competitor,
            "chunk_space": results.get("chunk_space"),
            "score_version": version,
            "scores_recomputed_from_rounded_td_bu": uses_score_version
            and results.get("score_version") != score_version,
            "lengths_not_evaluated": results.get("lengths_not_evaluated", {}),
            "latency_protocol": results.get("latency_protocol"),
            "differences_from_leaderboard": _differences(results, score_version),
        },
    }
    out["model_hash"] = _model_hash(mode, model_folders or {})
    out["content_hash"] = reference_content_hash(out)
    return out


def _rss_scores(results: Mapping[str, Any], lengths: Mapping[int, Any], score_version: str) -> dict[str, Any]:
    recompute = results.get("score_version") != score_version
    length_scores: dict[str, Any] = {}
    every: list[float] = []
    full: list[float | None] = []
    merge: list[float | None] = []
    for length in sorted(lengths):
        entry = lengths[length]
        if recompute:
            scores = [
                _r(sample_score(td, bu, score_version))
                for td, bu in zip(entry["td"], entry["bu"], strict=True)
            ]
        else:
            scores = list(entry["scores"])
        length_scores[str(length)] = {
            "rss_scores": scores,
            "total_latency_scores": list(entry.get("latency_full_ms", [])),
            "synthesis_latency_scores": list(entry.get("latency_merge_ms", [])),
            "raw_td": list(entry["td"]),
            "raw_bu": list(entry["bu"]),
        }
        every += scores
        full += entry.get("latency_full_ms", [])
        merge += entry.get("latency_merge_ms", [])
    return {
        "average_rss": _mean(every),
        "average_total_latency": _mean(full),
        "average_synthesis_latency": _mean(merge),
        "length_scores": length_scores,
    }


def _srs_scores(results: Mapping[str, Any], lengths: Mapping[int, Any], score_version: str) -> dict[str, Any]:
    return {
        "average_srs": results["summary"]["mean_score"],
        "average_pbi": results["summary"].get("pbi"),
        "length_scores": {
            str(length): {"sample_results": lengths[length]["position_scores"]} for length in sorted(lengths)
        },
    }


#: The reference implementation's two metrics and how each writes its scores.
_SCORE_EXPORTERS = {"rss": _rss_scores, "srs": _srs_scores}


def _model_hash(mode: str, folders: Mapping[str, str | Path]) -> dict[str, str] | None:
    needed = ("native",) if mode == "native_mode" else ("merger", "base_embedder")
    if not folders:
        return None
    missing = [key for key in needed if key not in folders]
    if missing:
        raise ConfigError(
            f"{mode} model_hash needs folders for {', '.join(needed)}; missing {', '.join(missing)}"
        )
    return {key: reference_model_hash(folders[key]) for key in needed}


def check_reference(results: Mapping[str, Any]) -> bool:
    """Whether a reference-format object's ``content_hash`` matches its content (the reference's checksum)."""
    return results.get("content_hash") == reference_content_hash(results)
