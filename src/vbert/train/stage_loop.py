"""One stage of a run: optimizer, schedule, the deterministic batch stream, and the step loop.

A step is a pure function of (weights, optimizer state, generator states, data position):
the batch order comes from (seed, stage, epoch) through :class:`BatchPlan`, each micro-batch's
random choices from (seed, stage, position, rank), dropout from the restored generators.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_cosine_with_min_lr_schedule_with_warmup

from . import checkpoint as ckpt
from .batches import BatchPlan, batch_loader, truncate_lengths
from .metrics import MetricsWindow, finite_or_none
from .objectives import OBJECTIVES
from .recipe import Stage
from .signals import StopRequest, TrainingInterrupted

if TYPE_CHECKING:
    from .trainer import Trainer

log = logging.getLogger(__name__)


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from several integers (no collisions between neighbouring tuples)."""
    return int(
        np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1)
    )


def make_optimizer(objective: torch.nn.Module, stage: Stage) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, norms and single vectors)."""
    decay = [p for p in objective.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in objective.parameters() if p.requires_grad and p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": stage.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=stage.lr,
        betas=stage.adam_betas,
        eps=stage.adam_eps,
    )


def run_stage(trainer: Trainer, index: int, stage: Stage, stop: StopRequest) -> None:
    """Train ``stage`` from where ``trainer.state`` stands to its last step (or a stop request)."""
    acc, state, recipe = trainer.accelerator, trainer.state, trainer.recipe
    if state.stage_index != index or state.stage_done:
        state.stage_index, state.step, state.position, state.stage_done = index, 0, 0, False
        state.stage_elapsed_s = 0.0
    trainer.clock.start_stage(state.stage_elapsed_s)
    objective_class = OBJECTIVES.get(stage.objective)
    dataset = trainer.open_stage_data(stage)
    if stage.ppe_dim is not None:
        trainer.merger.ppe_dim = stage.ppe_dim
    plan = BatchPlan(
        truncate_lengths(dataset.lengths, stage.max_length),
        stage.batch_size,
        mix_seed(recipe.seed, index),
        acc.process_index,
        acc.num_processes,
        stage.batching,
    )
    total_steps = stage.steps or max(1, math.ceil(stage.epochs * plan.batches_per_epoch / stage.grad_accum))

    objective = objective_class(trainer.merger, stage.options, trainer.extras.get(stage.objective))
    optimizer = make_optimizer(objective, stage)
    scheduler = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, stage.warmup_for(total_steps), total_steps, min_lr_rate=stage.min_lr_ratio
    )
    # The scheduler stays unprepared: Accelerate's wrapper would step it once per process.
    wrapped, optimizer = acc.prepare(objective, optimizer)
    checkpoint = ckpt.latest_checkpoint(trainer.output_dir)
    if state.step > 0 and checkpoint is not None:
        ckpt.load_optimizer(optimizer, checkpoint)
        scheduler.load_state_dict(ckpt.read_json(checkpoint / "scheduler.json"))
    acc.gradient_accumulation_steps = stage.grad_accum
    acc.step = 0  # micro-batches counted per stage: a stage (or a resumed one) starts on an optimizer step

    if trainer.is_main:
        log.info(
            "stage %d/%d %r: %s on %s (%d rows), %d steps of %d x %d x %d sequences",
            index + 1,
            len(recipe.stages),
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
    # Our own sampler, not a prepared DataLoader: the batch order is a pure function of a position we checkpoint.
    loader = iter(
        batch_loader(
            dataset,
            plan,
            state.position,
            state.position + (total_steps - state.step) * stage.grad_accum,
            stage.max_length,
            recipe.training.num_workers,
            collate=objective_class.collate,
        )
    )
    bar = tqdm(
        total=total_steps,
        initial=state.step,
        desc=f"stage {index + 1}/{len(recipe.stages)} {stage.name}",
        unit="step",
        disable=not (trainer.progress and trainer.is_main),
        dynamic_ncols=True,
    )
    wrapped.train()
    window = MetricsWindow(acc.device)
    last_train: dict[str, Any] = {}
    while state.step < total_steps:
        for _ in range(stage.grad_accum):
            batch = {key: value.to(acc.device) for key, value in next(loader).items()}
            seed = mix_seed(recipe.seed, index, state.position, acc.process_index)
            with acc.accumulate(wrapped):
                out = wrapped(**batch, seed=seed)
                acc.backward(out["loss"])  # divided by grad_accum by Accelerate
            window.add(out, rows=next(iter(batch.values())).shape[0])
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
        checkpoint_due = at_end or state.step % recipe.training.checkpoint_every == 0
        stopping = not at_end and trainer.stop_requested(stop)
        if state.step % recipe.training.log_every == 0 or checkpoint_due or stopping:
            # Checkpoints close the logging window, so a resumed run logs exactly what an uninterrupted one does.
            means, samples, speed = window.reduce(acc)
            state.samples += int(samples)
            last_train = {
                "event": "train",
                "stage": stage.name,
                "stage_index": index,
                "step": state.step,
                "epoch": state.position / plan.batches_per_epoch,
                "lr": scheduler.get_last_lr()[0],
                **means,
                "samples": state.samples,
                "samples_per_s": speed,
            }
            if (norm := finite_or_none(grad_norm)) is not None:
                last_train["grad_norm"] = norm
            trainer.metrics.write(last_train, prior_steps + state.step)
            bar.set_postfix(loss=f"{last_train['loss']:.4f}")
            window = MetricsWindow(acc.device)
        eval_every = recipe.training.eval_every
        if at_end or (eval_every and state.step % eval_every == 0):
            trainer.evaluate(index, stage, prior_steps)
        if at_end:
            state.stage_done = True
            state.stages = state.stages[:index] + [
                trainer.stage_summary(stage, dataset, total_steps, plan, last_train)
            ]
            trainer.save_stage_model(index, stage)
        if checkpoint_due or stopping:
            saved = trainer.save_checkpoint(optimizer, scheduler)
        if stopping:
            bar.close()
            raise TrainingInterrupted(saved)
    bar.close()
    acc.free_memory()
