"""Probe sets: the texts every competitor is evaluated on, built ONCE from a corpus.

Each chunk is the first ``token_per_sample`` tokens of a distinct document, cut with one
fixed reference tokenizer (an embedder's ``count_tokens``/``split``) that is recorded in the
probe set. Every competitor then reads the same texts; the reference implementation re-cut
texts with each model's own tokenizer, which fed different models different documents.

A sample of length L holds L chunks (metric ``rss``) or L−1 probe chunks followed by
``group_amount`` context groups of L−2 chunks (metric ``srs``). Chunks of one sample always
come from different documents and from different translation groups (``Article.group``),
and optionally no two of them are more similar than ``max_similarity``.

Stored as Parquet (parameters in the schema metadata) or JSONL (parameters on the first
line), both with a content hash that is checked on load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from vbert.data.article import Article
from vbert.embedders.base import Embedder
from vbert.errors import DataError, IntegrityError
from vbert.files import atomic_write, atomic_write_text, sha256_canonical
from vbert.finesse.metrics import get_metric
from vbert.finesse.sources import iter_source

PROBES_FORMAT = "vbert-finesse-probes/1"
PARQUET_METADATA_KEY = b"vbert.finesse.probes"
JSONL_HEADER_KEY = "finesse_probe_set"
# A head cut from a character window is trusted only this many tokens away from the window's end
# (tokenisation near a cut can differ from the full text's); otherwise the full text is tokenised.
HEAD_SAFETY_TOKENS = 16
CHARS_PER_TOKEN_WINDOW = 12
COMPATIBILITY_KEYS = (
    "metric",
    "sequence_length",
    "samples_per_length",
    "token_per_sample",
    "group_amount",
    "seed",
    "document_reuse",
    "max_similarity",
)


class NotEnoughDocumentsError(DataError):
    """The source cannot fill the probe set; the message says how many documents are needed and found."""


class ProbeSetError(IntegrityError):
    """A probe file is damaged, edited, or does not match the benchmark config."""


@dataclass(frozen=True)
class ProbeChunk:
    """One chunk text of one sample."""

    length: int
    sample: int
    position: int
    doc_id: str
    lang: str
    source: str
    text: str
    n_tokens: int


@dataclass(frozen=True)
class ProbeSet:
    """The probe texts plus the parameters that made them and their content hash."""

    params: dict[str, Any]
    chunks: tuple[ProbeChunk, ...]
    content_hash: str

    @property
    def lengths(self) -> list[int]:
        return list(self.params["lengths"])

    @property
    def metric(self) -> str:
        return str(self.params["metric"])

    def samples(self, length: int) -> list[list[ProbeChunk]]:
        """The samples of one length, each a list of chunks in position order."""
        rows = sorted((c for c in self.chunks if c.length == length), key=lambda c: (c.sample, c.position))
        grouped: dict[int, list[ProbeChunk]] = {}
        for row in rows:
            grouped.setdefault(row.sample, []).append(row)
        return [grouped[k] for k in sorted(grouped)]

    def summary(self) -> dict[str, Any]:
        """What results record about the probe set."""
        return {"content_hash": self.content_hash, **{k: self.params[k] for k in sorted(self.params)}}


def chunks_per_sample(length: int, metric: str, group_amount: int) -> int:
    """Number of chunk texts one sample of ``length`` needs (the metric decides)."""
    return get_metric(metric).chunks_per_sample(length, group_amount)


def documents_needed(
    lengths: Sequence[int], samples_per_length: int, metric: str, group_amount: int, document_reuse: str
) -> int:
    """Distinct documents the probe set needs (all chunks, or the largest sample when reused)."""
    per_sample = [chunks_per_sample(length, metric, group_amount) for length in lengths]
    if document_reuse == "none":
        return sum(per_sample) * samples_per_length
    return max(per_sample)


def content_hash(params: dict[str, Any], chunks: Iterable[ProbeChunk]) -> str:
    """``sha256:`` of the canonical JSON of the parameters and every chunk."""
    return "sha256:" + sha256_canonical({"params": params, "chunks": [asdict(c) for c in chunks]})


@dataclass
class _Candidate:
    article: Article
    head: str
    n_tokens: int


def cut_head(text: str, token_per_sample: int, tokenizer: Embedder) -> tuple[str, int] | None:
    """The first ``token_per_sample`` tokens of ``text`` (and its token count), or None if shorter.

    Long texts are tokenised only over a character window, trusted when it holds comfortably
    more tokens than needed; otherwise the whole text is tokenised.
    """
    window_chars = token_per_sample * CHARS_PER_TOKEN_WINDOW
    window = text
    if len(text) > window_chars:
        window = text[:window_chars]
        if tokenizer.count_tokens(window) < token_per_sample + HEAD_SAFETY_TOKENS:
            window = text
    if tokenizer.count_tokens(window) < token_per_sample:
        return None
    pieces = tokenizer.split(window, token_per_sample)
    if not pieces:
        return None
    head = pieces[0]
    return head, tokenizer.count_tokens(head)


class _LazyVectors:
    """Embeds candidate heads only when the similarity filter first needs them, in batches."""

    def __init__(self, embedder: Embedder, candidates: Sequence[_Candidate], batch_size: int) -> None:
        self.embedder = embedder
        self.candidates = candidates
        self.batch_size = batch_size
        self.vectors: dict[int, np.ndarray] = {}

    def get(self, index: int, upcoming: Sequence[int]) -> np.ndarray:
        if index not in self.vectors:
            todo = [i for i in [index, *upcoming] if i not in self.vectors][: self.batch_size]
            encoded = self.embedder.encode(
                [self.candidates[i].head for i in todo], batch_size=self.batch_size
            )
            for i, vector in zip(todo, np.asarray(encoded, dtype=np.float64), strict=True):
                self.vectors[i] = vector / max(np.linalg.norm(vector), 1e-12)
        return self.vectors[index]


def _collect_candidates(
    articles: Iterable[Article],
    tokenizer: Embedder,
    token_per_sample: int,
    langs: Sequence[str] | None,
    max_documents: int | None,
    progress: bool,
) -> tuple[list[_Candidate], int]:
    candidates: list[_Candidate] = []
    seen_heads: set[str] = set()
    scanned = 0
    bar = tqdm(desc="scanning documents", unit="doc", disable=not progress)
    for article in articles:
        if langs and article.lang not in langs:
            continue
        if max_documents is not None and scanned >= max_documents:
            break
        scanned += 1
        bar.update(1)
        cut = cut_head(article.text, token_per_sample, tokenizer)
        if cut is None:
            continue
        head, n_tokens = cut
        digest = hashlib.sha256(head.encode("utf-8")).hexdigest()
        if digest in seen_heads:  # duplicated boilerplate would make two "distinct" chunks identical
            continue
        seen_heads.add(digest)
        candidates.append(_Candidate(article, head, n_tokens))
    bar.close()
    return candidates, scanned


def build_probes(
    articles: Iterable[Article],
    tokenizer: Embedder,
    *,
    lengths: Sequence[int],
    samples_per_length: int,
    token_per_sample: int,
    seed: int = 42,
    metric: str = "rss",
    group_amount: int = 8,
    max_similarity: float | None = None,
    document_reuse: str = "none",
    langs: Sequence[str] | None = None,
    max_documents: int | None = None,
    source: dict[str, Any] | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> ProbeSet:
    """Build a probe set from ``articles``, cutting chunks with ``tokenizer``.

    Raises:
        NotEnoughDocumentsError: before any embedding, when the source has fewer usable
            documents than the probe set needs (the message gives both numbers), or later
            when ``max_similarity`` rejects too many candidates.
    """
    lengths = sorted(set(lengths))
    if not lengths or lengths[0] < 3:
        raise ValueError(f"sequence lengths must be ≥ 3, got {lengths}")
    if document_reuse not in ("none", "across_samples"):
        raise ValueError(f"document_reuse must be 'none' or 'across_samples', got {document_reuse!r}")
    if token_per_sample > tokenizer.content_window:
        raise ValueError(
            f"token_per_sample {token_per_sample} exceeds the reference tokenizer's content window "
            f"({tokenizer.content_window} tokens of {tokenizer.name}); lower token_per_sample"
        )
    candidates, scanned = _collect_candidates(
        articles, tokenizer, token_per_sample, langs, max_documents, progress
    )
    needed = documents_needed(lengths, samples_per_length, metric, group_amount, document_reuse)
    groups = {c.article.group or f"doc:{c.article.id}" for c in candidates}
    per_sample = max(chunks_per_sample(length, metric, group_amount) for length in lengths)
    if len(candidates) < needed or len(groups) < per_sample:
        found = len(candidates) if len(candidates) < needed else len(groups)
        what = "documents" if len(candidates) < needed else "distinct translation groups"
        raise NotEnoughDocumentsError(
            f"the probe set needs {needed if what == 'documents' else per_sample} {what} with at least "
            f"{token_per_sample} tokens (lengths {lengths[0]}–{lengths[-1]} × {samples_per_length} samples, "
            f"metric {metric}, document_reuse {document_reuse}) but found only {found} "
            f"(scanned {scanned} documents). Fix: add documents to the source, lower token_per_sample, "
            "samples_per_length or sequence_length.max"
            + (", or set document_reuse: across_samples" if document_reuse == "none" else "")
        )

    rng = np.random.default_rng(seed)
    lazy = _LazyVectors(tokenizer, candidates, batch_size) if max_similarity is not None else None
    available = [int(i) for i in rng.permutation(len(candidates))]
    rows: list[ProbeChunk] = []
    total = sum(samples_per_length for _ in lengths)
    bar = tqdm(total=total, desc="assembling probes", unit="sample", disable=not progress)
    for length in lengths:
        n_chunks = chunks_per_sample(length, metric, group_amount)
        for sample in range(samples_per_length):
            order = (
                available if document_reuse == "none" else [int(i) for i in rng.permutation(len(candidates))]
            )
            picked = _pick_sample(order, candidates, n_chunks, max_similarity, lazy)
            if len(picked) < n_chunks:
                raise NotEnoughDocumentsError(
                    f"max_similarity {max_similarity} rejected too many candidates: sample {sample} of length "
                    f"{length} found only {len(picked)} of {n_chunks} sufficiently distinct chunks. Fix: raise "
                    "max_similarity, add documents, or set document_reuse: across_samples"
                )
            if document_reuse == "none":
                chosen = set(picked)
                available = [i for i in available if i not in chosen]
            for position, index in enumerate(picked):
                cand = candidates[index]
                rows.append(
                    ProbeChunk(
                        length=length,
                        sample=sample,
                        position=position,
                        doc_id=cand.article.id,
                        lang=cand.article.lang,
                        source=cand.article.source,
                        text=cand.head,
                        n_tokens=cand.n_tokens,
                    )
                )
            bar.update(1)
    bar.close()
    params = {
        "format": PROBES_FORMAT,
        "metric": metric,
        "lengths": lengths,
        "sequence_length": {"min": lengths[0], "max": lengths[-1]},
        "samples_per_length": samples_per_length,
        "token_per_sample": token_per_sample,
        "group_amount": group_amount,
        "seed": seed,
        "document_reuse": document_reuse,
        "max_similarity": max_similarity,
        "tokenizer": {"name": tokenizer.name, "fingerprint": tokenizer.fingerprint},
        "source": source or {},
        "documents_scanned": scanned,
        "documents_eligible": len(candidates),
    }
    return ProbeSet(params=params, chunks=tuple(rows), content_hash=content_hash(params, rows))


def _pick_sample(
    order: Sequence[int],
    candidates: Sequence[_Candidate],
    n_chunks: int,
    max_similarity: float | None,
    lazy: _LazyVectors | None,
) -> list[int]:
    """Take candidates in ``order`` until ``n_chunks``: distinct groups, and not too similar if asked."""
    picked: list[int] = []
    groups: set[str] = set()
    vectors: list[np.ndarray] = []
    for position, index in enumerate(order):
        cand = candidates[index]
        group = cand.article.group or f"doc:{cand.article.id}"
        if group in groups:
            continue
        if lazy is not None and max_similarity is not None:
            vector = lazy.get(index, order[position + 1 : position + lazy.batch_size])
            if vectors and float(np.max(np.stack(vectors) @ vector)) > max_similarity:
                continue
            vectors.append(vector)
        picked.append(index)
        groups.add(group)
        if len(picked) == n_chunks:
            break
    return picked


def save_probes(probe_set: ProbeSet, path: str | Path) -> Path:
    """Write a probe set atomically as ``.parquet`` or ``.jsonl`` (chosen by the suffix)."""
    target = Path(path)
    header = {**probe_set.params, "content_hash": probe_set.content_hash}
    rows = [asdict(c) for c in probe_set.chunks]
    if target.suffix == ".jsonl":
        lines = [json.dumps({JSONL_HEADER_KEY: header}, ensure_ascii=False, sort_keys=True)]
        lines += [json.dumps(row, ensure_ascii=False, sort_keys=True) for row in rows]
        atomic_write_text(target, "\n".join(lines) + "\n")
    elif target.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = list(ProbeChunk.__dataclass_fields__)
        table = pa.table({name: [row[name] for row in rows] for name in names})
        table = table.replace_schema_metadata({PARQUET_METADATA_KEY: json.dumps(header, sort_keys=True)})
        atomic_write(target, lambda handle: pq.write_table(table, handle))
    else:
        raise ValueError(f"probe file {target} must end in .parquet or .jsonl")
    return target


def load_probes(path: str | Path) -> ProbeSet:
    """Read a probe set and check its content hash.

    Raises:
        ProbeSetError: the file is not a probe set, or was changed after it was built.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"probe set {file} does not exist; build it with `finesse build-probes --config ...`"
        )
    if file.suffix == ".jsonl":
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
            header = json.loads(lines[0])[JSONL_HEADER_KEY]
            rows = [json.loads(line) for line in lines[1:] if line.strip()]
        except (IndexError, KeyError, TypeError, ValueError, RecursionError) as err:
            raise ProbeSetError(
                f"{file} is not a Finesse probe set (no {JSONL_HEADER_KEY!r} header line)"
            ) from err
    elif file.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(file)
            rows = table.to_pylist()
        except (OSError, ValueError) as err:  # ArrowInvalid and UnicodeDecodeError are ValueErrors
            raise ProbeSetError(f"{file} is not a readable Parquet file ({err})") from err
        raw = (table.schema.metadata or {}).get(PARQUET_METADATA_KEY)
        if raw is None:
            raise ProbeSetError(
                f"{file} is not a Finesse probe set (no {PARQUET_METADATA_KEY.decode()} metadata)"
            )
        try:
            header = json.loads(raw)
        except (ValueError, RecursionError) as err:
            raise ProbeSetError(f"{file} has an unreadable probe-set header ({err})") from err
    else:
        raise ProbeSetError(f"probe file {file} must end in .parquet or .jsonl")
    if not isinstance(header, dict) or not all(isinstance(row, dict) for row in rows):
        raise ProbeSetError(f"{file} is not a Finesse probe set (its header or rows are not JSON objects)")
    stored = header.pop("content_hash", None)
    try:
        chunks = tuple(ProbeChunk(**row) for row in rows)
    except TypeError as err:
        raise ProbeSetError(f"{file} has rows that are not probe chunks: {err}") from err
    actual = content_hash(header, chunks)
    if stored != actual:
        raise ProbeSetError(
            f"probe set {file} does not match its content hash (stored {stored}, computed {actual}): it was "
            "edited or damaged after it was built. Rebuild it with `finesse build-probes`."
        )
    return ProbeSet(params=header, chunks=chunks, content_hash=actual)


