"""One training run per ``train.out_dir`` (issue 31): two runs started on one folder both exited 0,
overwriting each other's checkpoints and config; now the second stops with the holder named."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from seld import cli
from seld.checkpoint import load_checkpoint
from seld.locks import LOCK_FILE, FolderLockedError
from seld.train.config import TrainConfig
from seld.train.engine import Trainer
from tests.scripts import child_pythonpath
from tests.train.toy import ToyDataset, ToyTask

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=child_pythonpath(), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")


def _toy_cfg(out: Path) -> TrainConfig:
    return TrainConfig(out_dir=str(out), epochs=1, batch_size=4, lr=1e-2, num_workers=0, device="cpu",
                       progress=False, tensorboard=False, seed=0, resume="auto")


def test_a_second_run_on_a_training_folder_stops_naming_the_first(sim, tmp_path, capsys) -> None:
    """The real commands on the tiny simulated set: `seld pretrain` trains in one process; `seld
    pretrain` and `seld baseline` on its folder stop at once, writing nothing there."""
    from tests.train.test_slurm import TINY_TOKENIZER

    out = tmp_path / "run"
    first = [sys.executable, "-m", "seld.cli", "pretrain", "--config", "configs/quickstart/pretrain.yml",
             f"data.features_dir={sim.features}", f"train.out_dir={out}", "train.epochs=4", "train.batch_size=1",
             "train.progress=false", "train.tensorboard=false", *TINY_TOKENIZER]
    proc = subprocess.Popen(first, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # the first run is training (and has written its config)
            if line.startswith("epoch 1/4"):
                break
        config = (out / "config.resolved.yml").read_text()
        seconds = [
            ["pretrain", "--config", "configs/quickstart/pretrain.yml", f"data.features_dir={sim.features}",
             f"train.out_dir={out}", "train.epochs=1", "train.tensorboard=false", *TINY_TOKENIZER],
            ["baseline", "--config", "configs/baseline_seldnet.yml", f"data.features_dir={sim.features}",
             "data.train_splits=[dev-train-synth]", "data.val_splits=[]", f"train.out_dir={out}", "train.epochs=1",
             "train.batch_size=4", "train.tensorboard=false"],
        ]
        for second in seconds:
            assert cli.main(second) == 1
            err = capsys.readouterr().err
            assert f"seld {second[0]}: error: {out} is in use by another run (pid {proc.pid} on host " \
                   f"{socket.gethostname()}, started " in err and ", training)" in err, err
            assert (out / "config.resolved.yml").read_text() == config  # not overwritten
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err  # the first run was undisturbed, and stops cleanly
    assert load_checkpoint(out / "checkpoints" / "last.pt")["progress"]["global_step"] >= 12
    assert (out / LOCK_FILE).read_text() == ""  # released when it ended


_TOY_HOLDER = """
import sys, time
from pathlib import Path
from seld.train.config import TrainConfig
from seld.train.engine import Trainer
from tests.train.toy import ToyDataset, ToyTask

cfg = TrainConfig(out_dir=sys.argv[1], epochs=1, batch_size=4, lr=1e-2, num_workers=0, device="cpu", progress=False,
                  tensorboard=False, seed=0, resume="auto")
trainer = Trainer(ToyTask(), ToyDataset(16), cfg)
print("holding", flush=True)
time.sleep(120)
"""


def test_the_lock_goes_with_a_killed_run_and_is_taken_over(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _TOY_HOLDER, str(out)], cwd=ROOT, env=ENV,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(FolderLockedError, match=f"pid {holder.pid} on host"):
            Trainer(ToyTask(), ToyDataset(16), _toy_cfg(out))
    finally:
        holder.kill()  # SIGKILL: no clean-up at all
        holder.wait()
    trainer = Trainer(ToyTask(), ToyDataset(16), _toy_cfg(out))
    try:
        assert f"training: taking over {out}: its lock was left by pid {holder.pid} on host " in capsys.readouterr().err
        trainer.fit()
    finally:
        trainer.close()
    assert (out / LOCK_FILE).read_text() == ""
    assert load_checkpoint(out / "checkpoints" / "last.pt")["progress"]["global_step"] == 4
