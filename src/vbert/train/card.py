"""The model card (README.md) written next to a trained merger, and the hardware description."""

from __future__ import annotations

import os
import platform
from typing import Any

import torch


def describe_hardware(device: torch.device, num_processes: int, mixed_precision: str) -> dict[str, Any]:
    """What the run ran on, for the model card and the run log."""
    info: dict[str, Any] = {
        "device": device.type,
        "num_processes": num_processes,
        "mixed_precision": mixed_precision,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "–" if value is None else str(value)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def model_card(
    recipe_name: str,
    recipe_yaml: str,
    recipe_fingerprint: str,
    stages: list[dict[str, Any]],
    validation: dict[str, float],
    hardware: dict[str, Any],
    elapsed_s: float,
    model_fingerprint: str,
    config: dict[str, Any],
) -> str:
    """Markdown model card: what was trained on what, how it scored, how long it took, where."""
    embedders = sorted(
        {str(stage.get("embedder_fingerprint")) for stage in stages if stage.get("embedder_fingerprint")}
    )
    lines = [
        "---",
        "library_name: vbert",
        "tags:",
        "  - vbert",
        "  - sequence-merger",
        "  - long-document-embedding",
        "---",
        "",
        f"# vBERT sequence merger — recipe `{recipe_name}`",
        "",
        "A vector sequence merger: a small Transformer that reads the chunk embeddings of a long document "
        "and returns one vector for the whole document.",
        "",
        "```python",
        "from vbert.model import SequenceMergerModel",
        "",
        'merger = SequenceMergerModel.from_pretrained("path/to/this/folder")',
        "document_vector = merger.merge(chunk_embeddings)  # (n_chunks, d) -> (d,) unit vector",
        "```",
        "",
        "## Model",
        "",
        f"- d_model {config.get('d_model')}, {config.get('num_layers')} layers, {config.get('num_heads')} heads, "
        f"FFN {config.get('ffn_dim')}, position mode `{config.get('position_mode')}`, ppe_dim {config.get('ppe_dim')}, "
        f"residual to mean: {config.get('residual_to_mean')}",
        f"- weights fingerprint `{model_fingerprint}`",
        f"- base embedder fingerprint: {', '.join(f'`{e}`' for e in embedders) if embedders else 'not recorded by the data'}",
        "",
        "## Training",
        "",
        f"Recipe `{recipe_name}` (fingerprint `{recipe_fingerprint}`), total training time {_duration(elapsed_s)}.",
        "",
        "| # | stage | objective | data | data fingerprint | ppe_dim | steps | samples | time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for index, stage in enumerate(stages, start=1):
        lines.append(
            f"| {index} | {stage['name']} | {stage['objective']} | `{stage['data']}` | `{stage['data_fingerprint']}` "
            f"| {_fmt(stage.get('ppe_dim'))} | {stage['steps']} | {stage['samples']} | {_duration(stage['time_s'])} |"
        )
    lines += ["", "## Validation (held-out, at the end of training)", ""]
    if validation:
        lines += ["| metric | this merger | mean pooling |", "|---|---|---|"]
        for key, value in validation.items():
            if key.endswith("_mean_pool"):
                continue
            lines.append(f"| {key} | {_fmt(value)} | {_fmt(validation.get(f'{key}_mean_pool'))} |")
    else:
        lines.append("No validation data was configured in the recipe.")
    lines += ["", "## Hardware", ""]
    lines += [f"- {key}: {value}" for key, value in hardware.items()]
    lines += ["", "## Recipe", "", "```yaml", recipe_yaml.rstrip(), "```", ""]
    return "\n".join(lines)
