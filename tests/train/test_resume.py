"""Resumes that tell the truth (issue 13 items 9 and 12): the config is compared with the run's saved
one (run-time keys allowed with a warning, anything else refused with the list and a hint), a
mid-epoch resume reports the same epoch train loss as an uninterrupted run, and TensorBoard keeps
exactly one point per step and per epoch, also after a crash between logging and saving."""
from pathlib import Path

import pytest
import torch

from seld.config_diff import config_differences
from seld.errors import ConfigError
from seld.train.config import TrainConfig
from seld.train.engine import Trainer
from tests.train.toy import ToyDataset, ToyTask


def _cfg(out: Path, **kw) -> TrainConfig:
    base = dict(out_dir=str(out), epochs=3, batch_size=4, lr=1e-2, num_workers=0, device="cpu", progress=False,
                tensorboard=False, seed=7, resume="auto")
    base.update(kw)
    return TrainConfig(**base)


def _trainer(out: Path, cls=Trainer, **kw) -> Trainer:
    torch.manual_seed(123)
    return cls(ToyTask(), ToyDataset(), _cfg(out, **kw), val_set=ToyDataset(8, seed=1))


def _scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_config_differences_lists_dotted_leaves():
    old = {"train": {"lr": 0.1, "scheduler": {"name": "none", "milestones": []}}, "model": {"d": 16}}
    new = {"train": {"lr": 0.1, "scheduler": {"name": "multistep", "milestones": [2]}}, "model": {"d": 32, "e": 1}}
    assert config_differences(old, new) == [
        ("train.scheduler.name", "none", "multistep"), ("train.scheduler.milestones", [], [2]),
        ("model.d", 16, 32), ("model.e", "<absent>", 1),
    ]


def test_resume_refuses_a_changed_recipe_and_lists_it(tmp_path):
    _trainer(tmp_path / "r", max_steps=5).fit()
    with pytest.raises(ConfigError) as err:
        _trainer(tmp_path / "r", lr=2e-2, batch_size=2)
    msg = str(err.value)
    assert "train.lr: 0.01 -> 0.02" in msg and "train.batch_size: 4 -> 2" in msg
    assert "train.resume=never" in msg and "train.out_dir" in msg
    assert "max_steps" not in msg.split("\n")[1]  # allowed keys are not among the refused ones


def test_resume_allows_run_time_keys_with_a_warning(tmp_path):
    _trainer(tmp_path / "r", max_steps=5).fit()
    with pytest.warns(UserWarning, match=r"train\.epochs: 3 -> 4; .*train\.max_steps: 5 -> None"):
        tr = _trainer(tmp_path / "r", epochs=4, log_every_steps=2)
    assert tr.global_step == 5
    tr.fit()
    assert tr.epoch == 4


def test_mid_epoch_resume_reports_the_uninterrupted_epoch_loss_and_one_tensorboard_point(tmp_path):
    full = _trainer(tmp_path / "full", tensorboard=True, log_every_steps=1)
    full.fit()
    full.close()
    _trainer(tmp_path / "split", tensorboard=True, log_every_steps=1, max_steps=5).fit()  # epoch 2, step 1 of 4
    resumed = _trainer(tmp_path / "split", tensorboard=True, log_every_steps=1)
    assert (resumed.epoch, resumed.step_in_epoch, resumed._loss_count) == (1, 1, 1)
    resumed.fit()
    resumed.close()
    want = [h["train_loss"] for h in full.history]
    got = [h["train_loss"] for h in resumed.history]
    assert got == pytest.approx(want, abs=1e-6)
    for tag in ("epoch/train_loss", "val/loss"):
        a, b = _scalars(tmp_path / "full", tag), _scalars(tmp_path / "split", tag)
        assert [s for s, _ in b] == [1, 2, 3], tag
        assert [v for _, v in b] == pytest.approx([v for _, v in a], abs=1e-6), tag
    steps = _scalars(tmp_path / "split", "train/loss")
    assert [s for s, _ in steps] == list(range(1, 13))


class _CrashAfterStep5(Trainer):
    """Logs every step but its checkpoints stop at step 5: a process killed after logging step 7."""

    def save(self, name):
        return super().save(name) if self.global_step <= 5 else None


def test_tensorboard_drops_points_logged_after_the_checkpoint_a_resume_repeats(tmp_path):
    full = _trainer(tmp_path / "full", tensorboard=True, log_every_steps=1)
    full.fit()
    full.close()
    run = tmp_path / "crash"
    crashed = _trainer(run, cls=_CrashAfterStep5, tensorboard=True, log_every_steps=1, save_every_steps=5, max_steps=7)
    crashed.fit()
    crashed.close()
    assert [s for s, _ in _scalars(run, "train/loss")] == list(range(1, 8))
    resumed = _trainer(run, tensorboard=True, log_every_steps=1)
    assert resumed.global_step == 5
    resumed.fit()
    resumed.close()
    got, want = _scalars(run, "train/loss"), _scalars(tmp_path / "full", "train/loss")
    assert [s for s, _ in got] == list(range(1, 13))
    assert [v for _, v in got] == pytest.approx([v for _, v in want], abs=1e-6)
    assert [s for s, _ in _scalars(run, "epoch/train_loss")] == [1, 2, 3]


def test_max_steps_at_an_epoch_end_finishes_that_epoch(tmp_path):
    full = _trainer(tmp_path / "full")
    full.fit()
    stopped = _trainer(tmp_path / "split", max_steps=4)  # 4 steps per epoch: the end of epoch 1
    stopped.fit()
    assert (stopped.epoch, stopped.step_in_epoch) == (1, 0) and "val_loss" in stopped.history[0]
    resumed = _trainer(tmp_path / "split")
    resumed.fit()
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in full.history], abs=1e-6)
    assert len(resumed.history) == 3
