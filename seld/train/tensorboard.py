"""TensorBoard scalars of a run (``<out_dir>/tensorboard``): per step the loss, its terms and the
learning rates; per finished epoch its train loss and validation values."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch


def open_writer(out_dir: Path, purge_step: Optional[int]) -> Any:
    """A SummaryWriter on ``<out_dir>/tensorboard``. On resume (``purge_step``: the first step this
    session logs) TensorBoard hides the earlier session's points from there on (steps it will log
    again), so every step and every epoch keeps one point."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out_dir / "tensorboard"), purge_step=purge_step)


def log_step(writer: Any, step: int, loss: float, logs: dict[str, float], optimizer: torch.optim.Optimizer) -> None:
    """``train/loss``, ``train/<term>`` of the task's logs and ``lr/<group>`` at optimiser step ``step``."""
    writer.add_scalar("train/loss", loss, step)
    for k, v in logs.items():
        writer.add_scalar(f"train/{k}", v, step)
    for i, group in enumerate(optimizer.param_groups):
        writer.add_scalar(f"lr/{group.get('name', i)}", group["lr"], step)


def log_epoch(writer: Any, record: dict[str, float]) -> None:
    """One point per finished epoch (x = epoch number, 1-based) for each epoch value."""
    step = int(record["epoch"]) + 1
    writer.add_scalar("epoch/train_loss", record["train_loss"], step)
    for k, v in record.items():
        if k.startswith("val_"):
            writer.add_scalar(f"val/{k[4:]}", v, step)
    writer.flush()
