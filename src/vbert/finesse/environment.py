"""The machine and package versions a run was measured on (latencies mean nothing without them)."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
PACKAGES = ("vbert", "numpy", "torch", "transformers", "tokenizers", "safetensors", "datasets", "pyarrow")


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def vbert_version() -> str:
    return package_version("vbert")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that can change the numbers."""
    return {name: package_version(name) for name in PACKAGES}


def cpu_model() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux, else platform)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict[str, Any]:
    """CPU model and count, GPU, torch and CUDA versions, Python and OS."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count() or 0,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gpu": None,
        "torch": None,
        "cuda": None,
    }
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch
        except ImportError:
            return info
    info["torch"] = torch.__version__
    info["cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def synchronize() -> None:
    """Wait for queued GPU work, so a timer measures the work and not just its launch."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` and return its result and wall time in milliseconds, synchronising before and after."""
    synchronize()
    start = time.perf_counter()
    result = fn()
    synchronize()
    return result, (time.perf_counter() - start) * 1000.0
