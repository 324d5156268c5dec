"""Multi-process data parallel set-up for ``torchrun`` (gloo on CPU, NCCL on GPU)."""
from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job; ``world_size == 1`` means no process group."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of ``value`` over all processes (returns ``value`` unchanged without DDP)."""
    if not info.enabled:
        return value
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / info.world_size


def all_reduce_max_int(value: int, info: DistInfo, device: torch.device) -> int:
    """Largest ``value`` over all processes (``device``: where the backend reduces, CUDA for NCCL)."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def gather_objects(obj: object, info: DistInfo) -> list[object]:
    """List of ``obj`` from every rank (rank order); a one-element list without DDP."""
    if not info.enabled:
        return [obj]
    out: list[object] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def gather_predictions(preds: dict[str, Any], targets: dict[str, Any], loss_sum: float, count: int,
                       info: DistInfo) -> tuple[dict[str, Any], dict[str, Any], float]:
    """Every rank's predictions and targets (clip id -> array) merged, and the mean loss over all
    ranks' clips (``loss_sum``: this rank's loss times its clips, ``count``: its clips)."""
    all_preds: dict[str, Any] = {}
    all_targets: dict[str, Any] = {}
    tot, cnt = 0.0, 0
    for p, t, s, c in gather_objects((preds, targets, loss_sum, count), info):  # type: ignore[misc]
        all_preds.update(p)
        all_targets.update(t)
        tot += s
        cnt += c
    return all_preds, all_targets, tot / max(1, cnt)


def cleanup(info: DistInfo) -> None:
    """Destroy the process group, with SIGTERM / SIGUSR1 held back until it is gone.

    After a stop, ``torchrun`` sends SIGTERM to the ranks still running once the first one has exited;
    a Python handler raising mid-teardown would skip the destroy and leave gloo's threads to be torn
    down at interpreter exit, which can abort the process (exit -6 instead of 75). A signal held back
    is delivered as soon as the group is destroyed.
    """
    if not (info.enabled and dist.is_initialized()):
        return
    held = {signal.SIGTERM, signal.SIGUSR1}
    can_hold = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask")
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held) if can_hold else None
    try:
        dist.destroy_process_group()
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
