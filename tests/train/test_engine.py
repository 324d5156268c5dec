import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seld.checkpoint import load_checkpoint
from seld.train.config import TrainConfig
from seld.train.engine import Trainer
from tests.scripts import child_pythonpath
from tests.train.toy import ToyDataset, ToyTask

ROOT = Path(__file__).resolve().parents[2]


def _cfg(out: Path, **kw) -> TrainConfig:
    base = dict(out_dir=str(out), epochs=3, batch_size=4, lr=1e-2, num_workers=0, device="cpu", progress=False,
                tensorboard=False, seed=7)
    base.update(kw)
    return TrainConfig(**base)


def _run(out: Path, **kw) -> Trainer:
    torch.manual_seed(123)
    task = ToyTask()
    tr = Trainer(task, ToyDataset(), _cfg(out, **kw), val_set=ToyDataset(8, seed=1))
    tr.fit()
    return tr


def test_loss_falls_and_checkpoints_are_written(tmp_path):
    tr = _run(tmp_path / "a", epochs=6)
    hist = tr.history
    assert len(hist) == 6 and hist[-1]["train_loss"] < 0.5 * hist[0]["train_loss"]
    for name in ("last", "best_loss"):
        ckpt = torch.load(tmp_path / "a" / "checkpoints" / f"{name}.pt", weights_only=True)
        assert set(ckpt) >= {"model", "optimizer", "scheduler", "rng", "progress", "versions"}
    assert load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["progress"]["epoch"] == 6


def test_resume_mid_epoch_is_bitwise_identical(tmp_path):
    full = _run(tmp_path / "full", resume="never")
    # stop after 5 steps (mid epoch 2 of 4 steps each), then resume to the end in a new Trainer
    _run(tmp_path / "split", max_steps=5)
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["progress"]["global_step"] == 5
    torch.manual_seed(999)  # a different global RNG before resume must not matter
    resumed = Trainer(ToyTask(), ToyDataset(), _cfg(tmp_path / "split"), val_set=ToyDataset(8, seed=1))
    assert resumed.global_step == 5 and resumed.epoch == 1 and resumed.step_in_epoch == 1
    resumed.fit()
    assert resumed.global_step == full.global_step == 12
    for (k, a), b in zip(full.task.state_dict().items(), resumed.task.state_dict().values()):
        assert torch.equal(a, b), k


