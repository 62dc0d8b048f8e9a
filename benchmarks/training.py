"""4. Training throughput: samples/s of one optimiser step per objective and model size.

A step is forward + loss + backward + AdamW update on a batch of random unit vectors with
random lengths (right-padded). vMLM runs the merger three times per step (masked, target,
injected), vNSP once on spliced sequences, distillation once against a random target.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from benchmarks.common import describe_merger, measure, random_merger, unit_vectors
from benchmarks.context import Context
from vbert.model import SequenceMergerConfig, SequenceMergerForPreTraining

WHAT = "samples/s of one optimiser step (forward + loss + backward + AdamW) per objective and model size"
TINY_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "tiny.yaml"
# The model of recipes/tiny.yaml, used when the recipe file is not there.
TINY_FALLBACK = {"d_model": 32, "num_layers": 2, "num_heads": 4, "ffn_dim": 64, "ppe_dim": 4}


def tiny_config() -> tuple[SequenceMergerConfig, str]:
    if TINY_RECIPE.is_file():
        import yaml

        model = (yaml.safe_load(TINY_RECIPE.read_text()) or {}).get("model")
        if isinstance(model, dict):
            return SequenceMergerConfig(**model), "model of recipes/tiny.yaml"
    return SequenceMergerConfig(**TINY_FALLBACK), "tiny fallback (recipes/tiny.yaml not found)"


def _steps(
    objectives: ModuleType, config: SequenceMergerConfig, batch: int, n_chunks: int
) -> tuple[dict[str, Callable[[object], None]], torch.nn.Module]:
    """One training-step function per objective, sharing a model, heads, optimiser and batch."""
    model = random_merger(config).train()
    pretraining = SequenceMergerForPreTraining.from_merger(model).train()
    optimizer = torch.optim.AdamW(pretraining.parameters(), lr=1e-4)
    lengths = np.random.default_rng(0).integers(max(2, n_chunks // 4), n_chunks + 1, size=batch)
    mask = torch.from_numpy((np.arange(n_chunks)[None, :] < lengths[:, None]).astype(np.int64))
    x = torch.from_numpy(unit_vectors((batch, n_chunks, config.d_model), seed=1)) * mask[..., None]
    target = torch.from_numpy(unit_vectors((batch, config.d_model), seed=2))
    generator = torch.Generator().manual_seed(0)
    losses = {
        "vmlm": lambda: pretraining.vmlm(x, mask, generator).loss,
        "vnsp": lambda: pretraining.vnsp(x, mask, generator).loss,
        "distill": lambda: objectives.distill_loss(model(x, attention_mask=mask).pooler_output, target),
    }

    def step_of(loss: Callable[[], torch.Tensor]) -> Callable[[object], None]:
        def step(_: object) -> None:
            optimizer.zero_grad(set_to_none=True)
            loss().backward()
            optimizer.step()

        return step

    return {name: step_of(loss) for name, loss in losses.items()}, model


def run(ctx: Context) -> dict[str, Any]:
    try:
        objectives = importlib.import_module("vbert.train.objectives")
    except ImportError as err:
        return {"status": "not measured", "reason": f"the training code is not available: {err}"}
    if not hasattr(objectives, "distill_loss"):
        return {"status": "not measured", "reason": "vbert.train.objectives lacks distill_loss"}
    settings = ctx.settings
    tiny, tiny_source = tiny_config()
    known = {
        "tiny": (tiny, tiny_source),
        "default": (SequenceMergerConfig(), "SequenceMergerConfig() defaults"),
    }
    unknown = [size for size in settings.train_sizes if size not in known]
    if unknown:
        raise ValueError(f"unknown training sizes {unknown}; choose from {list(known)}")
    sizes = {size: known[size] for size in settings.train_sizes}
    rows, models = [], {}
    for size, (config, source) in sizes.items():
        steps, model = _steps(objectives, config, settings.train_batch, settings.train_chunks)
        models[size] = {"source": source, **describe_merger(model)}
        for objective, step in steps.items():
            ctx.log(f"training: {size} model, {objective}")
            timing = measure(step, repeats=settings.train_repeats, warmup=1)
            rows.append(
                {
                    "size": size,
                    "objective": objective,
                    "step_s": timing.median_s,
                    "samples_per_s": settings.train_batch / timing.median_s,
                }
            )
    return {
        "what": WHAT,
        "batch": settings.train_batch,
        "max_chunks": settings.train_chunks,
        "models": models,
        "rows": rows,
    }
