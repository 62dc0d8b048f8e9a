"""The Finesse benchmark configuration: a strict pydantic v2 schema loaded from YAML.

Strict means: an unknown key is an error that names the key (the reference silently
ignored a misspelt ``tokper_sample`` for months), types are not coerced, ``min ≤ max`` is
checked, and input paths are checked when the config is loaded for use. Relative paths are
resolved against the folder of the config file.

Two commented presets ship with the package (``finesse init --preset quick|leaderboard``).
"""

from __future__ import annotations

import difflib
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from vbert.errors import ConfigError
from vbert.finesse.metrics import METRICS, get_metric
from vbert.mergers import baseline_names

PRESETS: tuple[str, ...] = ("quick", "leaderboard", "reference")
MERGER_KIND, NATIVE_KIND = "merger", "native"
PY_SPEC_PREFIX = "py:"
# Packaged `datasets` builders that read local files and need no revision.
HF_PACKAGED_BUILDERS = frozenset({"parquet", "json", "csv", "text", "arrow"})


def competitor_kinds() -> list[str]:
    """``merger`` (a trained merger or any merger spec), every baseline of
    :data:`vbert.mergers.MERGERS`, and ``native`` (an embedder on the joined text)."""
    return [MERGER_KIND, *baseline_names(), NATIVE_KIND]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _check_path(value: str | None, info: ValidationInfo, what: str) -> str | None:
    """Resolve ``value`` against the config folder and, when asked, check that it exists."""
    if value is None or value == "default" or value.startswith(PY_SPEC_PREFIX):
        return value
    context = info.context or {}
    base = context.get("base_dir")
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    if context.get("check_paths") and not path.exists():
        raise ValueError(f"{what} {value!r} does not exist (looked for {path})")
    return str(path) if base is not None else value


class SequenceLength(_Strict):
    """Inclusive range of sequence lengths L (number of chunks per sample)."""

    min: int = Field(4, ge=3, description="smallest L; Top-Down needs at least 3 chunks")
    max: int = Field(16, ge=3, description="largest L")

    @model_validator(mode="after")
    def _ordered(self) -> SequenceLength:
        if self.min > self.max:
            raise ValueError(f"sequence_length.min ({self.min}) must be ≤ sequence_length.max ({self.max})")
        return self

    @property
    def lengths(self) -> list[int]:
        return list(range(self.min, self.max + 1))


class _SourceBase(_Strict):
    langs: list[str] | None = Field(None, description="keep only documents in these languages")
    max_documents: int | None = Field(None, ge=1, description="read at most this many documents")


class FilesSource(_SourceBase):
    """A folder of ``.txt``/``.md`` files or a JSONL file with a ``text`` field."""

    kind: Literal["files"]
    path: str
    lang: str = Field("und", description="language of files that do not say")

    @field_validator("path")
    @classmethod
    def _exists(cls, value: str, info: ValidationInfo) -> str:
        return _check_path(value, info, "corpus path") or value


def _is_local(path: str) -> bool:
    """A packaged builder reading local files, or a folder; anything else is a hub dataset id."""
    return path in HF_PACKAGED_BUILDERS or path.startswith((".", "/", "~"))


