"""Which shards each process builds when several processes share one dataset build.

The same build command runs alone, under ``torchrun`` / ``accelerate launch``, or as
hand-started processes with ``RANK`` and ``WORLD_SIZE`` set. Every process streams the whole
corpus (reading is cheap, embedding is not) and embeds only the shards it owns: shard ``i``
belongs to rank ``i % world_size``. Rank 0 writes the manifest once every shard is done.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

# A rank waiting at the final barrier may wait for the slowest rank's last shard.
_BARRIER_TIMEOUT = timedelta(hours=24)


@dataclass(frozen=True)
class ShardAssignment:
    """This process's place in a (possibly multi-process) build.

    Attributes:
        rank: index of this process, ``0 <= rank < world_size``.
        world_size: number of processes sharing the build.
        synchronized: True when a ``torch.distributed`` process group is up, so ranks can wait
            for each other; False for hand-started processes that only share the output folder.
    """

    rank: int = 0
    world_size: int = 1
    synchronized: bool = False

    def __post_init__(self) -> None:
        if self.world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {self.world_size}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(
                f"rank must be in [0, {self.world_size}), got {self.rank}: check RANK and WORLD_SIZE"
            )

    @property
    def is_main(self) -> bool:
        """True for the process that writes the manifest."""
        return self.rank == 0

    def owns(self, shard_index: int) -> bool:
        """True when this process builds shard ``shard_index`` (round-robin over ranks)."""
        return shard_index % self.world_size == self.rank

    def owned(self, n_shards: int) -> list[int]:
        """The shard indices out of ``n_shards`` that this process builds."""
        return list(range(self.rank, n_shards, self.world_size))

    def barrier(self) -> None:
        """Wait for every rank when a process group is up; a no-op otherwise."""
        if self.synchronized:
            import torch.distributed as dist

            dist.barrier()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as err:
        raise ValueError(
            f"environment variable {name}={raw!r} is not an integer; unset it or set a number"
        ) from err


def assignment_from_environment(init_process_group: bool = True) -> ShardAssignment:
    """Read this process's rank from ``torch.distributed`` or the ``RANK``/``WORLD_SIZE`` variables.

    Under ``torchrun`` or ``accelerate launch`` (``MASTER_ADDR`` set, ``WORLD_SIZE`` > 1) a gloo
    process group is started, when none is up yet, so that rank 0 can wait for the others
    before writing the manifest; gloo only carries the barrier, the embedder keeps its device.
    """
    try:
        import torch.distributed as dist

        available = dist.is_available()
    except ImportError:  # pragma: no cover - torch is a hard dependency, kept for clarity
        available = False
    if available and dist.is_initialized():
        return ShardAssignment(dist.get_rank(), dist.get_world_size(), synchronized=True)
    rank = _env_int("RANK", 0)
    world_size = _env_int("WORLD_SIZE", 1)
    assignment = ShardAssignment(rank, world_size)
    if available and init_process_group and world_size > 1 and os.environ.get("MASTER_ADDR"):
        dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=_BARRIER_TIMEOUT)
        return ShardAssignment(rank, world_size, synchronized=True)
    return assignment


def local_device_index() -> int:
    """The accelerator index this process should use (``LOCAL_RANK``, 0 when unset)."""
    return _env_int("LOCAL_RANK", 0)
