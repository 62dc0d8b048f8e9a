"""The run folder: what it holds, when it may be used, and how models are written into it.

OUTPUT/
  run.json                 recipe fingerprint (a folder holds one recipe's run)
  recipe.yaml              the recipe as given
  metrics.jsonl            one JSON object per logged step / validation
  tensorboard/             when TensorBoard is installed
  checkpoints/<name>/      see vbert.train.checkpoint; `latest` names the newest
  stages/NN-<stage>/       the merger after each stage (Hugging Face folder)
  model/                   the final merger + README.md model card
"""

from __future__ import annotations

import shutil
from pathlib import Path

from accelerate import Accelerator
from transformers.utils import logging as hf_logging

from vbert.errors import ConfigError
from vbert.files import atomic_write_json, atomic_write_text
from vbert.model import SequenceMergerModel

from . import checkpoint as ckpt
from .metrics import METRICS_FILE

RUN_FILE = "run.json"
RECIPE_FILE = "recipe.yaml"
MODEL_DIR = "model"
STAGES_DIR = "stages"
RUN_ARTIFACTS = (
    RUN_FILE,
    RECIPE_FILE,
    METRICS_FILE,
    "tensorboard",
    ckpt.CHECKPOINTS_DIR,
    STAGES_DIR,
    MODEL_DIR,
)


class RunFolderError(ConfigError):
    """The output folder cannot be used for this run as asked."""


def _is_temporary(name: str) -> bool:
    return name.startswith(ckpt.TEMP_PREFIX) or (name.startswith(".") and name.endswith(".tmp"))


def prepare_run_folder(
    output_dir: Path,
    fingerprint: str,
    recipe_name: str,
    recipe_text: str,
    accelerator: Accelerator,
    *,
    resume: bool,
    overwrite: bool,
) -> Path | None:
    """Check (and on a fresh start, create) the run folder; returns the checkpoint to resume from.

    A folder holds one recipe's run: another recipe's run is refused unless ``overwrite``; a
    folder with other files is refused; ``resume`` insists on a run with a checkpoint.
    """
    is_main = accelerator.is_main_process
    run_file = output_dir / RUN_FILE
    existing = ckpt.read_json(run_file) if run_file.is_file() else None
    if existing is not None and overwrite:
        accelerator.wait_for_everyone()
        if is_main:
            for name in RUN_ARTIFACTS:
                path = output_dir / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        accelerator.wait_for_everyone()
        existing = None
    if existing is None:
        if resume:
            raise RunFolderError(f"--resume: {output_dir} holds no run to resume; drop --resume to start one")
        foreign = sorted(
            p.name
            for p in (output_dir.iterdir() if output_dir.is_dir() else ())
            if p.name not in RUN_ARTIFACTS and not _is_temporary(p.name)
        )
        if foreign:
            raise RunFolderError(
                f"{output_dir} holds other files ({', '.join(foreign[:5])}) and no training run; "
                "choose a new or empty --output folder"
            )
    elif existing["recipe_fingerprint"] != fingerprint:
        raise RunFolderError(
            f"{output_dir} holds a run of another recipe ({existing.get('recipe_name')!r}, fingerprint "
            f"{existing['recipe_fingerprint']}, this one is {fingerprint}); use a new --output folder or "
            "--overwrite to discard it"
        )
    checkpoint = ckpt.latest_checkpoint(output_dir) if existing is not None else None
    if resume and checkpoint is None:
        raise RunFolderError(f"--resume: {output_dir} has no complete checkpoint yet; drop --resume")
    if is_main and existing is None:
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output_dir / RECIPE_FILE, recipe_text)
        atomic_write_json(run_file, {"recipe_fingerprint": fingerprint, "recipe_name": recipe_name})
    accelerator.wait_for_everyone()
    return checkpoint


def stage_folder(output_dir: Path, index: int, stage_name: str) -> Path:
    """Where the merger is saved after stage ``index`` (0-based)."""
    return output_dir / STAGES_DIR / f"{index + 1:02d}-{stage_name}"


def save_merger(merger: SequenceMergerModel, folder: Path) -> None:
    """``save_pretrained`` without transformers' per-save progress bar (it would break ours).

    The caller fixes the file modes (``save_pretrained`` writes the weights 0600): write into
    :func:`vbert.files.atomic_folder` or a checkpoint, which both do.
    """
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        merger.save_pretrained(folder)
    finally:
        if enabled:
            hf_logging.enable_progress_bar()
