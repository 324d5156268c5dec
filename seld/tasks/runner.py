"""Running a stage: datasets, task and trainer (all checked before the first step), training, then the
test splits scored once. The one module of :mod:`seld.tasks` that imports the training engine; the
stage modules import it inside their ``run`` functions, so loading a trained model never does."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional

from seld.checkpoint import load_checkpoint, load_model_state
from seld.io_utils import atomic_write_text
from seld.train.data import DataConfig, build_stage_datasets, make_validator
from seld.train.engine import Trainer, seed_everything

STAGE_RUNTIME_KEYS: tuple[str, ...] = ("data.test_splits", "gt_cache_size")
"""Stage keys a resume may change besides the engine's ``RUNTIME_KEYS`` (scored after training; a cache size)."""

TEST_SCORES_FILE = "test_scores.json"


def data_record(data: DataConfig) -> dict[str, Any]:
    """What a checkpoint must know of the features to run on new audio: statistics and front end."""
    from seld.config import read_yaml
    from seld.features.extract import CONFIG_FILE
    from seld.features.normalization import load_normalization

    stats = load_normalization(data.normalization_path)
    feature_cfg = Path(data.features_dir) / CONFIG_FILE
    return {
        "normalization": {name: {"mean": float(s.mean), "std": float(s.std)} for name, s in stats.items()},
        "features": read_yaml(feature_cfg) if feature_cfg.is_file() else {},
    }


def run_stage(cfg: Any, build_task: Callable[..., Any],
              prepare: Optional[Callable[[Any, Trainer], None]] = None) -> Trainer:
    """Datasets, task and trainer of a stage (all checked before the first step), ``prepare(cfg,
    trainer)`` (a stage's work between start-up and the first step), then training, then (when the
    run finished) the test splits scored once. ``cfg``: a stage config with ``data``, ``train`` and
    ``metrics``."""
    cfg.data.check_files()
    train_set, val_set, test_set = build_stage_datasets(cfg.data, seed=cfg.train.seed)
    seed_everything(cfg.train.seed)  # the initial weights follow train.seed (torch seeds itself randomly)
    task = build_task(cfg, data_record(cfg.data))
    validator = make_validator(cfg.metrics)
    trainer = Trainer(task, train_set, cfg.train, val_set, validator, resolved_config=cfg,
                      runtime_keys=STAGE_RUNTIME_KEYS)
    if prepare is not None:
        prepare(cfg, trainer)
    try:
        trainer.fit()
        if test_set is not None and trainer.finished:
            score_test_splits(trainer, test_set, cfg.data.test_splits, validator)
    finally:
        trainer.close()
    return trainer


def score_test_splits(trainer: Trainer, test_set: Any, splits: list[str], validator: Any) -> dict[str, Any] | None:
    """Score ``test_set`` once with ``best_f.pt``'s weights (the current weights when the run has
    no ``best_f.pt``); write ``<out_dir>/test_scores.json`` (atomically) and TensorBoard ``test/*``
    at the selected checkpoint's epoch. Skipped (returns None) when the file already holds the
    scores of this run at its current step. The trainer's weights are restored afterwards."""
    out = trainer.out_dir / TEST_SCORES_FILE
    if out.is_file():
        try:
            if json.loads(out.read_text(encoding="utf-8")).get("run_global_step") == trainer.global_step:
                return None
        except (OSError, ValueError):
            pass  # unreadable: score again
    best = trainer.ckpt_dir / "best_f.pt"
    current = {k: v.detach().to("cpu", copy=True) for k, v in trainer.task.state_dict().items()}
    if best.is_file():
        ckpt = load_checkpoint(best, map_location=trainer.device)
        load_model_state(trainer.task, ckpt["model"], str(best))
        source, epoch, step = "best_f", int(ckpt["progress"]["epoch"]), int(ckpt["progress"]["global_step"])
    else:
        source, epoch, step = "last", trainer.epoch, trainer.global_step
        if trainer.ema is not None:  # what validation would have scored (train.ema_decay)
            trainer.task.load_state_dict(trainer.ema)
    try:
        preds, targets, loss = trainer.predict(test_set)
        scores = {k: float(v) for k, v in validator(preds, targets).items()}
    finally:
        trainer.task.load_state_dict(current)
    record: dict[str, Any] = {
        "splits": list(splits), "checkpoint": source, "epoch": epoch, "global_step": step,
        "run_global_step": trainer.global_step, "clips": len(preds), "loss": float(loss), **scores,
    }
    if trainer.dist.is_main:
        atomic_write_text(out, json.dumps(record, indent=2) + "\n")
        if trainer.writer is not None:
            for k, v in [("loss", loss), *scores.items()]:
                trainer.writer.add_scalar(f"test/{k}", float(v), epoch)
            trainer.writer.flush()
        line = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
        print(f"test ({', '.join(splits)}, {source} from epoch {epoch}): loss {loss:.4f}, {line}", flush=True)
    return record
