"""Export a merger as a self-contained Hugging Face folder (``trust_remote_code``)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .modeling_vbert import SequenceMergerModel

_CODE_FILES = ("configuration_vbert.py", "modeling_vbert.py")


def export_hub(model: SequenceMergerModel, destination: str | Path) -> Path:
    """Write ``model`` to ``destination`` so plain transformers can load it without vbert.

    The folder holds safetensors weights, ``config.json`` with an ``auto_map``, and the two
    modeling files, so ``AutoModel.from_pretrained(folder, trust_remote_code=True)`` works in
    an environment where ``vbert`` is not installed. Where ``vbert`` is imported, its registered
    classes are used instead and no remote code is run. The folder is written atomically, with
    the modes the umask gives new files and folders.
    """
    destination = Path(destination)
    if destination.exists() and any(destination.iterdir()):
        raise FileExistsError(
            f"{destination} exists and is not empty; choose a new folder or remove it first"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        model.save_pretrained(staging)
        here = Path(__file__).parent
        for name in _CODE_FILES:
            shutil.copyfile(here / name, staging / name)
        config_path = staging / "config.json"
        config = json.loads(config_path.read_text())
        config["auto_map"] = {
            "AutoConfig": "configuration_vbert.SequenceMergerConfig",
            "AutoModel": "modeling_vbert.SequenceMergerModel",
        }
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        _normal_modes(staging)
        if destination.exists():
            destination.rmdir()
        os.replace(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination


def _normal_modes(folder: Path) -> None:
    """0755/0644 under the usual umask (mkdtemp and save_pretrained leave 0700/0600). The model package
    cannot use ``vbert.files.fix_permissions``: it imports nothing else of vbert."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~umask)
