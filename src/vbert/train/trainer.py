"""The training loop: recipes of stages on Hugging Face Accelerate, resumable at any step.

The same code runs on one CPU, one GPU or many processes (``accelerate launch``):
Accelerate owns devices, DDP, mixed precision and gradient clipping; this module owns the
stages, the deterministic data order, checkpoints and metrics.

Output folder::

    OUTPUT/
      run.json                 recipe fingerprint (a folder holds one recipe's run)
      recipe.yaml              the recipe as given
      metrics.jsonl            one JSON object per logged step / validation
      tensorboard/             when TensorBoard is installed
      checkpoints/<name>/      see vbert.train.checkpoint; `latest` names the newest
      stages/NN-<stage>/       the merger after each stage (Hugging Face folder)
      model/                   the final merger + README.md model card

Resuming: a step is a pure function of (weights, optimizer state, generator states, data
position): the batch order comes from (seed, stage, epoch), each micro-batch's random
choices from (seed, stage, position, rank), dropout from the restored generators. So a
run killed with ``kill -9`` and started again with the same command continues from its
last checkpoint and, on CPU with ``training.deterministic``, ends with the same weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, is_tensorboard_available, set_seed
from safetensors.torch import load_file
from tqdm.auto import tqdm
from transformers import get_cosine_with_min_lr_schedule_with_warmup
from transformers.utils import logging as hf_logging

from vbert.model import SequenceMergerConfig, SequenceMergerModel

from . import checkpoint as ckpt
from .card import describe_hardware, model_card
from .data import BatchPlan, TrainingDataset, batch_loader, open_dataset, truncate_lengths
from .evaluation import Validator
from .heads import PretrainingHeads
from .objectives import DistillObjective, VBertObjective
from .recipe import Recipe, Stage

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
RECIPE_FILE = "recipe.yaml"
METRICS_FILE = "metrics.jsonl"
MODEL_DIR = "model"
STAGES_DIR = "stages"
_RUN_ARTIFACTS = (
    RUN_FILE,
    RECIPE_FILE,
    METRICS_FILE,
    "tensorboard",
    ckpt.CHECKPOINTS_DIR,
    STAGES_DIR,
    MODEL_DIR,
)


class TrainingInterrupted(RuntimeError):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint; the same command resumes."""

    def __init__(self, checkpoint: Path) -> None:
        super().__init__(
            f"training interrupted; checkpoint saved at {checkpoint}; run the same command to continue"
        )
        self.checkpoint = checkpoint


class RunFolderError(RuntimeError):
    """The output folder cannot be used for this run as asked."""


@dataclass
class RunState:
    """Where a run stands; saved as ``trainer_state.json`` in every checkpoint."""

    recipe_fingerprint: str
    world_size: int
    stage_index: int = 0
    step: int = 0
    position: int = 0
    stage_done: bool = False
    samples: int = 0
    stage_elapsed_s: float = 0.0
    elapsed_s: float = 0.0
    stages: list[dict[str, Any]] = field(default_factory=list)
    last_eval: dict[str, float] = field(default_factory=dict)


def _mix_seed(*parts: int) -> int:
    """A 63-bit seed from several integers (no collisions between neighbouring tuples)."""
    return int(
        np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1)
    )


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