def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    script = ROOT / "tests" / "train" / "ddp_worker.py"
    env = dict(os.environ, PYTHONPATH=child_pythonpath(), OMP_NUM_THREADS="1")
    single = tmp_path / "single"
    subprocess.run([sys.executable, str(script), str(single), "8"], check=True, env=env, cwd=ROOT, timeout=300)
    ddp = tmp_path / "ddp"
    subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(ddp), "4"],
        check=True, env=env, cwd=ROOT, timeout=300,
    )
    a = torch.load(single / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(ddp / "checkpoints" / "last.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a[k], torch.load(single / "init.pt", weights_only=True)[k]) for k in a)


def test_bf16_autocast_runs_and_learns_on_cpu(tmp_path):
    tr = _run(tmp_path / "amp", epochs=4, amp="bf16", resume="never")
    assert all(h["train_loss"] == h["train_loss"] for h in tr.history)  # no NaN
    assert tr.history[-1]["train_loss"] < tr.history[0]["train_loss"]


@pytest.mark.parametrize("avx512_bf16, amx, want", [(True, False, "bf16"), (False, True, "bf16"), (False, False, "none")])
def test_amp_auto_takes_bf16_only_where_the_cpu_has_it(avx512_bf16, amx, want, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    tr = Trainer(ToyTask(), ToyDataset(), _cfg(tmp_path, amp="auto", resume="never"))
    assert tr.amp == want and f"train.amp=auto: {want} on cpu" in capsys.readouterr().out
    with tr._autocast():
        y = tr.task.net(torch.randn(2, 64))
    assert y.dtype == (torch.bfloat16 if want == "bf16" else torch.float32)


def test_cosine_schedule_with_warmup_reaches_min_factor(tmp_path):
    from seld.train.config import SchedulerConfig

    sched = SchedulerConfig(name="cosine", warmup_steps=2, min_factor=0.1)
    tr = _run(tmp_path / "cos", epochs=3, scheduler=sched, resume="never", lr=1e-2)
    # 3 epochs x 4 steps: after the last step the multiplier is min_factor
    assert tr.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3, rel=1e-6)
    factors = [tr.scheduler.lr_lambdas[0](s) for s in range(12)]
    assert factors[0] == pytest.approx(0.5) and max(factors) <= 1.0 and factors[-1] == pytest.approx(0.1)


def test_batch_larger_than_dataset_is_a_config_error(tmp_path):
    from seld.errors import ConfigError

    with pytest.raises(ConfigError, match="batch_size=32 exceeds the 16 training clips"):
        Trainer(ToyTask(), ToyDataset(), _cfg(tmp_path / "big", batch_size=32))


# --- bad numbers are named at start-up, before torch sees them (issue 31) -----------------------

STAGE_CONFIGS = {"pretrain": "configs/quickstart/pretrain.yml", "finetune": "configs/quickstart/finetune.yml",
                 "baseline": "configs/baseline_seldnet.yml"}


@pytest.mark.parametrize("command", sorted(STAGE_CONFIGS))
@pytest.mark.parametrize("override, message", [
    # before: ZeroDivisionError in the engine; DataLoader's ValueError; torch's "Invalid learning
    # rate" traceback; exit 0 having written nothing; training at lr 0 without a word
    ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
    ("train.batch_size=-4", "train.batch_size must be >= 1, got -4"),
    ("train.lr=-1", "train.lr must be > 0 (0 trains nothing; a fine-tuning holds its pre-trained tokenizer with "
                    "tokenizer_lr: 0), got -1.0"),
    ("train.epochs=0", "train.epochs must be >= 1, got 0"),
    ("train.lr=0", "train.lr must be > 0 (0 trains nothing; a fine-tuning holds its pre-trained tokenizer with "
                   "tokenizer_lr: 0), got 0.0"),
])
def test_each_bad_training_number_is_a_named_error(command, override, message, tmp_path, capsys):
    from seld.cli import main

    out = tmp_path / "run"
    assert main([command, "--config", STAGE_CONFIGS[command], override, f"train.out_dir={out}"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"seld {command}: error: {STAGE_CONFIGS[command]} (+ overrides): ") and err.endswith(message)
    assert not out.exists()  # stopped at start-up


@pytest.mark.parametrize("key, value, rule", [
    ("num_workers", -1, ">= 0"), ("seed", -3, ">= 0"), ("save_every_steps", -1, ">= 0"),
    ("validate_every_epochs", 0, ">= 1"), ("log_every_steps", 0, ">= 1"), ("max_steps", 0, ">= 1 or null"),
    ("num_threads", 0, ">= 1 or null"), ("weight_decay", -0.1, ">= 0"), ("grad_clip_norm", 0.0, "> 0 or null"),
    ("max_minutes", -5.0, "> 0 or null"), ("ema_decay", 1.0, "in (0, 1) or null"), ("lr", float("nan"), "> 0"),
])
def test_every_numeric_train_key_is_checked(key, value, rule, tmp_path):
    from seld.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        _cfg(tmp_path, **{key: value})
    assert str(exc.value).startswith(f"train.{key} must be {rule}") and str(exc.value).endswith(f"got {value!r}")
    cfg = _cfg(tmp_path)  # a value changed after the config was built: the trainer checks again
    cfg.batch_size = 0
    with pytest.raises(ConfigError, match="train.batch_size must be >= 1, got 0"):
        Trainer(ToyTask(), ToyDataset(), cfg)
