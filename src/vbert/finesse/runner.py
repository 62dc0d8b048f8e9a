"""``run_benchmark``: probes → generate → score in one call, with injectable models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vbert.cache import ChunkCache
from vbert.embedders.base import Embedder
from vbert.files import atomic_write_text, read_json
from vbert.finesse.compare import compare
from vbert.finesse.competitors import load_embedder_spec
from vbert.finesse.config import NATIVE_KIND, BenchmarkConfig, load_config, parse_config
from vbert.finesse.generate import generate
from vbert.finesse.probes import ProbeSet, build_probes_from_config, load_probes
from vbert.finesse.raw import RawRun
from vbert.finesse.scoring import score_run, write_results
from vbert.mergers import Merger


@dataclass
class BenchmarkRun:
    """What :func:`run_benchmark` produced."""

    results: dict[str, dict[str, Any]]
    result_files: dict[str, Path]
    raw_dir: Path
    summary: str
    probe_set: ProbeSet = field(repr=False)


def _as_config(config: BenchmarkConfig | str | Path | Mapping[str, Any]) -> BenchmarkConfig:
    if isinstance(config, BenchmarkConfig):
        return config
    if isinstance(config, Mapping):
        return parse_config(dict(config), "config mapping")
    return load_config(config)


def run_benchmark(
    config: BenchmarkConfig | str | Path | Mapping[str, Any],
    output: str | Path,
    *,
    embedder: Embedder | None = None,
    tokenizer: Embedder | None = None,
    mergers: Mapping[str, Merger] | None = None,
    native_embedders: Mapping[str, Embedder] | None = None,
    probe_set: ProbeSet | None = None,
    only: list[str] | None = None,
    sign_key: bytes | None = None,
    cache: ChunkCache | None = None,
) -> BenchmarkRun:
    """Run the whole benchmark and write ``output/raw/...`` and ``output/results/<name>/results.json``.

    Args:
        config: a :class:`BenchmarkConfig`, a YAML path or a mapping.
        output: folder for raw outputs and results (resumable: re-running continues).
        embedder: base embedder of merger-mode competitors (default: load ``config.embedder``).
        tokenizer: reference tokenizer for building missing probes (default: ``embedder`` when the
            config names the same spec for both, else load ``config.probes.tokenizer``).
        mergers: merger objects keyed by competitor name, used instead of the config's specs.
        native_embedders: embedders of native competitors keyed by competitor name.
        probe_set: the probes; default: read ``config.probes.file``, building it once if missing.
        only: run only these competitors.
        sign_key: HMAC key to sign every results.json.
        cache: a chunk cache the probe chunks are read from and stored in (shared with other jobs:
            chunks embedded before are not embedded again).
    """
    cfg = _as_config(config)
    out = Path(output)
    probes_missing = probe_set is None and not Path(cfg.probes.file).is_file()
    needs_base = any(c.kind != NATIVE_KIND and (not only or c.name in only) for c in cfg.competitors)
    if (
        embedder is None
        and tokenizer is None
        and probes_missing
        and needs_base
        and cfg.probes.tokenizer == cfg.embedder
    ):
        embedder = load_embedder_spec(cfg.embedder)  # load the model once for both roles
    if probe_set is None:
        if Path(cfg.probes.file).is_file():
            probe_set = load_probes(cfg.probes.file)
        else:
            if tokenizer is None and embedder is not None and cfg.probes.tokenizer == cfg.embedder:
                tokenizer = embedder
            probe_set, _ = build_probes_from_config(cfg, tokenizer=tokenizer)
    raw_dir = out / "raw"
    folders = generate(
        cfg,
        raw_dir,
        probe_set=probe_set,
        embedder=embedder,
        mergers=mergers,
        native_embedders=native_embedders,
        only=only,
        cache=cache,
    )
    results: dict[str, dict[str, Any]] = {}
    files: dict[str, Path] = {}
    for folder in folders:
        run = RawRun.open(folder)
        path = write_results(score_run(run), out / "results" / run.name, sign_key)
        files[run.name] = path
        results[run.name] = read_json(path, "results file")
    summary = compare(list(results.values()))
    atomic_write_text(out / "results" / "summary.md", summary)
    return BenchmarkRun(results, files, raw_dir, summary, probe_set)
