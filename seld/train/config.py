"""How a stage trains: the ``train:`` section of every stage config (:class:`TrainConfig`, with its
learning-rate schedule) and the keys of it that a resumed run may change."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from seld.errors import ConfigError


@dataclass
class SchedulerConfig:
    """Learning-rate schedule applied per optimiser step (a multiplier on every group's base lr).

    Every schedule is a function of the global step alone (see :func:`seld.train.optim.lr_factor`), so a run
    resumed mid-epoch continues with exactly the learning rates of an uninterrupted one.
    """

    name: Literal["none", "cosine", "step", "multistep"] = "none"
    """none: constant; cosine: half-cosine per step over all ``epochs x steps_per_epoch`` steps
    (after the warm-up); step: x ``gamma`` every ``step_size_epochs``; multistep: x ``gamma`` at
    each epoch of ``milestones`` (the authors' fine-tuning: 10, 20, 30, 40, 45 with gamma 0.1)."""
    warmup_steps: int = 0
    """Linear warm-up over this many steps (all schedules): step s gets ``(s + 1) / warmup_steps``."""
    min_factor: float = 0.0
    """cosine: the multiplier reached at the last step."""
    step_size_epochs: int = 30
    """step: multiply by ``gamma`` every this many epochs."""
    milestones: list[int] = field(default_factory=list)
    """multistep: epochs (0-based count of finished epochs, as torch's ``MultiStepLR`` stepped once
    per epoch) after which the lr is multiplied by ``gamma``; milestone m takes effect from global
    step ``m * steps_per_epoch`` on, i.e. at the first step of epoch m + 1 (1-based)."""
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if self.warmup_steps < 0:
            raise ValueError(f"scheduler.warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.step_size_epochs < 1:
            raise ValueError(f"scheduler.step_size_epochs must be >= 1, got {self.step_size_epochs}")
        if self.gamma <= 0:
            raise ValueError(f"scheduler.gamma must be > 0, got {self.gamma}")
        if any(m < 1 for m in self.milestones) or list(self.milestones) != sorted(set(self.milestones)):
            raise ValueError(f"scheduler.milestones must be increasing epochs >= 1, got {self.milestones}")
        if not 0.0 <= self.min_factor <= 1.0:
            raise ValueError(f"scheduler.min_factor must be in [0, 1], got {self.min_factor}")


@dataclass
class TrainConfig:
    """How a stage trains; every field is set in YAML (``train:`` section)."""

    out_dir: str = "runs/experiment"
    """The run's folder; one run at a time holds it (:mod:`seld.locks`; rank 0 under DDP): a second
    run into it stops at start-up, naming the first."""
    epochs: int = 100
    batch_size: int = 8
    """Per process: the global batch under DDP is ``batch_size * world_size``."""
    lr: float = 1e-4
    optimizer: Literal["adam", "adamw"] = "adam"
    """adam: ``torch.optim.Adam`` (weight decay as an L2 term in the gradient, the authors'
    fine-tuning); adamw: ``torch.optim.AdamW`` (decoupled decay, the authors' pre-training code)."""
    weight_decay: float = 0.0
    """Weight decay of every parameter group (a task's group may set its own ``weight_decay``)."""
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    grad_clip_norm: Optional[float] = None
    """Clip the global gradient norm (all trained parameters together) to this value (None: no clipping)."""
    amp: Literal["none", "bf16", "auto"] = "none"
    """bf16 autocast for forward passes: on GPUs, and on CPUs with native bf16 (AVX512-BF16 / AMX;
    ``lscpu | grep bf16``), where it is faster too, with the same validation curves (step times in
    docs/results/README.md, "Faster steps on this CPU"). On a CPU without native bf16 it is emulated
    and slower. ``auto``: bf16 where the device has it natively (:func:`seld.train.device.native_bf16`),
    else none (the run's log says which)."""
    channels_last: bool = False
    """Keep 4-D weights (conv kernels) in channels-last memory format, which oneDNN's CPU convolutions and
    cuDNN's tensor cores prefer (faster CPU steps, with bf16 too: docs/results/README.md). Numerics equal
    up to summation order; checkpoints load either way."""
    ema_decay: Optional[float] = None
    """Keep an exponential moving average of the weights, updated after every optimiser step with
    decay ``min(ema_decay, (1 + n) / (10 + n))`` at step n (e.g. 0.995: an average over the last ~200
    steps). Validation, ``best_f.pt`` / ``best_loss.pt`` and what reads them (fine-tuning's starting
    tokenizer, ``seld infer``, the benchmark's test scores) use the average; ``last.pt`` keeps the raw
    weights, to resume, and the average under ``ema``. None: off (the authors' recipes)."""
    seed: int = 0
    num_workers: int = 2
    num_threads: Optional[int] = None
    """torch CPU threads of each process (None: torch's default). On a busy CPU, 1 avoids threads
    spinning against other processes, which can slow a step many times over."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    resume: str = "auto"
    """'auto': continue from ``<out_dir>/checkpoints/last.pt`` if it exists; 'never'; or a checkpoint path."""
    max_steps: Optional[int] = None
    """Stop (saving ``last``) after this many optimiser steps in total; None: run all epochs."""
    max_minutes: Optional[float] = None
    """Wall-clock limit: stop cleanly after the step that crosses it, saving ``last`` (best
    checkpoints are kept) and returning from ``fit`` normally; None: no limit. It counts the time
    spent training and validating in this run and the runs it resumed from (start-up excluded),
    so a rerun with the same limit stops at once and one with a larger limit continues."""
    save_every_steps: int = 0
    """Also save ``last`` every this many steps (0: only at the end of each epoch)."""
    validate_every_epochs: int = 1
    log_every_steps: int = 10
    progress: bool = True
    tensorboard: bool = True

    def __post_init__(self) -> None:
        check_train_numbers(self)


def check_train_numbers(cfg: TrainConfig) -> None:
    """ConfigError naming the key and its value for a number no run can use (at start-up, before
    torch sees it): counts below their least useful value, rates that train nothing or diverge.
    ``train.lr`` 0 trains nothing (a fine-tuning holds its tokenizer with ``tokenizer_lr: 0``)."""

    def bad(key: str, rule: str, value: Any) -> ConfigError:
        return ConfigError(f"train.{key} must be {rule}, got {value!r}")

    for key, least in (("epochs", 1), ("batch_size", 1), ("num_workers", 0), ("seed", 0), ("save_every_steps", 0),
                       ("validate_every_epochs", 1), ("log_every_steps", 1)):
        if not getattr(cfg, key) >= least:
            raise bad(key, f">= {least}", getattr(cfg, key))
    for key in ("max_steps", "num_threads"):
        if getattr(cfg, key) is not None and not getattr(cfg, key) >= 1:
            raise bad(key, ">= 1 or null (no limit / torch's default)", getattr(cfg, key))
    if not 0 < cfg.lr < math.inf:
        raise bad("lr", "> 0 (0 trains nothing; a fine-tuning holds its pre-trained tokenizer with tokenizer_lr: 0)",
                  cfg.lr)
    if not 0 <= cfg.weight_decay < math.inf:
        raise bad("weight_decay", ">= 0", cfg.weight_decay)
    if cfg.grad_clip_norm is not None and not 0 < cfg.grad_clip_norm < math.inf:
        raise bad("grad_clip_norm", "> 0 or null (no clipping)", cfg.grad_clip_norm)
    if cfg.max_minutes is not None and not 0 < cfg.max_minutes < math.inf:
        raise bad("max_minutes", "> 0 or null (no limit)", cfg.max_minutes)
    if cfg.ema_decay is not None and not 0.0 < cfg.ema_decay < 1.0:
        raise bad("ema_decay", "in (0, 1) or null", cfg.ema_decay)



RUNTIME_KEYS: tuple[str, ...] = (
    "train.epochs", "train.max_steps", "train.max_minutes", "train.out_dir", "train.resume", "train.device",
    "train.num_workers", "train.num_threads", "train.progress", "train.tensorboard", "train.log_every_steps",
    "train.save_every_steps", "train.validate_every_epochs", "train.channels_last",
)
"""Config keys a resumed run may change (with a warning): how long and where it runs, and what it
prints or saves how often. Changing ``train.epochs`` under the cosine schedule stretches the
remaining cosine. Any other change (model, data, recipe) stops the resume with the list."""