def check_compatible(probe_set: ProbeSet, expected: dict[str, Any], where: str) -> None:
    """Refuse a probe set whose parameters differ from the config's (naming each difference)."""
    diffs = [
        f"{key}: probe set has {probe_set.params.get(key)!r}, config has {expected[key]!r}"
        for key in COMPATIBILITY_KEYS
        if key in expected and probe_set.params.get(key) != expected[key]
    ]
    if diffs:
        raise ProbeSetError(
            f"the probe set {where} was built with other settings than the config:\n  "
            + "\n  ".join(diffs)
            + "\nRebuild it with `finesse build-probes --config ...` or restore the config it was built with."
        )


def expected_params(config: Any) -> dict[str, Any]:
    """The probe parameters a benchmark config asks for, in the probe set's terms."""
    probes = config.probes
    return {
        "metric": config.metric,
        "sequence_length": {"min": probes.sequence_length.min, "max": probes.sequence_length.max},
        "samples_per_length": probes.samples_per_length,
        "token_per_sample": probes.token_per_sample,
        "group_amount": probes.group_amount,
        "seed": config.seed,
        "document_reuse": probes.document_reuse,
        "max_similarity": probes.max_similarity,
    }


def build_probes_from_config(
    config: Any,
    tokenizer: Embedder | None = None,
    output: str | Path | None = None,
    load_tokenizer: Callable[[str], Embedder] | None = None,
) -> tuple[ProbeSet, Path]:
    """Build the probe set a config describes and write it to ``output`` (default ``probes.file``)."""
    probes = config.probes
    if probes.source is None:
        raise ValueError(
            "the config has no probes.source; say where documents come from (kind: files, path: ...)"
        )
    if tokenizer is None:
        from vbert.finesse.competitors import load_embedder_spec

        tokenizer = (load_tokenizer or load_embedder_spec)(probes.tokenizer)
    source = probes.source
    probe_set = build_probes(
        iter_source(source),
        tokenizer,
        lengths=probes.sequence_length.lengths,
        samples_per_length=probes.samples_per_length,
        token_per_sample=probes.token_per_sample,
        seed=config.seed,
        metric=config.metric,
        group_amount=probes.group_amount,
        max_similarity=probes.max_similarity,
        document_reuse=probes.document_reuse,
        langs=source.langs,
        max_documents=source.max_documents,
        source=source.model_dump(mode="json"),
        batch_size=config.runtime.batch_size,
        progress=config.runtime.progress,
    )
    target = save_probes(probe_set, output or probes.file)
    return probe_set, target
