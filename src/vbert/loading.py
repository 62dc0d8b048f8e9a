"""``load_merger``: one entry point for saved mergers, the shipped default and the baselines."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from vbert.errors import ConfigError, IntegrityError
from vbert.mergers import MERGERS, Merger, MergerEntry
from vbert.validation import check_model_name

WEIGHTS_NAME = "model.safetensors"


#: Mergers shipped inside the package for the default embedder: name -> folder under vbert/pretrained.
SHIPPED_MERGERS = {"default": "default-merger", "distill-10to1": "distill-10to1"}


def default_merger_path(name: str = "default") -> Path:
    """Folder of a merger shipped inside the package for the default embedder (see SHIPPED_MERGERS)."""
    return Path(str(resources.files("vbert") / "pretrained" / SHIPPED_MERGERS[name]))


def load_recorded_merger(name: str, fingerprint: str) -> tuple[str, Merger]:
    """Reopen a merger recorded as ``(name, fingerprint)``: ``name``, or, when ``name`` is a shipped
    merger whose weights have changed since (a new default), the shipped merger with those weights."""
    merger = load_merger(name)
    if name in SHIPPED_MERGERS and merger.fingerprint != fingerprint:
        for other in [shipped for shipped in SHIPPED_MERGERS if shipped != name]:
            candidate = load_merger(other)
            if candidate.fingerprint == fingerprint:
                return other, candidate
    return name, merger


def load_merger(
    name_or_path: str | Path = "default", device: str | None = None, dtype: torch.dtype = torch.float32
) -> Merger:
    """Load a merger.

    Args:
        name_or_path: ``"default"`` (the merger shipped for the default embedder),
            ``"distill-10to1"`` (the default until 2026-11-30, trained for distillation fidelity),
            ``"mean"``, ``"mean-weighted"``, ``"truncation"`` (training-free baselines),
            a folder written by ``save_pretrained``, a Hugging Face hub id (``owner/name``),
            or a ``package.module:factory`` spec.
        device: torch device for model mergers (default: CPU).
        dtype: compute dtype of model mergers. Float32 by default: the shipped merger is stored
            in float16 to keep the package small, and float16 is slow on CPUs.
    """
    key = str(name_or_path)
    if ":" in key and not Path(key).exists():
        return MERGERS.get(key)()
    if key in MERGERS.names() and key not in SHIPPED_MERGERS:
        return MERGERS.get(key).factory()
    from vbert.model import SequenceMergerModel

    if key in SHIPPED_MERGERS:
        path = default_merger_path(key)
        if not (path / "config.json").exists():
            raise ConfigError(
                "this installation ships no default merger yet; pass a trained merger folder, or use "
                "load_merger('mean') for the mean-pooling baseline"
            )
        key = str(path)
    elif Path(key).exists():
        check_merger_folder(Path(key))
    else:
        check_model_name(key, kind="merger", known=MERGERS.names())
    model = SequenceMergerModel.from_pretrained(key, use_safetensors=True, dtype=dtype)
    return model.to(device or "cpu").eval()


def check_merger_folder(folder: Path) -> None:
    """Refuse a path that is not a merger folder with a real safetensors file, before loading it."""
    if not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a merger folder written by save_pretrained")
    if not (folder / "config.json").is_file():
        raise ConfigError(
            f"{folder} has no config.json: it is not a merger folder written by save_pretrained"
        )
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise ConfigError(f"{folder} has no {WEIGHTS_NAME}: save the merger with save_pretrained")
    from safetensors import safe_open

    try:
        with safe_open(weights, framework="pt") as handle:
            handle.keys()
    except Exception as err:  # safetensors raises its own error types for any malformed header
        raise IntegrityError(
            f"{weights} is not a valid safetensors file ({err}); vbert never unpickles weights. "
            "Save the merger again with save_pretrained"
        ) from err


MERGERS.register(
    "default",
    MergerEntry(
        lambda: load_merger("default"),
        "the merger shipped for the default embedder (fine-tuned for long-document retrieval)",
        trained=True,
    ),
)
MERGERS.register(
    "distill-10to1",
    MergerEntry(
        lambda: load_merger("distill-10to1"),
        "the default until 2026-11-30: best distillation fidelity, behind mean pooling on retrieval",
        trained=True,
    ),
)