class HuggingFaceSource(_SourceBase):
    """A Hugging Face ``datasets`` source, pinned to a revision (or local files)."""

    kind: Literal["huggingface"]
    path: str = Field(description="hub dataset id, a packaged builder (parquet/json/csv/text) or a folder")
    name: str | None = Field(None, description="dataset config name, e.g. 20231101.en")
    split: str = "train"
    text_column: str = "text"
    id_column: str | None = None
    lang_column: str | None = None
    lang: str = "und"
    revision: str | None = Field(None, description="commit hash; required for hub datasets")
    data_files: list[str] | None = None
    data_dir: str | None = None
    streaming: bool = False

    @field_validator("data_files")
    @classmethod
    def _files_exist(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return None
        if not _is_local(info.data.get("path", "")):
            return value  # paths inside a hub dataset repository
        return [_check_path(item, info, "data file") or item for item in value]

    @model_validator(mode="after")
    def _pinned(self) -> HuggingFaceSource:
        if not _is_local(self.path) and not self.revision:
            raise ValueError(
                f"huggingface source {self.path!r} needs `revision:` (a commit hash) so every run reads "
                "the same data; find it on the dataset page under 'Files and versions'"
            )
        return self


class CorpusSource(_SourceBase):
    """A corpus known to :func:`vbert.data.corpora.load_corpus` (e.g. ``debian``)."""

    kind: Literal["corpus"]
    name: str
    options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for load_corpus")
    split: Literal["train", "validation", "test"] | None = Field(
        None, description="keep one document split (vbert.data.splits); held-out probes use test"
    )
    split_seed: int = Field(0, description="seed of the document split")


Source = Annotated[FilesSource | HuggingFaceSource | CorpusSource, Field(discriminator="kind")]


class ProbesConfig(_Strict):
    """How the probe set (the texts every competitor sees) is built by ``finesse build-probes``."""

    file: str = Field("probes.parquet", description="probe set file (.parquet or .jsonl)")
    source: Source | None = None
    tokenizer: str = Field("default", description="reference embedder whose tokenizer counts and cuts chunks")
    sequence_length: SequenceLength = SequenceLength()
    samples_per_length: int = Field(5, ge=1)
    token_per_sample: int = Field(256, ge=1)
    group_amount: int = Field(8, ge=2, description="SRS only: context groups per sample")
    max_similarity: float | None = Field(None, gt=-1.0, le=1.0)
    document_reuse: Literal["none", "across_samples"] = "none"

    @field_validator("file")
    @classmethod
    def _probe_suffix(cls, value: str, info: ValidationInfo) -> str:
        if not value.endswith((".parquet", ".jsonl")):
            raise ValueError(f"probes.file {value!r} must end in .parquet or .jsonl")
        context = info.context or {}
        base = context.get("base_dir")
        if base is not None and not Path(value).expanduser().is_absolute():
            return str(Path(base) / Path(value).expanduser())
        return value

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer_path(cls, value: str, info: ValidationInfo) -> str:
        return _resolve_model(value, info, "tokenizer embedder") or value


class ScoringConfig(_Strict):
    formula: Literal["q1q3", "q2q2"] = "q1q3"
    score_version: Literal["balanced", "sum"] = "balanced"
    chunk_space: Literal["base", "merger"] = Field(
        "base", description="compare syntheses with base-embedder chunk vectors, or with 1-chunk merges"
    )


class CompetitorConfig(_Strict):
    """One model or baseline under test."""

    name: str = Field(description="label in results and folder name of its raw outputs")
    kind: str = Field(description="merger, native, or a baseline merger name (mean, truncation, ...)")
    merger: str | None = Field(
        None,
        description="kind merger: a merger name, saved merger folder, hub id, package.module:factory "
        "or py:module:attr",
    )
    embedder: str | None = Field(None, description="kind native: embedder name, folder or py:module:attr")
    on_overflow: Literal["skip", "truncate"] | None = Field(
        None, description="kind native: lengths beyond the window are not evaluated (skip) or truncated"
    )

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value):
            raise ValueError(
                f"competitor name {value!r} must be 1-64 letters, digits, '.', '_' or '-' (it names a folder)"
            )
        return value

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        kinds = competitor_kinds()
        if value not in kinds:
            raise ValueError(f"unknown competitor kind {value!r}; use one of {', '.join(kinds)}")
        return value

    @field_validator("merger", "embedder")
    @classmethod
    def _model_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _resolve_model(value, info, f"{info.field_name} folder")

    @model_validator(mode="after")
    def _fields_match_kind(self) -> CompetitorConfig:
        if self.merger is not None and self.kind != MERGER_KIND:
            raise ValueError(f"competitor {self.name!r}: `merger` is only allowed with kind: merger")
        if (self.embedder is not None or self.on_overflow is not None) and self.kind != NATIVE_KIND:
            raise ValueError(
                f"competitor {self.name!r}: `embedder`/`on_overflow` are only allowed with kind: native"
            )
        return self

    @property
    def merger_spec(self) -> str:
        return self.merger or "default"

    @property
    def embedder_spec(self) -> str:
        return self.embedder or "default"

    @property
    def overflow(self) -> str:
        return self.on_overflow or "skip"


class RuntimeConfig(_Strict):
    batch_size: int = Field(32, ge=1, description="texts per embedder call")
    merge_batch_size: int = Field(256, ge=1, description="sequences per merge_batch call (srs)")
    warmup: int = Field(2, ge=0, description="untimed warm-up passes before latencies are measured")
    timed_samples: int | None = Field(
        5,
        ge=0,
        description="samples per length whose embedding is timed; the others reuse the vectors of chunks "
        "already embedded (documents recur across samples) and record no latency. null = time all, "
        "0 = time none (scores only)",
    )
    progress: bool = True


class BenchmarkConfig(_Strict):
    """The whole benchmark: probes, competitors, scoring and runtime settings."""

    name: str = "finesse"
    metric: str = Field("rss", description="a Finesse metric name (vbert.finesse.metrics.METRICS) or spec")
    seed: int = 42
    embedder: str = Field("default", description="base embedder for merger-mode competitors")
    probes: ProbesConfig = ProbesConfig()
    scoring: ScoringConfig = ScoringConfig()
    competitors: list[CompetitorConfig] = Field(min_length=1)
    runtime: RuntimeConfig = RuntimeConfig()

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; use one of {', '.join(METRICS.names())}")
        get_metric(value)  # a module:Class spec must import and name a FinesseMetric
        return value

    @field_validator("embedder")
    @classmethod
    def _embedder_path(cls, value: str, info: ValidationInfo) -> str:
        return _resolve_model(value, info, "embedder folder") or value

    @model_validator(mode="after")
    def _unique_names(self) -> BenchmarkConfig:
        names = [c.name for c in self.competitors]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"competitor names must be unique; repeated: {', '.join(duplicates)}")
        return self

    def competitor(self, name: str) -> CompetitorConfig:
        for candidate in self.competitors:
            if candidate.name == name:
                return candidate
        raise KeyError(f"no competitor named {name!r}; the config has {[c.name for c in self.competitors]}")


