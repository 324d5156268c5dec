"""One training engine for every stage: epochs, validation with DCASE2025 metrics, checkpoints,
exact resume, TensorBoard, bf16 autocast and DDP under ``torchrun``.

A stage plugs in a :class:`~seld.tasks.base.SeldTask` (an ``nn.Module`` that turns a batch into a
loss and a ``(batch, 50, 117)`` prediction and says which parameters get which learning rate); the
engine owns the loop and composes the rest: the ``train:`` config (:mod:`seld.train.config`), the
optimiser and schedule (:mod:`seld.train.optim`), the weights' average (:mod:`seld.train.ema`),
stopping (:mod:`seld.train.stopping`), checkpoints (:mod:`seld.checkpoint`) and the resume check
(:mod:`seld.config_diff`). Stages differ only by the task and the YAML.
"""
from __future__ import annotations

import contextlib
import gc
import math
import random
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from seld.checkpoint import capture_rng_state, load_checkpoint, load_model_state, load_optimizer_state, restore_rng_state
from seld.checkpoint import remove_stale_temp_files, save_checkpoint
from seld.config import save_config, to_dict
from seld.config_diff import check_resume, saved_run_config
from seld.errors import ConfigError
from seld.locks import FolderLock
from seld.tasks.base import SeldTask
from seld.train.config import RUNTIME_KEYS, TrainConfig, check_train_numbers
from seld.train.data import make_loader, set_dataset_epoch
from seld.train.device import autocast, native_bf16, resolve_device
from seld.train.distributed import all_reduce_max_int, all_reduce_mean, barrier, cleanup, gather_predictions
from seld.train.distributed import init_distributed
from seld.train.ema import WeightAverage
from seld.train.optim import build_optimizer, build_scheduler
from seld.train.sampler import ResumableSampler
from seld.train.stopping import Deadline, StopReason, StopSignals, TrainingInterrupted, TrainingPreempted
from seld.train.tensorboard import log_epoch, log_step, open_writer


def seed_everything(seed: int) -> None:
    """Seed the global generators of python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
        self.scheduler = build_scheduler(self.optimizer, cfg, self.steps_per_epoch)
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
        self.averager = WeightAverage(self.task, self.optimizer, cfg.ema_decay) if cfg.ema_decay is not None else None
        """The weights' moving average (``train.ema_decay``; None: off)."""
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
                self.writer = open_writer(self.out_dir, self.global_step + 1 if resumed else None)

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
        if self.averager is not None:  # a checkpoint without one: start from its weights
            self.averager.load(ckpt.get("ema") or self.task.state_dict())
        load_optimizer_state(self.optimizer, ckpt["optimizer"], path)
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
        """Compare this run's config with the one ``ckpt`` was trained with (:func:`seld.config_diff.check_resume`):
        run-time keys (:attr:`runtime_keys`) may differ, with a warning; any other difference (model,
        data, recipe) raises ConfigError listing them, before any state is loaded."""
        saved = saved_run_config(ckpt, path)
        if saved is None:
            if self.dist.is_main:
                warnings.warn(f"{path}: no saved config to compare with; resuming unchecked", stacklevel=3)
            return
        # the whole stage config, or the train part alone of a run without one
        stage = self.resolved_config is not None
        schema, part = (type(self.resolved_config), None) if stage else (TrainConfig, "train")
        changed = check_resume(path, saved, self._config_dict(), self.runtime_keys, schema, part)
        if changed and self.dist.is_main:
            warnings.warn(f"resuming {path} with changed run-time setting(s): {changed}", stacklevel=3)

    # ----------------------------------------------------------------- loops
    def _loader(self, dataset: Dataset, sampler: Any) -> DataLoader:
        return make_loader(dataset, sampler, self.cfg.batch_size, self.cfg.num_workers, self.cfg.seed,
                           drop_last=sampler is self.sampler, pin_memory=self.device.type == "cuda")

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.amp)

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
                if self.writer is not None:  # after the save: a crash in between loses a point, never doubles one
                    log_epoch(self.writer, record)
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

    def _train_epoch(self) -> bool:
        """One (possibly resumed) epoch; returns True when ``max_steps`` or a stop request ended it early."""
        from tqdm import tqdm

        cfg = self.cfg
        set_dataset_epoch(self.train_set, self.epoch)
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
                log_step(self.writer, self.global_step, loss, out.logs, self.optimizer)
            if cfg.save_every_steps and self.global_step % cfg.save_every_steps == 0:
                self.save("last")
            # max_steps at the epoch's last step lets the epoch finish (validation, best checkpoints);
            # a stop request (signal, max_minutes) ends it after this step
            if (cfg.max_steps is not None and self.global_step >= cfg.max_steps
                    and self.step_in_epoch < self.steps_per_epoch) or self._should_stop():
                return True
        return False

    def _update_ema(self) -> None:
        """Move the average towards the weights after optimiser step ``global_step`` (0-based)."""
        if self.averager is not None:
            self.averager.update(self.global_step)

    def averaged_weights(self) -> contextlib.AbstractContextManager[None]:
        """Inside the block the task holds the moving average (``train.ema_decay``; else unchanged)."""
        return self.averager.swapped_into(self.task) if self.averager is not None else contextlib.nullcontext()

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
            out = self.task.evaluation_step(batch, self._autocast)
            total += float(out.loss) * len(batch["clip_id"])
            count += len(batch["clip_id"])
            for cid, o, t in zip(batch["clip_id"], out.output.float().cpu().numpy(), batch["target"].cpu().numpy()):
                preds[cid] = o
                targets[cid] = t
        return gather_predictions(preds, targets, total, count, self.dist)

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
    def ema(self) -> dict[str, torch.Tensor] | None:
        """The average's tensors, keyed like the task's state_dict (what checkpoints store under ``ema``);
        None without ``train.ema_decay``."""
        return self.averager.weights if self.averager is not None else None

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
