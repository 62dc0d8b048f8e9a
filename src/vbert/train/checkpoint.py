"""Checkpoint files of a training run: written atomically, read without unpickling.

A checkpoint is a folder ``checkpoints/stage01-step00000500/`` (stage index, global step) holding

* ``model/`` — the merger (``save_pretrained``: config.json + model.safetensors);
* the extras of the run's objectives (``Objective.save_extras``), e.g.
  ``pretraining_heads.safetensors`` — the vBERT heads, when the run has a vBERT stage;
* ``optimizer.safetensors`` + ``optimizer.json`` — AdamW's tensors and its param groups;
* ``scheduler.json`` — the learning-rate scheduler's state;
* ``rng-<rank>.safetensors`` + ``rng-<rank>.json`` — every random generator, per process;
* ``trainer_state.json`` — stage, step, data position, elapsed time (written last).

It is assembled in a hidden temporary folder and renamed into place, then the ``latest``
pointer file is replaced; a run killed at any moment leaves either the previous or the new
checkpoint, never a half-written one. Only safetensors and JSON are ever read back, which
is why this module exists beside Accelerate's ``save_state``: that one pickles the optimizer,
scheduler and generator states. Files and folders get the normal 0644/0755 modes.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vbert.files import atomic_write_text, fix_permissions
from vbert.files import read_json as _read_json

CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "latest"
STATE_FILE = "trainer_state.json"
TEMP_PREFIX = ".tmp-"


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


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (NaN stays allowed: a diverged loss is still logged)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    return _read_json(path, "checkpoint file")


def checkpoint_name(stage_index: int, step: int) -> str:
    """Folder name of a checkpoint; names sort in training order."""
    return f"stage{stage_index:02d}-step{step:08d}"


def temp_checkpoint_dir(output_dir: Path, name: str) -> Path:
    """An empty hidden folder to assemble checkpoint ``name`` in (any stale one is removed)."""
    temp = output_dir / CHECKPOINTS_DIR / f"{TEMP_PREFIX}{name}"
    if temp.exists():
        shutil.rmtree(temp)
    temp.mkdir(parents=True)
    return temp


def publish_checkpoint(temp: Path, output_dir: Path, name: str, keep: int) -> Path:
    """Rename the assembled ``temp`` folder into place, point ``latest`` at it, prune old ones."""
    root = output_dir / CHECKPOINTS_DIR
    final = root / name
    fix_permissions(temp)  # save_pretrained writes its weights 0600
    if final.exists():  # the same step saved again after a resume: replace it
        stale = root / f"{TEMP_PREFIX}old-{name}"
        os.replace(final, stale)
        shutil.rmtree(stale)
    os.replace(temp, final)
    atomic_write_text(root / LATEST_FILE, name + "\n")
    complete = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(TEMP_PREFIX))
    for old in complete[:-keep]:
        if old.name != name:
            shutil.rmtree(old)
    return final


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    root = output_dir / CHECKPOINTS_DIR
    pointer = root / LATEST_FILE
    if pointer.is_file():
        candidate = root / pointer.read_text(encoding="utf-8").strip()
        if (candidate / STATE_FILE).is_file():
            return candidate
    if not root.is_dir():
        return None
    complete = sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(TEMP_PREFIX) and (p / STATE_FILE).is_file()
    )
    return complete[-1] if complete else None


def save_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    """Optimizer state as safetensors (tensors) + JSON (param groups and scalars)."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, state in state_dict["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    save_file(tensors, str(folder / "optimizer.safetensors"))
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
        for group in state_dict["param_groups"]
    ]
    write_json_atomic(folder / "optimizer.json", {"param_groups": groups, "scalars": scalars})


def load_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    """Restore what :func:`save_optimizer` wrote into an optimizer over the same parameters."""
    meta = read_json(folder / "optimizer.json")
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in load_file(str(folder / "optimizer.safetensors")).items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = tensor
    for param_id, values in meta["scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
        for group in meta["param_groups"]
    ]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_rng(folder: Path, rank: int) -> None:
    """Python, NumPy, torch CPU and CUDA generator states of this process."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{index}"] = cuda_state
    save_file(tensors, str(folder / f"rng-{rank}.safetensors"))
    version, mt_state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    write_json_atomic(
        folder / f"rng-{rank}.json",
        {
            "python": [version, list(mt_state), gauss],
            "numpy": [np_name, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
        },
    )


def load_rng(folder: Path, rank: int) -> bool:
    """Restore this process's generators; False when the checkpoint has none for ``rank``."""
    tensor_path, json_path = folder / f"rng-{rank}.safetensors", folder / f"rng-{rank}.json"
    if not (tensor_path.is_file() and json_path.is_file()):
        return False
    tensors = load_file(str(tensor_path))
    torch.set_rng_state(tensors["torch_cpu"])
    cuda_states = [tensors[f"torch_cuda_{i}"] for i in range(len(tensors) - 1)]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    meta = read_json(json_path)
    version, mt_state, gauss = meta["python"]
    random.setstate((version, tuple(mt_state), gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = meta["numpy"]
    np.random.set_state((np_name, np.asarray(np_keys, dtype=np.uint32), np_pos, np_has_gauss, np_gauss))
    return True
