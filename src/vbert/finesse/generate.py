"""``finesse generate``: embed the probe set and write each competitor's raw outputs.

Merger mode (a merger or a baseline on the base embedder's chunk vectors):
  * every sample's chunks are embedded in one batched ``encode`` call, once for all
    competitors (shared ``_chunks`` store);
  * the cumulative syntheses s_i = merge(c_0..c_i) of a sample are ONE right-padded
    ``merge_batch`` call over all L prefixes (a fresh pass per prefix, not recursive merging);
  * chunk vectors are the base embeddings (``chunk_space: base``) or the merger's output on
    each single chunk (``chunk_space: merger``, the reference's behaviour since v0.13).
Native mode (an embedder on the texts t_0..t_i joined by one space): a length whose joined
text exceeds the window is recorded as not evaluated, or cut to the window with
``on_overflow: truncate`` (which makes it the truncation baseline).

Latency per sample, in milliseconds, after ``runtime.warmup`` untimed passes, with the GPU
synchronised before starting and before stopping each timer: merger mode ``full`` =
embedding all L chunks (one batched call) + the final merge, ``merge_only`` = the final
merge alone; native mode both = one encode of the full joined text.

Resumable: a length file is written atomically, then recorded with its SHA-256 in the
manifest; a re-run skips lengths whose file exists and matches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from vbert.cache import ChunkCache, text_key
from vbert.chunk_layouts import embed_chunk_texts
from vbert.embedders.base import Embedder, describe_embedder
from vbert.errors import DataError
from vbert.files import atomic_write_json, read_json, sha256_canonical, sha256_file
from vbert.finesse.competitors import Competitor, build_competitors, load_embedder_spec
from vbert.finesse.config import MERGER_KIND, NATIVE_KIND, BenchmarkConfig, config_to_dict
from vbert.finesse.environment import machine_info, package_versions, timed
from vbert.finesse.metrics import GenerationSettings, get_metric
from vbert.finesse.probes import ProbeSet, check_compatible, expected_params, load_probes
from vbert.finesse.raw import CHUNK_STORE, MANIFEST, RAW_FORMAT, RawOutputError, length_file
from vbert.finesse.storage import load_npz, save_npz
from vbert.mergers import Merger

LATENCY_PROTOCOL = {
    "unit": "ms",
    "merger_full": "one batched encode of the sample's L chunks + the final merge of all L",
    "merger_merge_only": "the final merge of all L chunk vectors (chunks cached)",
    "native": "one encode of the full joined text (full = merge_only)",
    "synchronisation": "device synchronised before starting and before stopping each timer",
}


class _Folder:
    """One resumable output folder: a manifest plus per-length files."""

    def __init__(self, folder: Path, run_key: str, header: dict[str, Any]) -> None:
        self.folder = folder
        self.path = folder / MANIFEST
        if self.path.is_file():
            manifest = read_json(self.path, "raw manifest")
            if manifest.get("run_key") != run_key:
                raise RawOutputError(
                    f"{folder} already holds raw outputs of a different run (other config, probe set or model "
                    "fingerprint); choose another --output folder or delete this one"
                )
            self.manifest = manifest
        else:
            self.manifest = {
                **header,
                "format": RAW_FORMAT,
                "run_key": run_key,
                "lengths": {},
                "not_evaluated": {},
                "environments": [],
                "complete": False,
            }
        environment = {"machine": machine_info(), "packages": package_versions()}
        if environment not in self.manifest["environments"]:
            self.manifest["environments"].append(environment)
        self.environment_index = self.manifest["environments"].index(environment)

    def done(self, length: int) -> bool:
        if str(length) in self.manifest["not_evaluated"]:
            return True
        entry = self.manifest["lengths"].get(str(length))
        file = self.folder / length_file(length)
        return entry is not None and file.is_file() and sha256_file(file) == entry["sha256"]

    def save(self, length: int, arrays: Mapping[str, np.ndarray], samples: int) -> None:
        file = self.folder / length_file(length)
        save_npz(file, arrays)
        self.manifest["lengths"][str(length)] = {
            "file": file.name,
            "sha256": sha256_file(file),
            "samples": samples,
            "environment": self.environment_index,
        }
        self.manifest["not_evaluated"].pop(str(length), None)
        self.flush()

    def skip(self, length: int, reason: str) -> None:
        self.manifest["not_evaluated"][str(length)] = reason
        self.manifest["lengths"].pop(str(length), None)
        self.flush()

    def finish(self) -> None:
        self.manifest["complete"] = True
        self.flush()

    def flush(self) -> None:
        atomic_write_json(self.path, self.manifest)


def _bar(total: int, desc: str, enabled: bool, leave: bool = True) -> tqdm:
    return tqdm(total=total, desc=desc, unit="sample", disable=not enabled, leave=leave)


def _texts(samples: Sequence[Sequence[Any]]) -> list[list[str]]:
    return [[chunk.text for chunk in sample] for sample in samples]


class ChunkStore:
    """Base-embedder vectors of every probe chunk, computed once and shared by merger-mode competitors.

    With a :class:`~vbert.cache.ChunkCache`, chunks are also read from and stored in that cache,
    so probes whose chunks another run (or another job) embedded cost no embedding. Timed samples
    always embed (their latency is the point) and store what they embedded.
    """

    def __init__(
        self,
        root: Path,
        embedder: Embedder,
        probe_set: ProbeSet,
        config: BenchmarkConfig,
        cache: ChunkCache | None = None,
    ) -> None:
        self.embedder = embedder
        self.probe_set = probe_set
        self.config = config
        self.cache = cache
        header = {
            "kind": "chunk-store",
            "embedder": describe_embedder(embedder),
            "probes": probe_set.content_hash,
        }
        self.store = _Folder(root / CHUNK_STORE, sha256_canonical(header), header)
        self._warm = False
        self._known: dict[str, np.ndarray] = {}  # chunk text -> vector, shared by all lengths

    def check_window(self) -> None:
        """Refuse probes whose chunks the base embedder would silently truncate (before any embedding)."""
        window = self.embedder.content_window
        counts = {text: self.embedder.count_tokens(text) for text in {c.text for c in self.probe_set.chunks}}
        too_long = [c for c in self.probe_set.chunks if counts[c.text] > window]
        if too_long:
            worst = max(counts[c.text] for c in too_long)
            raise DataError(
                f"{len(too_long)} probe chunks exceed the base embedder's content window ({window} tokens of "
                f"{self.embedder.name}; longest {worst}); rebuild the probes with a smaller token_per_sample "
                "or with this embedder as probes.tokenizer"
            )

    def ensure(self, length: int) -> dict[str, np.ndarray]:
        """The stored (or freshly computed) vectors of one length."""
        if self.store.done(length):
            # A resumed run: the stored vectors join the shared memo, so they are not embedded again.
            stored = load_npz(self.store.folder / length_file(length))
            texts = _texts(self.probe_set.samples(length))
            for sample_texts, vectors in zip(texts, stored["embeddings"], strict=True):
                self._known.update(zip(sample_texts, vectors, strict=True))
            return stored
        samples = self.probe_set.samples(length)
        texts = _texts(samples)
        batch = self.config.runtime.batch_size
        timed_samples = self.config.runtime.timed_samples
        if not self._warm and timed_samples != 0:  # warm-up passes only serve the timed samples
            for _ in range(self.config.runtime.warmup):
                self.embedder.encode(texts[0], batch_size=batch)
            self._warm = True
        vectors, latencies = [], []
        bar = _bar(len(texts), f"embed L={length}", self.config.runtime.progress, leave=False)
        for index, sample_texts in enumerate(texts):
            if timed_samples is None or index < timed_samples:
                encoded, ms = timed(lambda t=sample_texts: self.embedder.encode(t, batch_size=batch))
                encoded = np.asarray(encoded, dtype=np.float32)
                self._known.update(zip(sample_texts, encoded, strict=True))
                if self.cache is not None:
                    self.cache.put_many(self.embedder.fingerprint, sample_texts, encoded)
            else:
                missing = list(dict.fromkeys(t for t in sample_texts if t not in self._known))
                keys = {t: text_key(t) for t in missing}
                fresh, _ = embed_chunk_texts(
                    self.embedder, self.cache, {k: t for t, k in keys.items()}, batch
                )
                self._known.update((t, fresh[key]) for t, key in keys.items())
                encoded, ms = np.stack([self._known[t] for t in sample_texts]), float("nan")
            vectors.append(encoded)
            latencies.append(ms)
            bar.update(1)
        bar.close()
        arrays = {
            "embeddings": np.stack(vectors),
            "embed_ms": np.asarray(latencies, dtype=np.float64),
            "n_tokens": np.array([[c.n_tokens for c in s] for s in samples], dtype=np.int64),
        }
        self.store.save(length, arrays, len(texts))
        return load_npz(self.store.folder / length_file(length))


def _run_competitor(
    competitor: Competitor,
    base_embedder: Embedder | None,
    store: ChunkStore | None,
    probe_set: ProbeSet,
    config: BenchmarkConfig,
    output: Path,
) -> Path:
    description = competitor.describe(base_embedder)
    metric = get_metric(config.metric)
    chunk_space = config.scoring.chunk_space if competitor.mode == MERGER_KIND else NATIVE_KIND
    header = {
        "metric": config.metric,
        "competitor": description,
        "chunk_space": chunk_space,
        "config": config_to_dict(config),
        "probes": probe_set.summary(),
        "latency_protocol": LATENCY_PROTOCOL,
    }
    run_key = sha256_canonical(
        {
            "metric": config.metric,
            "competitor": description,
            "chunk_space": chunk_space,
            "probes": probe_set.content_hash,
            **metric.run_key_fields(config.probes.group_amount),
        }
    )
    folder = _Folder(output / competitor.name, run_key, header)
    runtime = config.runtime
    outer = tqdm(probe_set.lengths, desc=competitor.name, unit="length", disable=not runtime.progress)
    for length in outer:
        if folder.done(length):
            continue
        samples = probe_set.samples(length)
        bar = _bar(len(samples), f"{competitor.name} L={length}", runtime.progress, leave=False)
        settings = GenerationSettings(
            length=length,
            chunk_space=chunk_space,
            group_amount=config.probes.group_amount,
            batch_size=runtime.batch_size,
            merge_batch_size=runtime.merge_batch_size,
            warmup=runtime.warmup,
            truncate=competitor.config.overflow == "truncate",
            on_sample=bar.update,
        )
        if competitor.mode == MERGER_KIND:
            assert store is not None and competitor.merger is not None
            stored = store.ensure(length)
            arrays = metric.generate_merger(competitor.merger, stored, settings)
        else:
            embedder = competitor.embedder
            assert embedder is not None
            texts = _texts(samples)
            over, longest = metric.native_overflow(embedder, texts, settings)
            if over and not settings.truncate:
                bar.close()
                folder.skip(
                    length,
                    f"{over} of {len(texts)} samples exceed the {embedder.content_window}-token window of "
                    f"{embedder.name} (longest {longest} tokens)",
                )
                continue
            arrays = metric.generate_native(embedder, texts, settings)
            if settings.truncate and over:
                folder.manifest.setdefault("truncated", {})[str(length)] = over
        bar.close()
        folder.save(length, arrays, len(samples))
    folder.finish()
    return folder.folder


def generate(
    config: BenchmarkConfig,
    output: str | Path,
    *,
    probe_set: ProbeSet | None = None,
    embedder: Embedder | None = None,
    mergers: Mapping[str, Merger] | None = None,
    native_embedders: Mapping[str, Embedder] | None = None,
    only: list[str] | None = None,
    cache: ChunkCache | None = None,
) -> list[Path]:
    """Write raw outputs for every competitor (or those in ``only``) under ``output``.

    Objects passed in (``embedder`` for the base embedder, ``mergers`` and ``native_embedders``
    keyed by competitor name) are used instead of loading the config's specs. ``cache``: a chunk
    cache the base embedder's probe chunks are read from and stored in (see :class:`ChunkStore`).
    Returns the competitor folders.
    """
    out = Path(output)
    if probe_set is None:
        probe_set = load_probes(config.probes.file)
    check_compatible(probe_set, expected_params(config), str(config.probes.file))
    competitors = build_competitors(config, mergers, native_embedders, only)
    store = None
    base = None
    if any(c.mode == MERGER_KIND for c in competitors):
        base = embedder if embedder is not None else load_embedder_spec(config.embedder)
        store = ChunkStore(out, base, probe_set, config, cache)
        store.check_window()
    for competitor in competitors:
        if competitor.mode == NATIVE_KIND and competitor.embedder is not None:
            _check_native_chunks(competitor.embedder, probe_set)
    return [_run_competitor(c, base, store, probe_set, config, out) for c in competitors]


def _check_native_chunks(embedder: Embedder, probe_set: ProbeSet) -> None:
    per_chunk = max(embedder.count_tokens(c.text) for c in probe_set.chunks)
    if per_chunk > embedder.content_window:
        raise DataError(
            f"single probe chunks have up to {per_chunk} tokens for {embedder.name}, beyond its "
            f"{embedder.content_window}-token window, so not even one chunk can be embedded whole; "
            f"rebuild the probes with token_per_sample below {embedder.content_window}"
        )
