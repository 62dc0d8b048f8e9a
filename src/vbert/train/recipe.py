"""Training recipes: a strict YAML schema (pydantic v2) for multi-stage merger training.

A recipe names the model, shared training settings, optional validation data and a list
of stages. Stages run in order on the same weights; each has its own objective, data,
PPE width, optimiser settings and length (steps or epochs). Unknown keys are errors, so
a typo never silently falls back to a default. See ``docs/training.md`` for examples.

Nothing here is a second copy: the ``model`` block's fields, types and defaults are
:class:`SequenceMergerConfig`'s (and its checks run on them); a stage's objective names and
option blocks come from :data:`vbert.train.objectives.OBJECTIVES`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)

from vbert.errors import ConfigError
from vbert.model import SequenceMergerConfig
from vbert.model.configuration_vbert import check_ppe_dim

from .batches import Batching
from .objectives.base import OBJECTIVES, ObjectiveOptions

ARCHITECTURE_FIELDS = (
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
"""The :class:`SequenceMergerConfig` settings a recipe's ``model`` block may set (types and defaults are the config's)."""

# Recipes fingerprinted before objectives became a registry carried a (null) options block for each
# of these two; the fingerprint keeps them so those runs still resume and their model cards stay true.
_FINGERPRINT_OPTION_BLOCKS = ("vbert", "distill")
# Stage fields added after runs were fingerprinted are hashed only away from their default, so those
# recipes keep their fingerprints (and the model cards quoting them stay true).
_FINGERPRINT_NEW_STAGE_FIELDS = ("batching",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ModelSpec(_Strict):
    init_from: str | None = None

    @model_validator(mode="after")
    def _check(self) -> _ModelSpec:
        if self.init_from is not None:
            clash = sorted(set(ARCHITECTURE_FIELDS) & self.model_fields_set)
            if clash:
                raise ValueError(
                    f"model.init_from loads the architecture from {self.init_from!r}; remove {clash} "
                    "(change the PPE width per stage with the stage's ppe_dim)"
                )
            return self
        SequenceMergerConfig(**self.architecture())  # the config's own checks (heads divide d_model, ...)
        return self

    def architecture(self) -> dict[str, object]:
        """Keyword arguments for ``SequenceMergerConfig``."""
        return {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}


def _architecture_fields() -> dict[str, Any]:
    hints = typing.get_type_hints(SequenceMergerConfig.__init__)
    parameters = inspect.signature(SequenceMergerConfig.__init__).parameters
    return {name: (hints[name], parameters[name].default) for name in ARCHITECTURE_FIELDS}


ModelSpec = create_model(
    "ModelSpec",
    __base__=_ModelSpec,
    __doc__="The merger to train: a fresh architecture (SequenceMergerConfig's settings and defaults), "
    "or ``init_from`` an existing Hugging Face folder.",
    __module__=__name__,
    **_architecture_fields(),
)


class Stage(_Strict):
    """One training stage. Length: exactly one of ``steps`` (optimizer updates) or ``epochs``.

    ``objective`` names an entry of :data:`OBJECTIVES`; its options are the block of the same
    name (``distill: {loss: mse}``), defaults filled in, and are available as ``options``.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    objective: str
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
    max_length: int | None = Field(None, ge=2, description="keep the first max_length chunks of each row")
    batching: Batching = Field(
        "length-buckets",
        description="length-buckets: rows of similar length share a batch (little padding); random: any "
        "rows share a batch, for objectives that take the batch's other rows as negatives",
    )
    options: SerializeAsAny[ObjectiveOptions]

    @model_validator(mode="before")
    @classmethod
    def _options_block(cls, data: object) -> object:
        """Move the block named after the objective to ``options``; refuse blocks of other objectives."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "options" in data:
            raise ValueError(
                "write an objective's options as a block named after it, e.g. `distill: {loss: mse}`"
            )
        objective = data.get("objective")
        for key in [key for key in data if key not in cls.model_fields]:
            if key == objective:
                data["options"] = data.pop(key)
            elif isinstance(key, str) and key in OBJECTIVES:
                raise ValueError(f"stage {data.get('name')!r}: a {key!r} block needs objective: {key}")
        data.setdefault("options", {})
        return data

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, name: str) -> str:
        OBJECTIVES.get(name)
        return name

    @field_validator("options", mode="before")
    @classmethod
    def _validate_options(cls, value: object, info: ValidationInfo) -> ObjectiveOptions:
        if "objective" not in info.data:  # an unknown objective is reported already
            return ObjectiveOptions()
        options_class = OBJECTIVES.get(info.data["objective"]).Options
        return value if isinstance(value, options_class) else options_class.model_validate(value or {})

    @model_validator(mode="after")
    def _check(self) -> Stage:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(f"stage {self.name!r}: give exactly one of steps or epochs")
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError(f"stage {self.name!r}: give warmup_steps or warmup_ratio, not both")
        OBJECTIVES.get(self.objective).check_stage(self)
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        """Dump the options under the objective's name, as the recipe writes them."""
        data = handler(self)
        data[self.objective] = data.pop("options")
        return data

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
                try:
                    check_ppe_dim(stage.ppe_dim, self.model.d_model)
                except ValueError as err:
                    raise ValueError(f"stage {stage.name!r}: {err}") from None
        return self

    def fingerprint(self) -> str:
        """Hash of the validated recipe (defaults filled in): equal recipes, equal runs."""
        data = self.model_dump(mode="json")
        for stage in data["stages"]:
            for block in _FINGERPRINT_OPTION_BLOCKS:
                stage.setdefault(block, None)
            for name in _FINGERPRINT_NEW_STAGE_FIELDS:
                if stage[name] == Stage.model_fields[name].default:
                    del stage[name]
        canonical = json.dumps(data, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class RecipeError(ConfigError):
    """A recipe file that cannot be read or does not follow the schema."""


def parse_recipe(text: str, source: str = "<recipe>") -> Recipe:
    """Validate recipe YAML text; errors name the file and every offending key."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RecipeError(f"{source} is not valid YAML: {err}") from err
    except RecursionError as err:  # PyYAML composes nested collections recursively
        raise RecipeError(f"{source} is not valid YAML: it is nested too deeply") from err
    if not isinstance(raw, dict):
        raise RecipeError(
            f"{source} must hold a mapping with name, model, stages, ...; got {type(raw).__name__}"
        )
    try:
        return Recipe.model_validate(raw)
    except ValidationError as err:
        problems = "\n".join(
            f"  - {_where(error['loc'], raw) or '(top level)'}: {error['msg']}" for error in err.errors()
        )
        raise RecipeError(f"{source} does not follow the recipe schema:\n{problems}") from err


def _where(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """``stages.0.options.loss`` → ``stages.0.distill.loss``: the key as the recipe writes it."""
    parts = list(loc)
    if len(parts) > 2 and parts[0] == "stages" and parts[2] == "options":
        with contextlib.suppress(KeyError, IndexError, TypeError):
            parts[2] = raw["stages"][parts[1]]["objective"]
    return ".".join(str(part) for part in parts)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe YAML file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe {path} does not exist; the shipped recipes are in recipes/*.yaml")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise RecipeError(f"recipe {path} is not UTF-8 text ({err})") from err
    return parse_recipe(text, str(path))
