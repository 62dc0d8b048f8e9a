"""Training metrics: micro-batch outputs summed over a logging window, reduced over processes, and
written as one JSON line per record (``metrics.jsonl``) and to TensorBoard when it is installed."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from vbert.files import atomic_write_text

METRICS_FILE = "metrics.jsonl"


class MetricsWindow:
    """Sums of an objective's outputs since the last log line, on the accelerator's device."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums: dict[str, torch.Tensor] = {}
        self.started = time.monotonic()

    def add(self, outputs: dict[str, torch.Tensor], rows: int) -> None:
        """One micro-batch: its outputs (scalar tensors) and how many rows it had."""
        for key, value in outputs.items():
            self.sums[key] = self.sums.get(key, 0.0) + value.detach().float()
        self.sums["micro_batches"] = self.sums.get("micro_batches", 0.0) + torch.tensor(
            1.0, device=self.device
        )
        self.sums["samples"] = self.sums.get("samples", 0.0) + torch.tensor(float(rows), device=self.device)

    def reduce(self, accelerator: Accelerator) -> tuple[dict[str, float], float, float]:
        """Means over every process's micro-batches, the total rows, and samples per second."""
        keys = sorted(self.sums)
        totals = torch.stack([torch.as_tensor(self.sums[k], device=accelerator.device) for k in keys])
        if accelerator.num_processes > 1:
            totals = accelerator.reduce(totals, reduction="sum")
        values = dict(zip(keys, totals.tolist(), strict=True))
        micro, samples = values.pop("micro_batches"), values.pop("samples")
        speed = samples / max(time.monotonic() - self.started, 1e-9)
        return {key: value / micro for key, value in values.items()}, samples, speed


def finite_or_none(value: torch.Tensor | float | None) -> float | None:
    """A gradient norm worth logging: None for a missing or non-finite one (an fp16 overflow step is skipped)."""
    number = None if value is None else float(value)
    return number if number is not None and math.isfinite(number) else None


class MetricsLog:
    """``metrics.jsonl`` of a run folder (written by the main process) and the Accelerate trackers."""

    def __init__(self, folder: Path, accelerator: Accelerator) -> None:
        self.path = folder / METRICS_FILE
        self.accelerator = accelerator

    def write(self, record: dict[str, Any], global_step: int) -> None:
        if not self.accelerator.is_main_process:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({**record, "time": time.time()}) + "\n")
        if self.accelerator.trackers:
            prefix = "eval/" if record["event"] == "eval" else "train/"
            numbers = {prefix + k: v for k, v in record.items() if isinstance(v, int | float) and k != "step"}
            self.accelerator.log(numbers, step=global_step)

    def truncate_after(self, stage_index: int, step: int) -> None:
        """Drop lines written after (stage_index, step), the checkpoint being resumed: they are written again."""
        if not self.accelerator.is_main_process or not self.path.is_file():
            return
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            index, at = record.get("stage_index", -1), record.get("step", 0)
            if index < stage_index or (index == stage_index and at <= step):
                keep.append(line)
        atomic_write_text(self.path, "".join(line + "\n" for line in keep))