def _resolve_model(value: str | None, info: ValidationInfo, what: str) -> str | None:
    """Model specs are names (``default``, ``minilm``, hub ids like ``intfloat/multilingual-e5-base``),
    ``py:module:attr`` factories, or folders. Only path-like specs (starting with ``.``, ``/`` or
    ``~``, or naming an existing folder next to the config) are resolved and checked."""
    if value is None or value.startswith(PY_SPEC_PREFIX):
        return value
    base = (info.context or {}).get("base_dir")
    next_to_config = base is not None and (Path(base) / value).exists()
    if value.startswith((".", "/", "~")) or next_to_config:
        return _check_path(value, info, what)
    return value


def _format_errors(err: ValidationError, source: str, data: Any) -> str:
    lines = [f"{source} is not a valid Finesse config:"]
    for issue in err.errors():
        parts, allowed = _walk(issue["loc"], data)
        location = ".".join(str(part) for part in parts)
        if issue["type"] == "extra_forbidden":
            key = str(parts[-1])
            hint = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            lines.append(
                f"  - unknown key {location!r}{suggestion} (allowed here: {', '.join(sorted(allowed))})"
            )
        else:
            lines.append(f"  - {location or '(top level)'}: {issue['msg']}")
    return "\n".join(lines)


def _walk(location: tuple, data: Any) -> tuple[list[Any], list[str]]:
    """The location without pydantic's union tags, and the keys allowed where its last part sits."""
    model: Any = BenchmarkConfig
    node = data
    parts: list[Any] = []
    for index, part in enumerate(location):
        last = index == len(location) - 1
        if isinstance(part, int):
            parts.append(part)
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if (
            isinstance(node, dict)
            and node.get("kind") == part
            and model is not None
            and part not in model.model_fields
        ):
            continue  # the discriminator tag pydantic inserts for a tagged union
        parts.append(part)
        if last or model is None:
            break
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        node = node.get(part) if isinstance(node, dict) else None
        model = _model_in(annotation, node)
    return parts, (list(model.model_fields) if model is not None else [])


def _model_in(annotation: Any, node: Any) -> Any:
    """The pydantic model class behind an annotation (unwrapping Optional, list and the source union)."""
    candidates, stack = [], [annotation]
    while stack:
        current = stack.pop()
        candidates.append(current)
        stack.extend(getattr(current, "__args__", ()))
    models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    if isinstance(node, dict) and "kind" in node:
        for candidate in models:
            kind_field = candidate.model_fields.get("kind")
            if kind_field is not None and node["kind"] in getattr(kind_field.annotation, "__args__", ()):
                return candidate
    return models[0] if models else None


def parse_config(
    data: Any, source: str = "config", base_dir: str | Path | None = None, check_paths: bool = True
) -> BenchmarkConfig:
    """Validate a config mapping; raise :class:`ConfigError` naming every bad or unknown key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a YAML mapping of keys to values, got {type(data).__name__}")
    context = {"base_dir": str(base_dir) if base_dir is not None else None, "check_paths": check_paths}
    try:
        return BenchmarkConfig.model_validate(data, context=context)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source, data)) from None


def load_config(path: str | Path, check_paths: bool = True) -> BenchmarkConfig:
    """Load and validate a YAML config; relative paths inside it are resolved against its folder."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(
            f"config file {file} does not exist; create one with `finesse init --output {file}`"
        )
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{file} is not valid YAML: {err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{file} is not UTF-8 text ({err})") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError(f"{file} is not valid YAML: it is nested too deeply") from None
    return parse_config(data, str(file), base_dir=file.resolve().parent, check_paths=check_paths)


def preset_text(name: str) -> str:
    """The commented YAML text of a packaged preset (``quick`` or ``leaderboard``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return resources.files("vbert.finesse").joinpath("presets", f"{name}.yaml").read_text(encoding="utf-8")


def load_preset(name: str) -> BenchmarkConfig:
    """The parsed preset, without path checks (its corpus folder need not exist yet)."""
    return parse_config(yaml.safe_load(preset_text(name)), f"preset {name!r}", check_paths=False)


def config_to_dict(config: BenchmarkConfig) -> dict[str, Any]:
    """A plain JSON-ready dict of the config, as recorded in raw manifests and results."""
    return config.model_dump(mode="json")
