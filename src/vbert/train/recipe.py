"""Training recipes: a strict YAML schema (pydantic v2) for multi-stage merger training.

A recipe names the model, shared training settings, optional validation data and a list
of stages. Stages run in order on the same weights; each has its own objective, data,
PPE width, optimiser settings and length (steps or epochs). Unknown keys are errors, so
a typo never silently falls back to a default. See ``docs/training.md`` for examples.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .objectives import DistillKind

_ARCHITECTURE_FIELDS = (
    "d_model",
    "num_layers",
    "num_heads",
    "ffn_dim",
    "dropout",
    "activation",
    "position_mode",
    "ppe_dim",
    "pe_base",
    "residual_to_mean",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """The merger to train: a fresh architecture, or ``init_from`` an existing Hugging Face folder."""

    init_from: str | None = None
    d_model: int = Field(384, ge=2)
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(6, ge=1)
    ffn_dim: int = Field(1536, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    activation: Literal["gelu", "relu", "silu"] = "gelu"
    position_mode: Literal["ppe", "additive", "none"] = "ppe"
    ppe_dim: int = Field(16, ge=0)
    pe_base: float = Field(10000.0, gt=0.0)
    residual_to_mean: bool = True

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.init_from is not None:
            clash = sorted(set(_ARCHITECTURE_FIELDS) & self.model_fields_set)
            if clash:
                raise ValueError(
                    f"model.init_from loads the architecture from {self.init_from!r}; remove {clash} "
                    "(change the PPE width per stage with the stage's ppe_dim)"
                )
            return self
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        _check_ppe_dim(self.ppe_dim, self.d_model, "model.ppe_dim")
        return self

    def architecture(self) -> dict[str, object]:
        """Keyword arguments for ``SequenceMergerConfig``."""
        return {name: getattr(self, name) for name in _ARCHITECTURE_FIELDS}


def _check_ppe_dim(ppe_dim: int, d_model: int, where: str) -> None:
    if ppe_dim % 2 or ppe_dim > d_model // 2:
        raise ValueError(
            f"{where} must be an even number between 0 and d_model // 2 = {d_model // 2}, got {ppe_dim}"
        )


class VBertOptions(_Strict):
    """vBERT pre-training loss: ``mlm_weight * vMLM + nsp_weight * vNSP``."""

    mlm_weight: float = Field(1.0, ge=0.0)
    nsp_weight: float = Field(1.0, ge=0.0)
    mask_ratio: float = Field(0.15, gt=0.0, lt=1.0)
    detach_target: bool = True
    representation: Literal["pooled", "cls"] = "pooled"


class DistillOptions(_Strict):
    """Distillation loss (see :func:`vbert.train.objectives.distill_loss`) and the contrastive term."""

    loss: DistillKind = "cosine"
    aux_weight: float = Field(1.0, ge=0.0)
    contrastive_weight: float = Field(0.0, ge=0.0)
    temperature: float = Field(0.05, gt=0.0)


class Stage(_Strict):
    """One training stage. Length: exactly one of ``steps`` (optimizer updates) or ``epochs``."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    objective: Literal["vbert", "distill"]
    data: str = Field(min_length=1, description="dataset folder, Parquet folder/file or a synthetic: spec")
    split: str = Field("train", description="split of a dataset folder with a manifest.json")
    ppe_dim: int | None = Field(
        None, ge=0, description="PPE width for this stage; None keeps the current one"
    )
    lr: float = Field(gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = Field(1e-8, gt=0.0)
    batch_size: int = Field(ge=1, description="sequences per process per micro-batch")
    grad_accum: int = Field(1, ge=1)
    steps: int | None = Field(None, ge=1)
    epochs: float | None = Field(None, gt=0.0)
    warmup_steps: int | None = Field(None, ge=0)
    warmup_ratio: float | None = Field(None, ge=0.0, lt=1.0)
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)
    max_grad_norm: float | None = Field(1.0, gt=0.0)
    max_length: int | None = Field(None, ge=2, description="vbert only: keep the first max_length chunks")
    vbert: VBertOptions | None = None
    distill: DistillOptions | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_options(cls, data: object) -> object:
        """Fill in the default loss options of the stage's objective."""
        if isinstance(data, dict) and data.get("objective") in ("vbert", "distill"):
            data = {data["objective"]: {}, **data}
        return data

    @model_validator(mode="after")
    def _check(self) -> Stage:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(f"stage {self.name!r}: give exactly one of steps or epochs")
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError(f"stage {self.name!r}: give warmup_steps or warmup_ratio, not both")
        if self.objective == "vbert":
            if self.distill is not None:
                raise ValueError(f"stage {self.name!r}: a 'distill' block needs objective: distill")
            if self.batch_size < 2:
                raise ValueError(
                    f"stage {self.name!r}: vNSP takes false histories from other rows: batch_size >= 2"
                )
        else:
            if self.vbert is not None:
                raise ValueError(f"stage {self.name!r}: a 'vbert' block needs objective: vbert")
            if self.max_length is not None:
                raise ValueError(
                    f"stage {self.name!r}: max_length would cut a pair's inputs so they no longer match its "
                    "target; filter long pairs when building the dataset instead"
                )
        return self

    def warmup_for(self, total_steps: int) -> int:
        """Warm-up length in optimizer steps."""
        if self.warmup_steps is not None:
            return min(self.warmup_steps, total_steps)
        return int(round((self.warmup_ratio or 0.0) * total_steps))


