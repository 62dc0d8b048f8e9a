"""The training run: recipes of stages on Hugging Face Accelerate, resumable at any step.

The same code runs on one CPU, one GPU or many processes (``accelerate launch``):
Accelerate owns devices, DDP, mixed precision, gradient accumulation and clipping; this
package owns the stages (:mod:`.stage_loop`), the deterministic data order, checkpoints
(:mod:`.checkpoint`), the run folder (:mod:`.run_folder`) and metrics (:mod:`.metrics`).
Objectives come from :data:`vbert.train.objectives.OBJECTIVES`; the trainer knows none by name.

Resuming: a run killed with ``kill -9`` and started again with the same command continues
from its last checkpoint and, on CPU with ``training.deterministic``, ends with the same
weights as a run that was never stopped (see :mod:`.stage_loop` for why).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, is_tensorboard_available, set_seed
from safetensors.torch import load_file
from torch import nn
from tqdm.auto import tqdm

from vbert.errors import ConfigError
from vbert.files import atomic_folder, atomic_write_text
from vbert.model import SequenceMergerConfig, SequenceMergerModel

from . import checkpoint as ckpt
from .batches import BatchPlan
from .card import describe_hardware, model_card
from .checkpoint import RunState
from .data import TrainingDataset
from .evaluation import Validator
from .metrics import MetricsLog
from .objectives import OBJECTIVES
from .recipe import Recipe, Stage
from .run_folder import MODEL_DIR, RunFolderError, prepare_run_folder, save_merger, stage_folder
from .signals import StopRequest, TrainingInterrupted
from .stage_loop import run_stage

log = logging.getLogger(__name__)

__all__ = ["RunFolderError", "Trainer", "TrainingInterrupted", "build_merger", "train"]


def build_merger(recipe: Recipe) -> SequenceMergerModel:
    """A fresh merger from the recipe's architecture, or the one ``model.init_from`` names."""
    if recipe.model.init_from is not None:
        return SequenceMergerModel.from_pretrained(recipe.model.init_from)
    return SequenceMergerModel(SequenceMergerConfig(**recipe.model.architecture()))


def _embedder_name(metadata: dict[str, Any]) -> str | None:
    embedder = metadata.get("embedder")
    if isinstance(embedder, dict) and embedder.get("name"):
        return str(embedder["name"])
    return None


def _embedder_fingerprint(metadata: dict[str, Any]) -> str | None:
    embedder = metadata.get("embedder")
    if isinstance(embedder, dict) and embedder.get("fingerprint"):
        return str(embedder["fingerprint"])
    value = metadata.get("embedder_fingerprint")
    return str(value) if value else None


class RunClock:
    """Training time across sessions: what the checkpoint recorded plus this session's."""

    def __init__(self) -> None:
        self.session_start = time.monotonic()
        self.run_offset = 0.0
        self.stage_offset = 0.0

    def start(self, elapsed_s: float) -> None:
        self.session_start, self.run_offset = time.monotonic(), elapsed_s

    def start_stage(self, stage_elapsed_s: float) -> None:
        self.stage_offset = stage_elapsed_s - (time.monotonic() - self.session_start)

    def elapsed(self) -> tuple[float, float]:
        """Seconds of the whole run and of the current stage."""
        session = time.monotonic() - self.session_start
        return self.run_offset + session, self.stage_offset + session


