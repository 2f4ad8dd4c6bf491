"""Data-parallel training helpers (``torchrun --nproc_per_node N``): rank info, process group
set-up and teardown, and per-``(seed, step, rank)`` randomness that makes ``--resume`` exact.

``init_distributed(device)`` reads the torchrun environment (gloo on CPU, nccl on CUDA) and
returns ``(DistInfo, device)``; the trainer wraps the model in DistributedDataParallel,
all-reduces the logged losses and the stop flags (so every rank stops at the same step),
and only rank 0 logs, saves samples and writes checkpoints. ``cleanup_distributed()`` at
the end; ``with distributed(device) as (dist, device):`` does both around one training run.
Without torchrun everything runs single-process.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..runtime import resolve_device


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | torch.device = "auto") -> tuple[DistInfo, torch.device]:
    """Initialise the process group from torchrun's environment (no-op without it).

    Returns the rank info and the device this process should use (``cuda:LOCAL_RANK`` on GPU).
    """
    dev = resolve_device(str(device) if device is not None else None)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), dev
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local), dev


def cleanup_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def distributed(device: str | torch.device = "auto") -> Iterator[tuple[DistInfo, torch.device]]:
    """:func:`init_distributed` for one training run; the process group it creates is destroyed
    afterwards (one the caller had already initialised is left alone)."""
    own_group = current_dist().world_size == 1
    dist, dev = init_distributed(device)
    try:
        yield dist, dev
    finally:
        if own_group:
            cleanup_distributed()


def current_dist() -> DistInfo:
    """Rank info of an already initialised process group (single process otherwise)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DistributedDataParallel wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """A well-mixed 63-bit seed for ``(seed, step, rank)``."""
    digest = hashlib.blake2b(f"{seed}/{step}/{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """CPU generator for one step of one rank: data sampling is a pure function of these."""
    return torch.Generator().manual_seed(step_seed(seed, step, rank))