class TrainingOptions(_Strict):
    """Settings shared by all stages."""

    mixed_precision: Literal["no", "fp16", "bf16"] | None = Field(
        None, description="None: take it from `accelerate config` / `accelerate launch --mixed_precision`"
    )
    checkpoint_every: int = Field(500, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(1, ge=1, description="steps per metrics.jsonl line (checkpoints always log)")
    eval_every: int | None = Field(
        None, ge=1, description="also validate every N steps (always at stage end)"
    )
    num_workers: int = Field(0, ge=0)
    deterministic: bool = False


class ValidationOptions(_Strict):
    """Held-out data checked during training: distillation cosine and a quick Finesse score."""

    pairs: str | None = None
    split: str = Field("validation", description="split of dataset folders with a manifest.json")
    max_pairs: int = Field(512, ge=1)
    probes: str | None = None
    probe_lengths: tuple[int, ...] = (4, 8, 16)
    probe_samples: int = Field(8, ge=1)
    formula: Literal["q1q3", "q2q2"] = "q1q3"
    score_version: Literal["balanced", "sum"] = "balanced"
    batch_size: int = Field(64, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> ValidationOptions:
        if self.pairs is None and self.probes is None:
            raise ValueError(
                "validation needs pairs, probes or both; drop the block to train without validation"
            )
        if any(length < 3 for length in self.probe_lengths):
            raise ValueError(
                f"probe_lengths must all be >= 3 (Finesse needs 3 chunks), got {self.probe_lengths}"
            )
        return self


class Recipe(_Strict):
    """A complete training run."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    seed: int = 0
    model: ModelSpec = ModelSpec()
    training: TrainingOptions = TrainingOptions()
    validation: ValidationOptions | None = None
    stages: tuple[Stage, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Recipe:
        names = [stage.name for stage in self.stages]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"stage names must be unique; repeated: {duplicates}")
        if self.model.init_from is None:
            for stage in self.stages:
                if stage.ppe_dim is None:
                    continue
                if self.model.position_mode != "ppe" and stage.ppe_dim:
                    raise ValueError(
                        f"stage {stage.name!r} sets ppe_dim {stage.ppe_dim} but position_mode is "
                        f"{self.model.position_mode!r}; PPE widths only apply to position_mode ppe"
                    )
                _check_ppe_dim(stage.ppe_dim, self.model.d_model, f"stage {stage.name!r} ppe_dim")
        return self

    def fingerprint(self) -> str:
        """Hash of the validated recipe (defaults filled in): equal recipes, equal runs."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class RecipeError(ValueError):
    """A recipe file that cannot be read or does not follow the schema."""


def parse_recipe(text: str, source: str = "<recipe>") -> Recipe:
    """Validate recipe YAML text; errors name the file and every offending key."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RecipeError(f"{source} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise RecipeError(
            f"{source} must hold a mapping with name, model, stages, ...; got {type(raw).__name__}"
        )
    try:
        return Recipe.model_validate(raw)
    except ValidationError as err:
        problems = "\n".join(
            f"  - {'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}"
            for error in err.errors()
        )
        raise RecipeError(f"{source} does not follow the recipe schema:\n{problems}") from err


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe YAML file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe {path} does not exist; the shipped recipes are in recipes/*.yaml")
    return parse_recipe(path.read_text(encoding="utf-8"), str(path))
