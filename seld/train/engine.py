"""One training engine for both stages: epochs, validation with DCASE2025 metrics, checkpoints,
exact resume, TensorBoard, bf16 autocast and DDP under ``torchrun``.

A stage plugs in a :class:`SeldTask` (an ``nn.Module`` that turns a batch into a loss and a
``(batch, 50, 117)`` prediction and says which parameters get which learning rate); the engine
owns everything else. Pre-training and fine-tuning differ only by the task and the YAML.
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from seld.config import save_config, to_dict
from seld.errors import ConfigError
from seld.train.checkpoint import capture_rng_state, load_checkpoint, load_model_state, restore_rng_state, save_checkpoint
from seld.train.checkpoint import remove_stale_temp_files
from seld.train.distributed import DistInfo, all_reduce_mean, barrier, cleanup, gather_objects, init_distributed
from seld.train.distributed import all_reduce_max_int
from seld.train.sampler import ResumableSampler
from seld.train.stopping import Deadline, StopReason, StopSignals, TrainingInterrupted, TrainingPreempted


@dataclass
class SchedulerConfig:
    """Learning-rate schedule applied per optimiser step (a multiplier on every group's base lr)."""

    name: Literal["none", "cosine", "step"] = "none"
    warmup_steps: int = 0
    """Linear warm-up from 0 over this many steps (all schedules)."""
    min_factor: float = 0.0
    """cosine: the multiplier reached at the last step."""
    step_size_epochs: int = 30
    """step: multiply by ``gamma`` every this many epochs."""
    gamma: float = 0.1


@dataclass
class TrainConfig:
    """How a stage trains; every field is set in YAML (``train:`` section)."""

    out_dir: str = "runs/experiment"
    epochs: int = 100
    batch_size: int = 8
    """Per process: the global batch under DDP is ``batch_size * world_size``."""
    lr: float = 1e-4
    weight_decay: float = 0.0
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    grad_clip_norm: Optional[float] = None
    """Clip the global gradient norm to this value (None: no clipping)."""
    amp: Literal["none", "bf16"] = "none"
    """bf16 autocast for forward passes (meant for GPUs; works, slowly, on CPU)."""
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


def _schedule(cfg: SchedulerConfig, total_steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
        if cfg.name == "cosine":
            progress = min(1.0, step / max(1, total_steps - 1))
            return warm * (cfg.min_factor + (1 - cfg.min_factor) * 0.5 * (1 + math.cos(math.pi * progress)))
        if cfg.name == "step":
            return warm * cfg.gamma ** ((step // max(1, steps_per_epoch)) // cfg.step_size_epochs)
        return warm

    return factor


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
    ):
        self.cfg = cfg
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        self.dist = init_distributed("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")
        self.device = resolve_device(cfg.device, self.dist)
        self.out_dir = Path(cfg.out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        seed_everything(cfg.seed)
        self.task = task.to(self.device)
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
        groups = task.param_groups(cfg.lr)
        self.optimizer = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _schedule(cfg.scheduler, total, self.steps_per_epoch)
        )
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.best: dict[str, float] = {"F": -math.inf, "loss": math.inf}
        self.history: list[dict[str, float]] = []
        self.stop_reason = StopReason.NONE
        """Why the last ``fit`` stopped early (NONE: it ran to ``epochs``/``max_steps``)."""
        self._signals = StopSignals()
        self._elapsed_before = 0.0  # seconds of fit() in the runs this one resumed from
        self._deadline: Deadline | None = None
        self._saved_step = 0  # global_step of the newest ``last`` (written or resumed)
        self.writer = None
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for stale in remove_stale_temp_files(self.ckpt_dir) + remove_stale_temp_files(self.out_dir):
                print(f"removed {stale}, a temporary file left by an interrupted write", flush=True)
            if resolved_config is not None:
                save_config(resolved_config, self.out_dir / "config.resolved.yml")
            if cfg.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        self._maybe_resume()

    # ----------------------------------------------------------------- checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "model": self.task.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": capture_rng_state(),
            "progress": {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step},
            "elapsed_seconds": self._elapsed(),  # time in fit() over all resumes, for train.max_minutes
            "best": dict(self.best),
            "history": list(self.history),
            "task": self.task.checkpoint_extras(),
        }

    def save(self, name: str) -> Path | None:
        """Write ``<out_dir>/checkpoints/<name>.pt`` on rank 0 (atomically)."""
        if name == "last":
            self._saved_step = self.global_step
        if not self.dist.is_main:
            return None
        return save_checkpoint(self.ckpt_dir / f"{name}.pt", self._state())

    def _maybe_resume(self) -> None:
        resume = self.cfg.resume
        if resume == "never":
            return
        path = self.ckpt_dir / "last.pt" if resume == "auto" else Path(resume)
        if resume == "auto" and not path.is_file():
            return
        ckpt = load_checkpoint(path, map_location=self.device)
        load_model_state(self.task, ckpt["model"], str(path))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        restore_rng_state(ckpt["rng"])
        prog = ckpt["progress"]
        self.epoch, self.step_in_epoch, self.global_step = prog["epoch"], prog["step_in_epoch"], prog["global_step"]
        self._saved_step, self._elapsed_before = self.global_step, float(ckpt.get("elapsed_seconds", 0.0))
        self.best = dict(ckpt.get("best", self.best))
        self.history = list(ckpt.get("history", []))
        if self.dist.is_main:
            print(f"resumed from {path}: epoch {self.epoch}, step {self.global_step}")

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
        if self.cfg.amp == "bf16":
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
                record = {"epoch": float(self.epoch), "train_loss": self._epoch_loss}
                if self.val_set is not None and (self.epoch + 1) % cfg.validate_every_epochs == 0:
                    record.update(self.validate())
                self.epoch += 1
                self.step_in_epoch = 0
                self.history.append(record)
                self._after_epoch(record)
                self.save("last")
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

    def _train_epoch(self) -> bool:
        """One (possibly resumed) epoch; returns True when ``max_steps`` or a stop request ended it early."""
        from tqdm import tqdm

        cfg = self.cfg
        self._set_dataset_epoch(self.train_set, self.epoch)
        self.sampler.set_epoch(self.epoch, start_index=self.step_in_epoch * cfg.batch_size)
        loader = self._loader(self.train_set, self.sampler)
        self.model.train()
        total, count = 0.0, 0
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
            self.scheduler.step()
            self.step_in_epoch += 1
            self.global_step += 1
            loss = float(all_reduce_mean(out.loss.detach().float(), self.dist))
            total += loss
            count += 1
            bar.set_postfix(loss=f"{loss:.4f}")
            if self.writer is not None and self.global_step % max(1, cfg.log_every_steps) == 0:
                self.writer.add_scalar("train/loss", loss, self.global_step)
                for k, v in out.logs.items():
                    self.writer.add_scalar(f"train/{k}", v, self.global_step)
                for i, group in enumerate(self.optimizer.param_groups):
                    self.writer.add_scalar(f"lr/{group.get('name', i)}", group["lr"], self.global_step)
            if cfg.save_every_steps and self.global_step % cfg.save_every_steps == 0:
                self.save("last")
            if (cfg.max_steps is not None and self.global_step >= cfg.max_steps) or self._should_stop():
                self._epoch_loss = total / max(1, count)
                return True
        self._epoch_loss = total / max(1, count)
        if self.writer is not None:
            self.writer.add_scalar("epoch/train_loss", self._epoch_loss, self.epoch + 1)
        return False

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
            with self._autocast():
                out = self.task.step(batch)
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
        """Validation loss and (with a validator) DCASE2025 metrics; logged to TensorBoard."""
        assert self.val_set is not None
        preds, targets, loss = self.predict(self.val_set)
        record = {"val_loss": loss}
        if self.validator is not None:
            for k, v in self.validator(preds, targets).items():
                record[f"val_{k}"] = v
        if self.writer is not None:
            for k, v in record.items():
                self.writer.add_scalar(f"val/{k[4:]}", v, self.epoch + 1)
        self.task.train()
        return record

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        cleanup(self.dist)
