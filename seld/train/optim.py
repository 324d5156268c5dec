"""The optimiser and the learning-rate schedule a :class:`~seld.train.config.TrainConfig` asks for."""
from __future__ import annotations

import math
from typing import Any

import torch

from seld.train.config import SchedulerConfig, TrainConfig


def lr_factor(cfg: SchedulerConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """The multiplier on the base learning rates for optimiser step ``step`` (0-based).

    With W = ``warmup_steps``, N = ``total_steps``, E = ``step // steps_per_epoch``:
    warm-up ``w = min(1, (step + 1) / W)`` (1 when W = 0); then
    ``cosine``: ``w * (m + (1 - m) * (1 + cos(pi * p)) / 2)`` with ``p = min(1, max(0, step - W) / max(1, N - W - 1))``,
    so the factor is 1 right after the warm-up and ``min_factor`` at the last step;
    ``step``: ``w * gamma ** (E // step_size_epochs)``;
    ``multistep``: ``w * gamma ** #{milestones <= E}``; ``none``: ``w``.
    """
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
    epoch = step // max(1, steps_per_epoch)
    if cfg.name == "cosine":
        progress = min(1.0, max(0, step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps - 1))
        return warm * (cfg.min_factor + (1 - cfg.min_factor) * 0.5 * (1 + math.cos(math.pi * progress)))
    if cfg.name == "step":
        return warm * cfg.gamma ** (epoch // cfg.step_size_epochs)
    if cfg.name == "multistep":
        return warm * cfg.gamma ** sum(1 for m in cfg.milestones if epoch >= m)
    return warm


def build_optimizer(groups: list[dict[str, Any]], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over ``groups``; each group gets ``cfg.weight_decay`` unless it sets its own."""
    groups = [{**g, "weight_decay": g.get("weight_decay", cfg.weight_decay)} for g in groups]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """``cfg.scheduler`` stepped once per optimiser step over ``cfg.epochs`` epochs (not
    ``max_steps``: a stop must not reshape the schedule)."""
    sched, total = cfg.scheduler, cfg.epochs * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(sched, step, total, steps_per_epoch))
