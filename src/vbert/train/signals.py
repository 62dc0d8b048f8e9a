"""Stopping a run cleanly: SIGINT/SIGTERM finish the current step, save a checkpoint and stop."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from vbert.errors import ResourceError


class TrainingInterrupted(ResourceError):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint; the same command resumes."""

    exit_code = 130  # the shell's code for a run stopped by Ctrl-C

    def __init__(self, checkpoint: Path) -> None:
        super().__init__(
            f"training interrupted; checkpoint saved at {checkpoint}; run the same command to continue"
        )
        self.checkpoint = checkpoint


class StopRequest:
    """SIGINT/SIGTERM → finish the current step, save a checkpoint, stop. A second Ctrl-C aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write(
            f"{signal.Signals(signum).name} received: saving a checkpoint after this step (Ctrl-C again to abort)"
        )

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
