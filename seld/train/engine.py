"""One training engine for both stages: epochs, validation with DCASE2025 metrics, checkpoints,
exact resume, TensorBoard, bf16 autocast and DDP under ``torchrun``.

A stage plugs in a :class:`SeldTask` (an ``nn.Module`` that turns a batch into a loss and a
``(batch, 50, 117)`` prediction and says which parameters get which learning rate); the engine
owns everything else. Pre-training and fine-tuning differ only by the task and the YAML.
"""
from __future__ import annotations

import contextlib
import gc
import math
import os
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from seld.config import save_config, to_dict
from seld.data.dataset import source_view_batches
from seld.errors import CheckpointError, ConfigError
from seld.locks import FolderLock
from seld.train.checkpoint import capture_rng_state, load_checkpoint, load_model_state, restore_rng_state, save_checkpoint
from seld.train.checkpoint import remove_stale_temp_files
from seld.train.distributed import DistInfo, all_reduce_mean, barrier, cleanup, gather_objects, init_distributed
from seld.train.distributed import all_reduce_max_int
from seld.train.sampler import ResumableSampler
from seld.train.stopping import Deadline, StopReason, StopSignals, TrainingInterrupted, TrainingPreempted


@dataclass
class SchedulerConfig:
    """Learning-rate schedule applied per optimiser step (a multiplier on every group's base lr).

    Every schedule is a function of the global step alone (see :func:`lr_factor`), so a run
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
    ``lscpu | grep bf16``), where it is faster too (measured, one thread, AMD EPYC with avx512_bf16:
    benchmark tokenizer step 1.35x, baseline CRNN 1.8x; the same validation curves; docs/results). On
    a CPU without native bf16 it is emulated and slower. ``auto``: bf16 where the device has it
    natively (:func:`native_bf16`), else none (the run's log says which)."""
    channels_last: bool = False
    """Keep 4-D weights (conv kernels) in channels-last memory format, which oneDNN's CPU convolutions and
    cuDNN's tensor cores prefer (measured, one CPU thread: tokenizer step 1.13x, baseline CRNN 1.3x; with
    bf16 1.4x and 2.4x). Numerics equal up to summation order; checkpoints load either way."""
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
    spinning against other processes (measured 20x faster on a loaded 2-core machine)."""
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


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX (where oneDNN runs bf16 convolutions and matmuls faster than fp32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private helpers of torch.cpu
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


@dataclass
class StepOutput:
    """What a task returns for one batch."""

    loss: torch.Tensor
    """Scalar to minimise."""
    output: torch.Tensor
    """Activated multi-ACCDOA prediction ``(batch, 50, 117)``."""
    logs: dict[str, float] = field(default_factory=dict)
    """Loss terms to log (e.g. ``adpit``, ``embed``)."""


class SeldTask(nn.Module):
    """Interface a stage implements; ``step`` must not depend on anything but the batch and RNG."""

    def step(self, batch: dict[str, Any]) -> StepOutput:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, batch: dict[str, Any]) -> StepOutput:
        """DDP calls ``forward``; it is the training step."""
        return self.step(batch)

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimiser parameter groups; the default trains every parameter that requires grad at ``lr``."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr, "name": "all"}]

    def checkpoint_extras(self) -> dict[str, Any]:
        """Plain data saved with the model (its config, class name) so it loads without the YAML."""
        return {}


def resolve_device(name: str, dist_info: DistInfo) -> torch.device:
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available")
    return torch.device("cuda", dist_info.local_rank)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def _schedule(cfg: SchedulerConfig, total_steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    return lambda step: lr_factor(cfg, step, total_steps, steps_per_epoch)


def build_optimizer(groups: list[dict[str, Any]], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over ``groups``; each group gets ``cfg.weight_decay`` unless it sets its own."""
    groups = [{**g, "weight_decay": g.get("weight_decay", cfg.weight_decay)} for g in groups]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


RUNTIME_KEYS: tuple[str, ...] = (
    "train.epochs", "train.max_steps", "train.max_minutes", "train.out_dir", "train.resume", "train.device",
    "train.num_workers", "train.num_threads", "train.progress", "train.tensorboard", "train.log_every_steps",
    "train.save_every_steps", "train.validate_every_epochs", "train.channels_last",
)
"""Config keys a resumed run may change (with a warning): how long and where it runs, and what it
prints or saves how often. Changing ``train.epochs`` under the cosine schedule stretches the
remaining cosine. Any other change (model, data, recipe) stops the resume with the list."""