class _StopRequest:
    """SIGINT/SIGTERM → finish the current step, save a checkpoint, stop. A second Ctrl-C aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write(
            f"{signal.Signals(signum).name} received: saving a checkpoint after this step (Ctrl-C again to abort)"
        )

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


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
            raise RuntimeError(
                f"{launched} processes were launched (WORLD_SIZE) but Accelerate formed a group of "
                f"{self.accelerator.num_processes}; check the `accelerate config` / launch flags"
            )
        self.metrics_path = self.output_dir / METRICS_FILE
        self.merger: SequenceMergerModel | None = None
        self.heads: PretrainingHeads | None = None
        self.validator: Validator | None = None
        self.state = RunState(self.fingerprint, self.accelerator.num_processes)
        self._session_start = 0.0
        self._elapsed_at_start = 0.0
        self._stage_elapsed_at_start = 0.0

    # --- run folder ---------------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def _prepare_output(self, resume: bool, overwrite: bool) -> Path | None:
        """Check the output folder; returns the checkpoint to resume from (None: fresh start)."""
        run_file = self.output_dir / RUN_FILE
        existing = ckpt.read_json(run_file) if run_file.is_file() else None
        if existing is not None and overwrite:
            self.accelerator.wait_for_everyone()
            if self.is_main:
                for name in _RUN_ARTIFACTS:
                    path = self.output_dir / name
                    if path.is_dir():
                        shutil.rmtree(path)
                    elif path.exists():
                        path.unlink()
            self.accelerator.wait_for_everyone()
            existing = None
        if existing is None:
            if resume:
                raise RunFolderError(
                    f"--resume: {self.output_dir} holds no run to resume; drop --resume to start one"
                )
            foreign = sorted(
                p.name
                for p in (self.output_dir.iterdir() if self.output_dir.is_dir() else ())
                if p.name not in _RUN_ARTIFACTS and not p.name.startswith(ckpt.TEMP_PREFIX)
            )
            if foreign:
                raise RunFolderError(
                    f"{self.output_dir} holds other files ({', '.join(foreign[:5])}) and no training run; "
                    "choose a new or empty --output folder"
                )
        elif existing["recipe_fingerprint"] != self.fingerprint:
            raise RunFolderError(
                f"{self.output_dir} holds a run of another recipe ({existing.get('recipe_name')!r}, fingerprint "
                f"{existing['recipe_fingerprint']}, this one is {self.fingerprint}); use a new --output folder or "
                "--overwrite to discard it"
            )
        checkpoint = ckpt.latest_checkpoint(self.output_dir) if existing is not None else None
        if resume and checkpoint is None:
            raise RunFolderError(f"--resume: {self.output_dir} has no complete checkpoint yet; drop --resume")
        if self.is_main and existing is None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / RECIPE_FILE).write_text(self.recipe_text, encoding="utf-8")
            ckpt.write_json_atomic(
                run_file, {"recipe_fingerprint": self.fingerprint, "recipe_name": self.recipe.name}
            )
        self.accelerator.wait_for_everyone()
        return checkpoint

    # --- metrics ------------------------------------------------------------------------------

    def _log(self, record: dict[str, Any], global_step: int) -> None:
        if not self.is_main:
            return
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({**record, "time": time.time()}) + "\n")
        if self.accelerator.trackers:
            prefix = "eval/" if record["event"] == "eval" else "train/"
            numbers = {prefix + k: v for k, v in record.items() if isinstance(v, int | float) and k != "step"}
            self.accelerator.log(numbers, step=global_step)

    def _truncate_metrics(self) -> None:
        """Drop metric lines written after the checkpoint being resumed (they will be written again)."""
        if not self.is_main or not self.metrics_path.is_file():
            return
        keep = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            index, step = record.get("stage_index", -1), record.get("step", 0)
            if index < self.state.stage_index or (
                index == self.state.stage_index and step <= self.state.step
            ):
                keep.append(line)
        temp = self.metrics_path.with_name(f"{ckpt.TEMP_PREFIX}{METRICS_FILE}")
        temp.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
        temp.replace(self.metrics_path)

    # --- checkpoints --------------------------------------------------------------------------

    def _elapsed(self) -> tuple[float, float]:
        session = time.monotonic() - self._session_start
        return self._elapsed_at_start + session, self._stage_elapsed_at_start + session

    def _save_checkpoint(self, optimizer: Any, scheduler: Any) -> Path:
        state = self.state
        state.elapsed_s, state.stage_elapsed_s = self._elapsed()
        name = ckpt.checkpoint_name(state.stage_index, state.step)
        temp = self.output_dir / ckpt.CHECKPOINTS_DIR / f"{ckpt.TEMP_PREFIX}{name}"
        if self.is_main:
            ckpt.temp_checkpoint_dir(self.output_dir, name)
        self.accelerator.wait_for_everyone()
        ckpt.save_rng(temp, self.accelerator.process_index)
        self.accelerator.wait_for_everyone()
        final = self.output_dir / ckpt.CHECKPOINTS_DIR / name
        if self.is_main:
            _save_merger(self.merger, temp / "model")
            if self.heads is not None:
                self.heads.save(temp)
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
        if self.heads is not None:
            self.heads.load(folder)
        if not ckpt.load_rng(folder, self.accelerator.process_index):
            log.warning(
                "checkpoint %s has no generator state for process %d", folder, self.accelerator.process_index
            )

    # --- the run ------------------------------------------------------------------------------

    def run(self, resume: bool = False, overwrite: bool = False) -> Path:
        """Train every stage not yet done; returns the final model folder."""
        checkpoint = self._prepare_output(resume, overwrite)
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
        if any(stage.objective == "vbert" for stage in self.recipe.stages):
            self.heads = PretrainingHeads(self.merger.config.d_model, self.merger.config.layer_norm_eps)
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
            self._truncate_metrics()
        if self.recipe.validation is not None and self.is_main:
            self.validator = Validator.from_options(self.recipe.validation)
            if self.validator.dim != self.merger.config.d_model:
                raise ValueError(
                    f"validation data have dimension {self.validator.dim} but the merger's d_model is "
                    f"{self.merger.config.d_model}: use validation data embedded by the same embedder"
                )
        if is_tensorboard_available():
            self.accelerator.init_trackers("tensorboard")

        self._session_start = time.monotonic()
        self._elapsed_at_start = self.state.elapsed_s
        with _StopRequest() as stop:
            for index, stage in enumerate(self.recipe.stages):
                if index < self.state.stage_index or (
                    index == self.state.stage_index and self.state.stage_done
                ):
                    continue
                self._run_stage(index, stage, stop)
        if self.is_main:
            self._save_final(final_dir)
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()  # closes trackers and the process group: nothing collective after this
        return final_dir

    def _open_stage_data(self, stage: Stage) -> TrainingDataset:
        dataset = open_dataset(
            stage.data, "sequences" if stage.objective == "vbert" else "pairs", stage.split
        )
        if dataset.dim != self.merger.config.d_model:
            raise ValueError(
                f"stage {stage.name!r}: the data at {stage.data} have dimension {dataset.dim} but the merger's "
                f"d_model is {self.merger.config.d_model}; set model.d_model to the embedder's dimension"
            )
        return dataset

    def _make_objective(self, stage: Stage) -> torch.nn.Module:
        if stage.objective == "vbert":
            options = stage.vbert
            return VBertObjective(
                self.merger,
                self.heads,
                options.mlm_weight,
                options.nsp_weight,
                options.mask_ratio,
                options.detach_target,
                options.representation,
            )
        options = stage.distill
        return DistillObjective(
            self.merger, options.loss, options.aux_weight, options.contrastive_weight, options.temperature
        )

    def _run_stage(self, index: int, stage: Stage, stop: _StopRequest) -> None:
        acc = self.accelerator
        state = self.state
        if state.stage_index != index or state.stage_done:
            state.stage_index, state.step, state.position, state.stage_done = index, 0, 0, False
            state.stage_elapsed_s = 0.0
        self._stage_elapsed_at_start = state.stage_elapsed_s - (time.monotonic() - self._session_start)
        dataset = self._open_stage_data(stage)
        if stage.ppe_dim is not None:
            self.merger.ppe_dim = stage.ppe_dim
        plan = BatchPlan(
            truncate_lengths(dataset.lengths, stage.max_length),
            stage.batch_size,
            _mix_seed(self.recipe.seed, index),
            acc.process_index,
            acc.num_processes,
        )
        total_steps = stage.steps or max(
            1, math.ceil(stage.epochs * plan.batches_per_epoch / stage.grad_accum)
        )

        objective = self._make_objective(stage)
        decay = [p for p in objective.parameters() if p.requires_grad and p.ndim >= 2]
        no_decay = [p for p in objective.parameters() if p.requires_grad and p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": stage.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=stage.lr,
            betas=stage.adam_betas,
            eps=stage.adam_eps,
        )
        scheduler = get_cosine_with_min_lr_schedule_with_warmup(
            optimizer, stage.warmup_for(total_steps), total_steps, min_lr_rate=stage.min_lr_ratio
        )
        wrapped, optimizer = acc.prepare(objective, optimizer)
        checkpoint = ckpt.latest_checkpoint(self.output_dir)
        if state.step > 0 and checkpoint is not None:
            ckpt.load_optimizer(optimizer, checkpoint)
            scheduler.load_state_dict(ckpt.read_json(checkpoint / "scheduler.json"))

        if self.is_main:
            log.info(
                "stage %d/%d %r: %s on %s (%d rows), %d steps of %d x %d x %d sequences",
                index + 1,
                len(self.recipe.stages),
                stage.name,
                stage.objective,
                stage.data,
                len(dataset),
                total_steps,
                stage.batch_size,
                stage.grad_accum,
                acc.num_processes,
            )
        prior_steps = sum(s["steps"] for s in state.stages[:index])
        loader = iter(
            batch_loader(
                dataset,
                plan,
                state.position,
                state.position + (total_steps - state.step) * stage.grad_accum,
                stage.max_length,
                self.recipe.training.num_workers,
            )
        )
        bar = tqdm(
            total=total_steps,
            initial=state.step,
            desc=f"stage {index + 1}/{len(self.recipe.stages)} {stage.name}",
            unit="step",
            disable=not (self.progress and self.is_main),
            dynamic_ncols=True,
        )
        wrapped.train()
        window: dict[str, torch.Tensor] = {}
        window_start = time.monotonic()
        last_train: dict[str, Any] = {}
        while state.step < total_steps:
            for micro in range(stage.grad_accum):
                batch = {key: value.to(acc.device) for key, value in next(loader).items()}
                seed = _mix_seed(self.recipe.seed, index, state.position, acc.process_index)
                sync = contextlib.nullcontext() if micro == stage.grad_accum - 1 else acc.no_sync(wrapped)
                with sync:
                    out = wrapped(**batch, seed=seed)
                    acc.backward(out["loss"] / stage.grad_accum)
                for key, value in out.items():
                    window[key] = window.get(key, 0.0) + value.detach().float()
                window["micro_batches"] = window.get("micro_batches", 0.0) + torch.tensor(
                    1.0, device=acc.device
                )
                window["samples"] = window.get("samples", 0.0) + torch.tensor(
                    float(batch["inputs"].shape[0]), device=acc.device
                )
                state.position += 1
            grad_norm = None
            if stage.max_grad_norm is not None:
                grad_norm = acc.clip_grad_norm_(wrapped.parameters(), stage.max_grad_norm)
            optimizer.step()
            if not acc.optimizer_step_was_skipped:
                scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            bar.update(1)

            at_end = state.step == total_steps
            checkpoint_due = at_end or state.step % self.recipe.training.checkpoint_every == 0
            stopping = not at_end and self._stop_requested(stop)
            if state.step % self.recipe.training.log_every == 0 or checkpoint_due or stopping:
                # Checkpoints close the logging window, so a resumed run logs exactly what an uninterrupted one does.
                last_train = self._log_window(window, window_start, index, stage, plan, scheduler, grad_norm)
                self._log(last_train, prior_steps + state.step)
                bar.set_postfix(loss=f"{last_train['loss']:.4f}")
                window, window_start = {}, time.monotonic()
            eval_every = self.recipe.training.eval_every
            if at_end or (eval_every and state.step % eval_every == 0):
                self._evaluate(index, stage, prior_steps)
            if at_end:
                state.stage_done = True
                state.stages = state.stages[:index] + [
                    self._stage_summary(stage, dataset, total_steps, plan, last_train)
                ]
                self._save_stage_model(index, stage)
            if checkpoint_due or stopping:
                saved = self._save_checkpoint(optimizer, scheduler)
            if stopping:
                bar.close()
                raise TrainingInterrupted(saved)
        bar.close()
        acc.free_memory()

    def _stop_requested(self, stop: _StopRequest) -> bool:
        flag = torch.tensor(float(stop.requested), device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            flag = self.accelerator.reduce(flag, reduction="sum")
        return bool(flag.item() > 0)

    def _log_window(
        self,
        window: dict[str, torch.Tensor],
        started: float,
        index: int,
        stage: Stage,
        plan: BatchPlan,
        scheduler: Any,
        grad_norm: torch.Tensor | None,
    ) -> dict[str, Any]:
        keys = sorted(window)
        totals = torch.stack([torch.as_tensor(window[k], device=self.accelerator.device) for k in keys])
        if self.accelerator.num_processes > 1:
            totals = self.accelerator.reduce(totals, reduction="sum")
        values = dict(zip(keys, totals.tolist(), strict=True))
        micro, samples = values.pop("micro_batches"), values.pop("samples")
        self.state.samples += int(samples)
        record: dict[str, Any] = {
            "event": "train",
            "stage": stage.name,
            "stage_index": index,
            "step": self.state.step,
            "epoch": self.state.position / plan.batches_per_epoch,
            "lr": scheduler.get_last_lr()[0],
            **{key: value / micro for key, value in values.items()},
            "samples": self.state.samples,
            "samples_per_s": samples / max(time.monotonic() - started, 1e-9),
        }
        norm = None if grad_norm is None else float(grad_norm)
        if norm is not None and math.isfinite(norm):  # an fp16 overflow step is skipped, not logged
            record["grad_norm"] = norm
        return record

    def _evaluate(self, index: int, stage: Stage, prior_steps: int) -> None:
        if self.validator is not None:
            metrics = self.validator.evaluate(self.merger)
            self.state.last_eval = metrics
            self._log(
                {
                    "event": "eval",
                    "stage": stage.name,
                    "stage_index": index,
                    "step": self.state.step,
                    **metrics,
                },
                prior_steps + self.state.step,
            )
            tqdm.write(
                f"[{stage.name} step {self.state.step}] "
                + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if not k.endswith("_mean_pool"))
            )
        self.accelerator.wait_for_everyone()

    def _stage_summary(
        self, stage: Stage, dataset: TrainingDataset, steps: int, plan: BatchPlan, last_train: dict[str, Any]
    ) -> dict[str, Any]:
        _, stage_elapsed = self._elapsed()
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

    def _save_stage_model(self, index: int, stage: Stage) -> None:
        if self.is_main:
            folder = self.output_dir / STAGES_DIR / f"{index + 1:02d}-{stage.name}"
            with _atomic_folder(folder) as temp:
                _save_merger(self.merger, temp)
                if self.heads is not None and stage.objective == "vbert":
                    self.heads.save(temp)
        self.accelerator.wait_for_everyone()

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
        with _atomic_folder(folder) as temp:
            _save_merger(self.merger, temp)
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
            (temp / "README.md").write_text(card, encoding="utf-8")
        log.info("final model saved to %s", folder)


def _save_merger(merger: SequenceMergerModel, folder: Path) -> None:
    """``save_pretrained`` without transformers' per-save progress bar (it would break ours)."""
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        merger.save_pretrained(folder)
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _atomic_folder(folder: Path):
    """Yield a temporary sibling folder; on success it replaces ``folder`` in one rename."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temp = folder.with_name(f"{ckpt.TEMP_PREFIX}{folder.name}")
    if temp.exists():
        shutil.rmtree(temp)
    temp.mkdir()
    try:
        yield temp
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    if folder.exists():
        stale = folder.with_name(f"{ckpt.TEMP_PREFIX}old-{folder.name}")
        folder.replace(stale)
        shutil.rmtree(stale)
    temp.replace(folder)


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
