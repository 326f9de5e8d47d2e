"""``torch.distributed`` helpers for training launched with ``torchrun`` (one process per GPU)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "main_process_first",
    "wrap_ddp",
]

T = TypeVar("T")


def is_distributed() -> bool:
    """True when a default process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """Global rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0: the only rank that logs and writes checkpoints."""
    return get_rank() == 0


def init_distributed(backend: str | None = None) -> torch.device:
    """Initialise the process group from torchrun's environment and return this process's device.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT`` (set by
    ``torchrun``). Backend defaults to ``nccl`` when CUDA is available (device ``cuda:LOCAL_RANK``)
    and ``gloo`` otherwise (device ``cpu``). Without torchrun variables nothing is initialised and the
    single-process device is returned. Calling it again is harmless.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and backend != "gloo"
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if is_distributed() or "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return device
    backend = backend or ("nccl" if use_cuda else "gloo")
    kwargs = {"device_id": device} if backend == "nccl" else {}
    dist.init_process_group(backend=backend, **kwargs)
    return device


def main_process_first(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on rank 0, then (after a barrier) on the other ranks; returns its result on each.

    For preparation that writes shared files once (e.g. ``ensure_simulated_dataset``, which the other ranks
    then only read). Initialises the process group from torchrun's environment when needed
    (:func:`init_distributed`); without torchrun it simply calls ``fn``.
    """
    init_distributed()
    if not is_distributed():
        return fn(*args, **kwargs)
    result = fn(*args, **kwargs) if is_main_process() else None
    dist.barrier()
    if not is_main_process():
        result = fn(*args, **kwargs)
    dist.barrier()
    return result  # type: ignore[return-value]


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy every buffer of ``module`` (e.g. BatchNorm running statistics) from rank ``src`` to all ranks, in place.

    DDP broadcasts buffers from rank 0 only at the start of each forward, so after the last forward of an epoch
    every rank holds its own running statistics; called at epoch end, the ranks agree again (rank 0's checkpoint
    is then every rank's state). No-op without a process group."""
    if not is_distributed():
        return
    for buffer in module.buffers():
        torch.distributed.broadcast(buffer.data, src)


def wrap_ddp(
    module: nn.Module, device: torch.device, find_unused_parameters: bool = False
) -> nn.Module:
    """Wrap ``module`` in ``DistributedDataParallel`` when a process group exists and it has trainable parameters.

    ``find_unused_parameters=True`` is needed for networks of which a step uses only a part (e.g. a
    multipath generator running 2 of N encoders).
    """
    if not is_distributed() or not any(p.requires_grad for p in module.parameters()):
        return module
    ids: Sequence[int] | None = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused_parameters)
