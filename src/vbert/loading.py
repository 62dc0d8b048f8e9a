"""``load_merger``: one entry point for saved mergers, the shipped default and the baselines."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from vbert.mergers import MERGERS, Merger, MergerEntry


def default_merger_path() -> Path:
    """Folder of the merger shipped inside the package for the default embedder."""
    return Path(str(resources.files("vbert") / "pretrained" / "default-merger"))


def load_merger(
    name_or_path: str | Path = "default", device: str | None = None, dtype: torch.dtype = torch.float32
) -> Merger:
    """Load a merger.

    Args:
        name_or_path: ``"default"`` (the merger shipped for the default embedder),
            ``"mean"``, ``"mean-weighted"``, ``"truncation"`` (training-free baselines),
            a folder written by ``save_pretrained``, or a Hugging Face hub id.
        device: torch device for model mergers (default: CPU).
        dtype: compute dtype of model mergers. Float32 by default: the shipped merger is stored
            in float16 to keep the package small, and float16 is slow on CPUs.
    """
    key = str(name_or_path)
    if ":" in key and not Path(key).exists():
        return MERGERS.get(key)()
    if key in MERGERS.names() and key != "default":
        return MERGERS.get(key).factory()
    from vbert.model import SequenceMergerModel

    if key == "default":
        path = default_merger_path()
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                "this installation ships no default merger yet; pass a trained merger folder, or use "
                "load_merger('mean') for the mean-pooling baseline"
            )
        key = str(path)
    elif Path(key).exists() and not (Path(key) / "config.json").exists():
        raise FileNotFoundError(
            f"{key} has no config.json: it is not a merger folder written by save_pretrained"
        )
    model = SequenceMergerModel.from_pretrained(key, use_safetensors=True, dtype=dtype)
    return model.to(device or "cpu").eval()


MERGERS.register(
    "default",
    MergerEntry(lambda: load_merger("default"), "the merger shipped for the default embedder", trained=True),
)