_ABSENT = "<absent>"


def config_differences(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` for every leaf where two plain-data configs differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[str, Any, Any]] = []
        for k in list(old) + [k for k in new if k not in old]:
            out += config_differences(old.get(k, _ABSENT), new.get(k, _ABSENT), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if old == new else [(prefix, old, new)]


def resume_differences(
    saved: dict[str, Any], current: dict[str, Any], runtime_keys: tuple[str, ...], schema: type | None = None
) -> tuple[list[tuple[str, Any, Any]], list[tuple[str, Any, Any]]]:
    """(allowed, refused) differences between a checkpoint's config and the current one.

    ``saved`` is first rebuilt through ``schema`` (the stage config class; TrainConfig for the
    ``train`` part when None) so that fields added since it was written count at their defaults.
    A key is allowed when it equals, or lies under, one of ``runtime_keys``.
    """
    from seld.config import from_dict

    try:
        if schema is not None:
            saved = to_dict(from_dict(schema, saved, source="saved config"))
        else:
            saved = {"train": to_dict(from_dict(TrainConfig, saved.get("train", {}), source="saved config"))}
    except ConfigError:
        pass  # the schema changed since: compare the raw data
    allowed, refused = [], []
    for key, a, b in config_differences(saved, current):
        ok = any(key == k or key.startswith(k + ".") for k in runtime_keys)
        (allowed if ok else refused).append((key, a, b))
    return allowed, refused


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


Validator = Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], dict[str, float]]
"""(clip_id -> prediction (50, 117), clip_id -> target (50, 6, 4, 13)) -> metrics dict with F/DOAE/RDE."""


class Trainer:
    """Runs a :class:`SeldTask` over datasets; rank 0 logs and saves; resumes exactly from ``last``."""

    def __init__(
        self,
        task: SeldTask,
        train_set: Dataset,
        cfg: TrainConfig,
        val_set: Dataset | None = None,
        validator: Validator | None = None,
        resolved_config: Any = None,
        runtime_keys: tuple[str, ...] = (),
    ):
        """``resolved_config``: the stage's whole config (saved with the run and every checkpoint,
        compared on resume); ``runtime_keys``: dotted keys of it that a resume may change besides
        :data:`RUNTIME_KEYS`."""
        check_train_numbers(cfg)  # also when changed since the config was built
        self.cfg = cfg
        self.resolved_config = resolved_config
        self.runtime_keys = RUNTIME_KEYS + tuple(runtime_keys)
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        self.dist = init_distributed("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")
        self.device = resolve_device(cfg.device, self.dist)
        self.out_dir = Path(cfg.out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        seed_everything(cfg.seed)
        self.task = task.to(self.device)
        self.amp = cfg.amp if cfg.amp != "auto" else ("bf16" if native_bf16(self.device) else "none")
        if cfg.amp == "auto" and self.dist.is_main:
            print(f"train.amp=auto: {self.amp} on {self.device.type}", flush=True)
        if cfg.channels_last:
            self.task.to(memory_format=torch.channels_last)
        self.model: nn.Module = self.task
        if self.dist.enabled:
            self.model = nn.parallel.DistributedDataParallel(
                self.task, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.train_set = train_set
        self.val_set = val_set
        self.validator = validator
        self.sampler = ResumableSampler(
            len(train_set), seed=cfg.seed, shuffle=True, rank=self.dist.rank, world_size=self.dist.world_size
        )
        self.steps_per_epoch = len(self.sampler) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise ConfigError(
                f"train.batch_size={cfg.batch_size} exceeds the {len(self.sampler)} training clips per process"
            )
        self.optimizer = build_optimizer(task.param_groups(cfg.lr), cfg)
        total = cfg.epochs * self.steps_per_epoch  # not max_steps: a stop must not reshape the schedule
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _schedule(cfg.scheduler, total, self.steps_per_epoch)
        )
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.best: dict[str, float] = {"F": -math.inf, "loss": math.inf}
        self.history: list[dict[str, float]] = []
        self._loss_sum, self._loss_count = 0.0, 0
        """Running train-loss sum and step count of the current epoch (checkpointed)."""
        self.stop_reason = StopReason.NONE
        """Why the last ``fit`` stopped early (NONE: it ran to ``epochs``/``max_steps``)."""
        self._signals = StopSignals()
        self._elapsed_before = 0.0  # seconds of fit() in the runs this one resumed from
        self._deadline: Deadline | None = None
        self._saved_step = 0  # global_step of the newest ``last`` (written or resumed)
        self.writer = None
        self.ema: dict[str, torch.Tensor] | None = None
        """The weights' moving average (``train.ema_decay``), keyed like the task's state_dict."""
        if cfg.ema_decay is not None:
            self.ema = {k: v.detach().clone() for k, v in self.task.state_dict().items()}
        self._ema_pairs = self._ema_moving_pairs() if self.ema is not None else None
        # one run per out_dir (rank 0 holds it): before reading last.pt or removing temporary files
        self._out_lock = FolderLock(self.out_dir, "training") if self.dist.is_main else None
        if self._out_lock is not None:
            self._out_lock.acquire()
        try:
            self._start_run(resolved_config)
        except BaseException:
            if self._out_lock is not None:
                self._out_lock.release()
            raise

    def _start_run(self, resolved_config: Any) -> None:
        """Resume from ``last`` when there is one, then (rank 0) clean up, save the config, open TensorBoard."""
        cfg = self.cfg
        resumed = self._maybe_resume()  # before anything is written: a refused resume leaves the run as it was
        self.resumed = resumed
        """Whether this run continued from a checkpoint (its weights came from there)."""
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for stale in remove_stale_temp_files(self.ckpt_dir) + remove_stale_temp_files(self.out_dir):
                print(f"removed {stale}, a temporary file left by an interrupted write", flush=True)
            if resolved_config is not None:
                save_config(resolved_config, self.out_dir / "config.resolved.yml")
            if cfg.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                # On resume, TensorBoard hides the earlier session's points after the checkpoint
                # (steps it will log again), so every step and every epoch keeps one point.
                purge = self.global_step + 1 if resumed else None
                self.writer = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=purge)

    # ----------------------------------------------------------------- checkpoints
    def _state(self, averaged: bool = False) -> dict[str, Any]:
        """The checkpoint's content; ``averaged``: the weights' moving average as its ``model``."""
        model = self.ema if averaged and self.ema is not None else self.task.state_dict()
        extra = {"ema": self.ema} if self.ema is not None and not averaged else {}  # best_*: "model" is it
        return {
            "model": model,
            **extra,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": capture_rng_state(),
            "progress": {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step},
            "elapsed_seconds": self._elapsed(),  # time in fit() over all resumes, for train.max_minutes
            "best": dict(self.best),
            "history": list(self.history),
            "task": self.task.checkpoint_extras(),
            "epoch_loss": {"sum": self._loss_sum, "count": self._loss_count},
            "config": self._config_dict(),
        }

    def _config_dict(self) -> dict[str, Any]:
        """The run's config as plain data (the whole stage config, or ``{"train": ...}`` without one)."""
        return to_dict(self.resolved_config) if self.resolved_config is not None else {"train": to_dict(self.cfg)}

    def save(self, name: str) -> Path | None:
        """Write ``<out_dir>/checkpoints/<name>.pt`` on rank 0 (atomically)."""
        if name == "last":
            self._saved_step = self.global_step
        if not self.dist.is_main:
            return None
        # best_* hold what validation scored: the average, with train.ema_decay
        return save_checkpoint(self.ckpt_dir / f"{name}.pt", self._state(averaged=name != "last"))

    def _maybe_resume(self) -> bool:
        """Restore ``last.pt`` (or ``train.resume``'s path) after checking its config; True if resumed."""
        resume = self.cfg.resume
        if resume == "never":
            return False
        path = self.ckpt_dir / "last.pt" if resume == "auto" else Path(resume)
        if resume == "auto" and not path.is_file():
            return False
        ckpt = load_checkpoint(path, map_location=self.device)
        self._check_resume_config(ckpt, path)
        load_model_state(self.task, ckpt["model"], str(path))
        if self.ema is not None:
            source = ckpt.get("ema") or self.task.state_dict()  # a checkpoint without one: start from its weights
            for k, v in source.items():
                self.ema[k].copy_(v)
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except ValueError as err:  # torch: different groups or group sizes
            def shape(groups: list[dict[str, Any]]) -> str:
                return ", ".join(f"{g.get('name', i)} ({len(g['params'])} tensors)" for i, g in enumerate(groups))

            raise CheckpointError(
                f"{path}: its optimiser state does not fit this run: checkpoint groups {shape(ckpt['optimizer']['param_groups'])}, "
                f"this run {shape(self.optimizer.param_groups)} (what trains changed: a part frozen or "
                f"unfrozen by the stage's settings); resume it with the settings that made it, or "
                f"start a new run (train.resume: never, or another out_dir)") from err
        self.scheduler.load_state_dict(ckpt["scheduler"])
        restore_rng_state(ckpt["rng"])
        prog = ckpt["progress"]
        self.epoch, self.step_in_epoch, self.global_step = prog["epoch"], prog["step_in_epoch"], prog["global_step"]
        self._saved_step, self._elapsed_before = self.global_step, float(ckpt.get("elapsed_seconds", 0.0))
        self.best = dict(ckpt.get("best", self.best))
        self.history = list(ckpt.get("history", []))
        running = ckpt.get("epoch_loss", {"sum": 0.0, "count": 0})
        self._loss_sum, self._loss_count = float(running["sum"]), int(running["count"])
        if self.dist.is_main:
            print(f"resumed from {path}: epoch {self.epoch}, step {self.global_step}")
        return True

    def _check_resume_config(self, ckpt: dict[str, Any], path: Path) -> None:
        """Compare this run's config with the one ``ckpt`` was trained with (see :func:`resume_differences`).

        Run-time keys (:attr:`runtime_keys`) may differ, with a warning; any other difference
        (model, data, recipe) raises ConfigError listing them, before any state is loaded.
        """
        saved = ckpt.get("config")
        if saved is None:  # checkpoints written before configs were stored in them
            saved_file = path.parent.parent / "config.resolved.yml"
            if not saved_file.is_file():
                if self.dist.is_main:
                    warnings.warn(f"{path}: no saved config to compare with; resuming unchecked", stacklevel=3)
                return
            from seld.config import read_yaml

            saved = read_yaml(saved_file)
        current = self._config_dict()
        schema = type(self.resolved_config) if self.resolved_config is not None else None
        allowed, refused = resume_differences(saved, current, self.runtime_keys, schema)
        if refused:
            lines = "\n".join(f"  {k}: {_short(a)} -> {_short(b)}" for k, a, b in refused)
            raise ConfigError(
                f"cannot resume from {path}: the config differs from the one this run was trained with in "
                f"key(s) that change the model, data or recipe:\n{lines}\n"
                f"Start a new run instead: set train.resume=never (this run's checkpoints are then overwritten) "
                f"or a new train.out_dir; keys a resume may change: {', '.join(self.runtime_keys)}"
            )
        allowed = [d for d in allowed if d[0] not in ("train.resume", "train.out_dir")]  # how it was started
        if allowed and self.dist.is_main:
            lines = "; ".join(f"{k}: {_short(a)} -> {_short(b)}" for k, a, b in allowed)
            warnings.warn(f"resuming {path} with changed run-time setting(s): {lines}", stacklevel=3)

    # ----------------------------------------------------------------- loops
    def _loader(self, dataset: Dataset, sampler: Any) -> DataLoader:
        # A private generator keeps DataLoader from drawing on the global torch RNG, which the
        # checkpoint restores: resuming mid-epoch then reproduces dropout exactly.
        g = torch.Generator()
        g.manual_seed(self.cfg.seed)
        return DataLoader(
            dataset,
            batch_size=self.cfg.batch_size,
            sampler=sampler,
            num_workers=self.cfg.num_workers,
            drop_last=sampler is self.sampler,
            generator=g,
            persistent_workers=False,
            pin_memory=self.device.type == "cuda",
        )

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def _autocast(self):
        if self.amp == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return torch.autocast(device_type=self.device.type, enabled=False)

    def _set_dataset_epoch(self, dataset: Dataset, epoch: int) -> None:
        for ds in getattr(dataset, "datasets", [dataset]):
            if hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)

    def fit(self) -> list[dict[str, float]]:
        """Train until ``epochs`` (or ``max_steps`` / ``max_minutes``); returns the per-epoch history.

        Raises :class:`TrainingPreempted` after SIGUSR1/SIGTERM and :class:`TrainingInterrupted`
        after Ctrl-C, both once ``last`` is saved (see :mod:`seld.train.stopping`).
        """
        cfg = self.cfg
        self.stop_reason = StopReason.NONE
        self._deadline = Deadline(cfg.max_minutes, self._elapsed_before)
        self._signals.__enter__()
        try:
            while self.epoch < cfg.epochs:
                if cfg.max_steps is not None and self.global_step >= cfg.max_steps:
                    break
                if self._should_stop():  # a signal or the clock during validation, or before the first step
                    break
                stopped = self._train_epoch()
                if stopped:
                    if self.global_step > self._saved_step:
                        self.save("last")
                    break
                record = {"epoch": float(self.epoch), "train_loss": self._loss_sum / max(1, self._loss_count)}
                if self.val_set is not None and (self.epoch + 1) % cfg.validate_every_epochs == 0:
                    record.update(self.validate())
                self.epoch += 1
                self.step_in_epoch = 0
                self._loss_sum, self._loss_count = 0.0, 0
                self.history.append(record)
                self._after_epoch(record)
                self.save("last")
                self._log_epoch(record)  # after the save: a crash in between loses a point, never doubles one
                barrier(self.dist)
        except KeyboardInterrupt as exc:  # a second Ctrl-C, mid-step: the step in flight is lost
            if isinstance(exc, TrainingInterrupted):
                raise
            raise TrainingInterrupted(self._interrupted_mid_step()) from None
        finally:
            self._signals.__exit__()
            self._elapsed_before = self._elapsed()
            self._deadline = None
            if self.writer is not None:
                self.writer.flush()
        self._report_stop()
        return self.history

    def count_setup_time(self, seconds: float) -> None:
        """Count ``seconds`` of work done for this run before :meth:`fit` (e.g. a least-squares head
        fit) as training time: ``train.max_minutes`` and the checkpoints' ``elapsed_seconds`` include it."""
        if self._deadline is not None:
            raise RuntimeError("count_setup_time: call it before fit()")
        self._elapsed_before += float(seconds)

    # ----------------------------------------------------------------- stopping
    def _elapsed(self) -> float:
        return self._deadline.elapsed() if self._deadline is not None else self._elapsed_before

    def _should_stop(self) -> bool:
        """Whether to stop now: a stop signal or ``max_minutes``; every rank gets the same answer."""
        reason = self._signals.reason
        if self._deadline is not None and self._deadline.expired():
            reason = max(reason, StopReason.TIME_LIMIT)
        if self.dist.enabled:
            reason = all_reduce_max_int(int(reason), self.dist, self.device)
        self.stop_reason = StopReason(reason)
        return self.stop_reason != StopReason.NONE

    def _interrupted_mid_step(self) -> str:
        last = self.ckpt_dir / "last.pt"
        saved = f"{last} is at step {self._saved_step}" if last.is_file() else "nothing was saved"
        return f"interrupted during step {self.global_step + 1}; {saved}; {self._resume_hint()}"

    def _resume_hint(self) -> str:
        if self.cfg.resume == "auto":
            return "run the same command again to resume"
        return f"resume with train.resume=auto (or train.resume={self.ckpt_dir / 'last.pt'})"

    def _report_stop(self) -> None:
        """Say why ``fit`` stopped early; raise for signals (the CLI turns that into an exit status)."""
        reason = self.stop_reason
        if reason == StopReason.NONE:
            return
        where = (f"epoch {self.epoch + 1}/{self.cfg.epochs}, step {self.step_in_epoch}/{self.steps_per_epoch} "
                 f"(global step {self.global_step})")
        saved = f"{self.ckpt_dir / 'last.pt'} is at step {self._saved_step}"
        if reason == StopReason.TIME_LIMIT:
            if self.dist.is_main:
                print(f"train.max_minutes={self.cfg.max_minutes:g} reached after {self._elapsed() / 60:.2f} min at "
                      f"{where}; {saved}; rerun with a larger train.max_minutes to continue", flush=True)
            return
        barrier(self.dist)  # every rank leaves only once rank 0 has written last.pt
        if reason == StopReason.PREEMPTED:
            raise TrainingPreempted(f"stopped by {self._signals.signal_name or 'a signal'} at {where}; {saved}; "
                                    f"{self._resume_hint()}")
        raise TrainingInterrupted(f"interrupted at {where}; {saved}; {self._resume_hint()}")

    def _after_epoch(self, record: dict[str, float]) -> None:
        if not self.dist.is_main:
            return
        if "val_F" in record and record["val_F"] > self.best["F"]:
            self.best["F"] = record["val_F"]
            self.save("best_f")
        if "val_loss" in record and record["val_loss"] < self.best["loss"]:
            self.best["loss"] = record["val_loss"]
            self.save("best_loss")
        line = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch")
        print(f"epoch {int(record['epoch']) + 1}/{self.cfg.epochs}: {line}", flush=True)

    def _log_epoch(self, record: dict[str, float]) -> None:
        """One TensorBoard point per finished epoch (x = epoch number, 1-based) for each epoch value."""
        if self.writer is None:
            return
        step = int(record["epoch"]) + 1
        self.writer.add_scalar("epoch/train_loss", record["train_loss"], step)
        for k, v in record.items():
            if k.startswith("val_"):
                self.writer.add_scalar(f"val/{k[4:]}", v, step)
        self.writer.flush()

    def _train_epoch(self) -> bool:
        """One (possibly resumed) epoch; returns True when ``max_steps`` or a stop request ended it early."""
        from tqdm import tqdm

        cfg = self.cfg
        self._set_dataset_epoch(self.train_set, self.epoch)
        self.sampler.set_epoch(self.epoch, start_index=self.step_in_epoch * cfg.batch_size)
        loader = self._loader(self.train_set, self.sampler)
        self.model.train()
        bar = tqdm(
            loader,
            total=self.steps_per_epoch - self.step_in_epoch,
            desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
            disable=not (cfg.progress and self.dist.is_main),
            leave=False,
        )
        for batch in bar:
            batch = self._to_device(batch)
            with self._autocast():
                out = self.model(batch)
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if cfg.grad_clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.task.parameters(), cfg.grad_clip_norm)
            self.optimizer.step()
            self._update_ema()
            self.scheduler.step()
            self.step_in_epoch += 1
            self.global_step += 1
            loss = float(all_reduce_mean(out.loss.detach().float(), self.dist))
            self._loss_sum += loss  # carried in the checkpoint: a resumed epoch reports the full mean
            self._loss_count += 1
            bar.set_postfix(loss=f"{loss:.4f}")
            if self.writer is not None and self.global_step % max(1, cfg.log_every_steps) == 0:
                self.writer.add_scalar("train/loss", loss, self.global_step)
                for k, v in out.logs.items():
                    self.writer.add_scalar(f"train/{k}", v, self.global_step)
                for i, group in enumerate(self.optimizer.param_groups):
                    self.writer.add_scalar(f"lr/{group.get('name', i)}", group["lr"], self.global_step)
            if cfg.save_every_steps and self.global_step % cfg.save_every_steps == 0:
                self.save("last")
            # max_steps at the epoch's last step lets the epoch finish (validation, best checkpoints);
            # a stop request (signal, max_minutes) ends it after this step
            if (cfg.max_steps is not None and self.global_step >= cfg.max_steps
                    and self.step_in_epoch < self.steps_per_epoch) or self._should_stop():
                return True
        return False

    @torch.no_grad()
    def _update_ema(self) -> None:
        """Move the average towards the weights after optimiser step ``global_step`` (0-based)."""
        if self.ema is None:
            return
        n = self.global_step
        decay = min(self.cfg.ema_decay, (1 + n) / (10 + n))
        averaged, live, counters = self._ema_pairs
        if averaged:
            torch._foreach_lerp_(averaged, live, 1.0 - decay)
        for e, v in counters:  # BatchNorm's num_batches_tracked follows the weights
            e.copy_(v)

    def _ema_moving_pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
        """The (average, live) tensors one EMA step touches, found once: every floating buffer and
        every parameter the optimiser holds. A parameter outside the optimiser (a frozen text
        encoder: 22.7 M of MiniLM's weights, 96 % of a fine-tuning task) never moves, and its
        average, a copy of it, would stay bit-for-bit the same under ``lerp``; skipping it saves
        reading and writing those weights twice every step. The live tensors are the state_dict's,
        which share storage with the modules' own (loading a checkpoint copies into them)."""
        optimised = {id(p) for g in self.optimizer.param_groups for p in g["params"]}
        params = {name: p for name, p in self.task.named_parameters(remove_duplicate=False)}
        averaged, live, counters = [], [], []
        for k, v in self.task.state_dict(keep_vars=True).items():
            v = v.detach()
            if not v.is_floating_point():
                counters.append((self.ema[k], v))
            elif k not in params or id(params[k]) in optimised:
                averaged.append(self.ema[k])
                live.append(v)
        return averaged, live, counters

    @contextlib.contextmanager
    def averaged_weights(self):
        """Inside the block the task holds the moving average (``train.ema_decay``; else unchanged)."""
        if self.ema is None:
            yield
            return
        raw = {k: v.detach().clone() for k, v in self.task.state_dict().items()}
        self.task.load_state_dict(self.ema)
        try:
            yield
        finally:
            self.task.load_state_dict(raw)

    @torch.no_grad()
    def predict(self, dataset: Dataset) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
        """Predictions and targets of every clip of ``dataset`` (all ranks share the work) and mean loss."""
        sampler = list(range(self.dist.rank, len(dataset), self.dist.world_size))
        loader = self._loader(dataset, sampler)
        self.task.eval()
        preds: dict[str, np.ndarray] = {}
        targets: dict[str, np.ndarray] = {}
        total, count = 0.0, 0
        for batch in loader:
            batch = self._to_device(batch)
            with self._autocast():  # several source views (streams.src_eval: mean_lr): mean prediction and loss
                outs = [self.task.step(view) for view in source_view_batches(batch)]
            out = outs[0] if len(outs) == 1 else StepOutput(
                loss=torch.stack([o.loss for o in outs]).mean(), output=torch.stack([o.output for o in outs]).mean(0), logs={})
            total += float(out.loss) * len(batch["clip_id"])
            count += len(batch["clip_id"])
            for cid, o, t in zip(batch["clip_id"], out.output.float().cpu().numpy(), batch["target"].cpu().numpy()):
                preds[cid] = o
                targets[cid] = t
        parts = gather_objects((preds, targets, total, count), self.dist)
        all_preds: dict[str, np.ndarray] = {}
        all_targets: dict[str, np.ndarray] = {}
        tot, cnt = 0.0, 0
        for p, t, s, c in parts:  # type: ignore[misc]
            all_preds.update(p)
            all_targets.update(t)
            tot += s
            cnt += c
        return all_preds, all_targets, tot / max(1, cnt)

    def validate(self) -> dict[str, float]:
        """Validation loss and (with a validator) DCASE2025 metrics (``fit`` logs them to TensorBoard)."""
        assert self.val_set is not None
        with self.averaged_weights():
            preds, targets, loss = self.predict(self.val_set)
        record = {"val_loss": loss}
        if self.validator is not None:
            for k, v in self.validator(preds, targets).items():
                record[f"val_{k}"] = v
        self.task.train()
        return record

    @property
    def finished(self) -> bool:
        """True when the run reached ``train.epochs`` or ``train.max_steps`` (not when stopped otherwise)."""
        return self.epoch >= self.cfg.epochs or (self.cfg.max_steps is not None and self.global_step >= self.cfg.max_steps)

    def close(self) -> None:
        """Close TensorBoard, leave the process group and give ``out_dir``'s lock back."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self._out_lock is not None:
            self._out_lock.release()
        if self.model is not self.task:  # the DDP wrapper's reducer holds the process group: free it first,
            self.model = self.task       # or the group outlives destroy_process_group and gloo's threads are
            gc.collect()                 # torn down at interpreter exit (seen: a rank aborting with exit -6)
        cleanup(self.dist)