class Trainer:
    """Runs a :class:`Recipe` into an output folder. Use :func:`train` for the one-call form."""

    def __init__(
        self, recipe: Recipe, output_dir: str | Path, recipe_text: str | None = None, progress: bool = True
    ):
        self.recipe = recipe
        self.output_dir = Path(output_dir)
        self.recipe_text = recipe_text if recipe_text is not None else _dump_yaml(recipe)
        self.progress = progress
        self.fingerprint = recipe.fingerprint()
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        self.accelerator = Accelerator(
            # Several processes on a machine without any accelerator (`accelerate launch --multi_gpu` or
            # `torchrun` on CPUs): Accelerate only forms a CPU (gloo) group when told to use the CPU.
            cpu=launched > 1 and torch.accelerator.current_accelerator() is None,
            mixed_precision=recipe.training.mixed_precision,
            log_with="tensorboard" if is_tensorboard_available() else None,
            project_dir=str(self.output_dir),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        )
        if launched != self.accelerator.num_processes:
            raise ConfigError(
                f"{launched} processes were launched (WORLD_SIZE) but Accelerate formed a group of "
                f"{self.accelerator.num_processes}; check the `accelerate config` / launch flags"
            )
        self.metrics = MetricsLog(self.output_dir, self.accelerator)
        self.merger: SequenceMergerModel | None = None
        self.extras: dict[str, nn.Module] = {}  # objective name → its run-long modules (e.g. vBERT's heads)
        self.validator: Validator | None = None
        self.state = RunState(self.fingerprint, self.accelerator.num_processes)
        self.clock = RunClock()

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    # --- checkpoints --------------------------------------------------------------------------

    def save_checkpoint(self, optimizer: Any, scheduler: Any) -> Path:
        # Not Accelerate's save_state: it pickles the optimizer, scheduler and generator states.
        state = self.state
        state.elapsed_s, state.stage_elapsed_s = self.clock.elapsed()
        name = ckpt.checkpoint_name(state.stage_index, state.step)
        temp = self.output_dir / ckpt.CHECKPOINTS_DIR / f"{ckpt.TEMP_PREFIX}{name}"
        if self.is_main:
            ckpt.temp_checkpoint_dir(self.output_dir, name)
        self.accelerator.wait_for_everyone()
        ckpt.save_rng(temp, self.accelerator.process_index)
        self.accelerator.wait_for_everyone()
        final = self.output_dir / ckpt.CHECKPOINTS_DIR / name
        if self.is_main:
            save_merger(self.merger, temp / "model")
            for objective, extras in self.extras.items():
                OBJECTIVES.get(objective).save_extras(extras, temp)
            if optimizer is not None:
                ckpt.save_optimizer(optimizer, temp)
                ckpt.write_json_atomic(temp / "scheduler.json", scheduler.state_dict())
            ckpt.write_json_atomic(temp / ckpt.STATE_FILE, asdict(state))
            final = ckpt.publish_checkpoint(
                temp, self.output_dir, name, self.recipe.training.keep_checkpoints
            )
        self.accelerator.wait_for_everyone()
        return final

    def _load_checkpoint(self, folder: Path) -> None:
        saved = ckpt.read_json(folder / ckpt.STATE_FILE)
        if saved["world_size"] != self.accelerator.num_processes:
            raise RunFolderError(
                f"checkpoint {folder} was written by {saved['world_size']} processes; resume it with the same "
                f"number (now {self.accelerator.num_processes}) so that every process continues its own data stream"
            )
        self.state = RunState(**saved)
        self.merger.load_state_dict(load_file(str(folder / "model" / "model.safetensors")))
        self.merger.ppe_dim = ckpt.read_json(folder / "model" / "config.json")["ppe_dim"]
        for objective, extras in self.extras.items():
            OBJECTIVES.get(objective).load_extras(extras, folder)
        if not ckpt.load_rng(folder, self.accelerator.process_index):
            log.warning(
                "checkpoint %s has no generator state for process %d", folder, self.accelerator.process_index
            )

    # --- the run ------------------------------------------------------------------------------

    def run(self, resume: bool = False, overwrite: bool = False) -> Path:
        """Train every stage not yet done; returns the final model folder."""
        checkpoint = prepare_run_folder(
            self.output_dir,
            self.fingerprint,
            self.recipe.name,
            self.recipe_text,
            self.accelerator,
            resume=resume,
            overwrite=overwrite,
        )
        deterministic_before = torch.are_deterministic_algorithms_enabled()
        if self.recipe.training.deterministic:
            # cuBLAS refuses deterministic matrix products without a fixed workspace.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        try:
            return self._run(checkpoint)
        finally:
            torch.use_deterministic_algorithms(deterministic_before)

    def _run(self, checkpoint: Path | None) -> Path:
        final_dir = self.output_dir / MODEL_DIR
        set_seed(self.recipe.seed, device_specific=True)
        self.merger = build_merger(self.recipe)
        for stage in self.recipe.stages:  # in stage order, so their random initialisation is reproducible
            if stage.objective not in self.extras:
                extras = OBJECTIVES.get(stage.objective).build_extras(self.merger)
                if extras is not None:
                    self.extras[stage.objective] = extras
        if checkpoint is not None:
            self._load_checkpoint(checkpoint)
            last = len(self.recipe.stages) - 1
            if (
                self.state.stage_index == last
                and self.state.stage_done
                and (final_dir / "config.json").is_file()
            ):
                if self.is_main:
                    log.info("%s already holds the finished run; nothing to do", self.output_dir)
                self.accelerator.end_training()
                return final_dir
            if self.is_main:
                log.info("resuming from %s", checkpoint)
            self.metrics.truncate_after(self.state.stage_index, self.state.step)
        if self.recipe.validation is not None and self.is_main:
            self.validator = Validator.from_options(self.recipe.validation)
            if self.validator.dim != self.merger.config.d_model:
                raise ConfigError(
                    f"validation data have dimension {self.validator.dim} but the merger's d_model is "
                    f"{self.merger.config.d_model}: use validation data embedded by the same embedder"
                )
        if is_tensorboard_available():
            self.accelerator.init_trackers("tensorboard")

        self.clock.start(self.state.elapsed_s)
        with StopRequest() as stop:
            for index, stage in enumerate(self.recipe.stages):
                if index < self.state.stage_index or (
                    index == self.state.stage_index and self.state.stage_done
                ):
                    continue
                run_stage(self, index, stage, stop)
        if self.is_main:
            self._save_final(final_dir)
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()  # closes trackers and the process group: nothing collective after this
        return final_dir

    # --- what the stage loop calls ------------------------------------------------------------

    def open_stage_data(self, stage: Stage) -> TrainingDataset:
        dataset = OBJECTIVES.get(stage.objective).open_data(stage.data, stage.split)
        if dataset.dim != self.merger.config.d_model:
            raise ConfigError(
                f"stage {stage.name!r}: the data at {stage.data} have dimension {dataset.dim} but the merger's "
                f"d_model is {self.merger.config.d_model}; set model.d_model to the embedder's dimension"
            )
        return dataset

    def stop_requested(self, stop: StopRequest) -> bool:
        """Whether any process got SIGINT/SIGTERM (all processes stop at the same step)."""
        flag = torch.tensor(float(stop.requested), device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            flag = self.accelerator.reduce(flag, reduction="sum")
        return bool(flag.item() > 0)

    def evaluate(self, index: int, stage: Stage, prior_steps: int) -> None:
        if self.validator is not None:
            metrics = self.validator.evaluate(self.merger)
            self.state.last_eval = metrics
            record = {"event": "eval", "stage": stage.name, "stage_index": index, "step": self.state.step}
            self.metrics.write({**record, **metrics}, prior_steps + self.state.step)
            tqdm.write(
                f"[{stage.name} step {self.state.step}] "
                + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if not k.endswith("_mean_pool"))
            )
        self.accelerator.wait_for_everyone()

    def stage_summary(
        self, stage: Stage, dataset: TrainingDataset, steps: int, plan: BatchPlan, last_train: dict[str, Any]
    ) -> dict[str, Any]:
        _, stage_elapsed = self.clock.elapsed()
        return {
            "name": stage.name,
            "objective": stage.objective,
            "data": dataset.source,
            "data_fingerprint": dataset.fingerprint,
            "embedder_fingerprint": _embedder_fingerprint(dataset.metadata),
            "embedder_name": _embedder_name(dataset.metadata),
            "rows": len(dataset),
            "ppe_dim": self.merger.ppe_dim if self.merger.config.position_mode == "ppe" else None,
            "steps": steps,
            "epochs": self.state.position / plan.batches_per_epoch,
            "samples": self.state.samples
            - sum(s["samples"] for s in self.state.stages[: self.state.stage_index]),
            "time_s": stage_elapsed,
            "final_train": {k: v for k, v in last_train.items() if isinstance(v, float)},
            "final_eval": dict(self.state.last_eval),
        }

    def save_stage_model(self, index: int, stage: Stage) -> None:
        if self.is_main:
            with atomic_folder(
                stage_folder(self.output_dir, index, stage.name), temp_prefix=ckpt.TEMP_PREFIX
            ) as temp:
                save_merger(self.merger, temp)
                if stage.objective in self.extras:
                    OBJECTIVES.get(stage.objective).save_extras(self.extras[stage.objective], temp)
        self.accelerator.wait_for_everyone()

    # --- the final model ----------------------------------------------------------------------

    def _record_embedder(self) -> None:
        """Write the base embedder of the training data into the config, so users get a warning
        when they merge vectors of another embedder (see ``LongDocumentEncoder``)."""
        for stage in reversed(self.state.stages):
            if stage.get("embedder_fingerprint"):
                self.merger.config.embedder_fingerprint = stage["embedder_fingerprint"]
                self.merger.config.embedder_name = stage.get("embedder_name")
                return

    def _save_final(self, folder: Path) -> None:
        self._record_embedder()
        hardware = describe_hardware(
            self.accelerator.device, self.accelerator.num_processes, str(self.accelerator.mixed_precision)
        )
        with atomic_folder(folder, temp_prefix=ckpt.TEMP_PREFIX) as temp:
            save_merger(self.merger, temp)
            card = model_card(
                recipe_name=self.recipe.name,
                recipe_yaml=self.recipe_text,
                recipe_fingerprint=self.fingerprint,
                stages=self.state.stages,
                validation=self.state.last_eval,
                hardware=hardware,
                elapsed_s=self.state.elapsed_s,
                model_fingerprint=self.merger.fingerprint,
                config=self.merger.config.to_dict(),
            )
            atomic_write_text(temp / "README.md", card)
        log.info("final model saved to %s", folder)


def _dump_yaml(recipe: Recipe) -> str:
    import yaml

    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)


def train(
    recipe: Recipe,
    output_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    recipe_text: str | None = None,
    progress: bool = True,
) -> Path:
    """Run ``recipe`` into ``output_dir`` and return the final model folder.

    Without flags an existing run of the same recipe in ``output_dir`` is continued from its
    latest checkpoint (a finished one is left as it is); ``resume=True`` insists on that;
    ``overwrite=True`` discards an existing run first.

    Raises:
        TrainingInterrupted: after SIGINT/SIGTERM, once a checkpoint is saved.
        RunFolderError: the folder holds another recipe's run, or nothing to resume.
    """
    return Trainer(recipe, output_dir, recipe_text=recipe_text, progress=progress).run(resume, overwrite)
