"""Clean stopping: preemption signals, Ctrl-C, train.max_minutes, DDP agreement, stale temp files.

Each interrupted run is resumed and its final weights compared bit for bit with an uninterrupted
run of the same config (the toy task has dropout, so a wrong RNG state would show).
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seld import cli
from seld.checkpoint import load_checkpoint
from seld.tasks import STAGES
from seld.train import stopping
from seld.train.config import TrainConfig
from seld.train.engine import Trainer
from seld.train.stopping import EXIT_INTERRUPTED, EXIT_REQUEUE, StopReason, TrainingInterrupted, TrainingPreempted
from tests.scripts import child_pythonpath
from tests.train.toy import ToyDataset, ToyTask

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "train" / "stop_worker.py"
ENV = dict(os.environ, PYTHONPATH=child_pythonpath(), OMP_NUM_THREADS="1")


def _cfg(out: Path, **kw) -> TrainConfig:
    base = dict(out_dir=str(out), epochs=3, batch_size=4, lr=1e-2, num_workers=0, device="cpu", progress=False,
                tensorboard=False, seed=7, resume="auto")
    base.update(kw)
    return TrainConfig(**base)


class Hooked(ToyDataset):
    """Toy data that calls ``hook(n)`` on its n-th item (from 1): a signal or a clock tick mid-epoch."""

    def __init__(self, hook=None):
        super().__init__(16)
        self.hook, self.calls = hook, 0

    def __getitem__(self, i):
        self.calls += 1
        if self.hook is not None:
            self.hook(self.calls)
        return super().__getitem__(i)


def _trainer(out: Path, hook=None, **kw) -> Trainer:
    torch.manual_seed(123)
    return Trainer(ToyTask(dropout=0.2), Hooked(hook), _cfg(out, **kw), val_set=ToyDataset(8, seed=1))


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / "checkpoints" / "last.pt")["model"]


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, torch.Tensor]:
    """Final weights of the uninterrupted run (3 epochs x 4 steps)."""
    out = tmp_path_factory.mktemp("uninterrupted")
    tr = _trainer(out)
    tr.fit()
    assert tr.global_step == 12 and tr.stop_reason == StopReason.NONE
    return _weights(out)


def _raise_at(signum: int, fetch: int):
    def hook(n: int) -> None:
        if n == fetch:
            signal.raise_signal(signum)
    return hook


@pytest.mark.parametrize("signum, exc_type", [(signal.SIGUSR1, TrainingPreempted), (signal.SIGTERM, TrainingPreempted),
                                             (signal.SIGINT, TrainingInterrupted)])
def test_signal_mid_epoch_saves_last_and_resumes_bit_exactly(tmp_path, reference, signum, exc_type):
    # item 23 is fetched for step 6 (4 items per step): epoch 2, step 2 of 4
    tr = _trainer(tmp_path, _raise_at(signum, 23))
    with pytest.raises(exc_type) as info:
        tr.fit()
    assert "run the same command again to resume" in str(info.value)
    prog = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["progress"]
    assert (prog["global_step"], prog["epoch"], prog["step_in_epoch"]) == (6, 1, 2)
    assert signal.getsignal(signum) is not tr._signals._handle  # handlers restored after fit
    resumed = _trainer(tmp_path)
    assert resumed.global_step == 6
    resumed.fit()
    assert resumed.global_step == 12
    _assert_same(_weights(tmp_path), reference)


def test_ctrl_c_right_after_an_epoch_save_writes_nothing_new(tmp_path):
    # item 17 = the first fetch of epoch 2: the stop comes after step 5, so last.pt moves from 4 to 5;
    # a rerun interrupted before its first step must leave it alone
    tr = _trainer(tmp_path, _raise_at(signal.SIGINT, 17))
    with pytest.raises(TrainingInterrupted, match="is at step 5"):
        tr.fit()
    last = tmp_path / "checkpoints" / "last.pt"
    before = last.stat().st_mtime_ns
    again = _trainer(tmp_path)
    again.cfg.max_minutes = 0.0  # stop before the first step: nothing new to save
    again.fit()
    assert again.stop_reason == StopReason.TIME_LIMIT and again.global_step == 5
    assert last.stat().st_mtime_ns == before


@pytest.fixture
def tick(monkeypatch):
    """A fake clock for ``train.max_minutes``: each fetched item (the Hooked hook) advances it 10 s,
    so a step of 4 items takes 40 s."""
    clock = {"now": 1000.0}
    monkeypatch.setattr(stopping, "time", type("FakeTime", (), {"monotonic": staticmethod(lambda: clock["now"])}))

    def advance(n: int) -> None:
        clock["now"] += 10.0

    return advance


def test_max_minutes_stops_after_the_crossing_step_and_a_larger_limit_continues(tmp_path, reference, tick):
    tr = _trainer(tmp_path, tick, max_minutes=3.0)  # 180 s: crossed during step 5 (200 s)
    history = tr.fit()  # returns normally
    assert tr.stop_reason == StopReason.TIME_LIMIT and tr.global_step == 5
    assert len(history) == 1 and (tmp_path / "checkpoints" / "best_loss.pt").is_file()
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert ckpt["progress"]["global_step"] == 5 and ckpt["elapsed_seconds"] == pytest.approx(200.0)
    same = _trainer(tmp_path, tick, max_minutes=3.0)  # the budget is spent: no step
    same.fit()
    assert same.global_step == 5 and same.stop_reason == StopReason.TIME_LIMIT
    more = _trainer(tmp_path, tick, max_minutes=6.0)  # 360 s: crossed during step 9 (360 s)
    more.fit()
    assert more.global_step == 9 and more.stop_reason == StopReason.TIME_LIMIT
    rest = _trainer(tmp_path, tick)  # no limit: to the end
    rest.fit()
    assert rest.global_step == 12 and rest.stop_reason == StopReason.NONE
    _assert_same(_weights(tmp_path), reference)


def test_setup_time_counts_toward_max_minutes(tmp_path, tick):
    tr = _trainer(tmp_path, tick, max_minutes=3.0)
    tr.count_setup_time(100.0)  # e.g. a head fit before the first step: 80 s left, crossed during step 2
    tr.fit()
    assert tr.stop_reason == StopReason.TIME_LIMIT and tr.global_step == 2
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["elapsed_seconds"] == pytest.approx(180.0)
    with pytest.raises(RuntimeError, match="before fit"):
        tr._deadline = stopping.Deadline(1.0)  # as during fit()
        tr.count_setup_time(1.0)


def test_stale_temp_files_are_removed_at_start_up(tmp_path):
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir(parents=True)
    stale = [ckpt / ".last.pt.k2x_9abc.tmp", ckpt / ".best_f.pt.00000000.tmp", tmp_path / ".config.resolved.yml.abcdefgh.tmp"]
    kept = [ckpt / "notes.tmp", ckpt / ".hidden.tmp", ckpt / "last.pt.tmp"]
    for p in stale + kept:
        p.write_bytes(b"x" * 100)
    _trainer(tmp_path)
    assert [p.exists() for p in stale] == [False] * 3
    assert all(p.exists() for p in kept)


def test_cli_turns_stops_into_one_line_and_exit_codes(monkeypatch, capsys):
    import seld.commands.train as train_command  # every training command runs through it

    def preempted(args):
        raise TrainingPreempted("stopped by SIGUSR1 at epoch 2/3, step 2/4 (global step 6); x/last.pt is at step 6")

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_command, "run", preempted)
    assert cli.main(["pretrain"]) == EXIT_REQUEUE == 75
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seld pretrain: stopped by SIGUSR1") and "requeue" in err[0]
    monkeypatch.setattr(train_command, "run", interrupted)
    assert cli.main(["pretrain"]) == EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err.strip().splitlines() == ["seld pretrain: interrupted"]


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGTERM])
@pytest.mark.parametrize("command", ["pretrain", "finetune", "baseline"])
def test_preemption_signal_before_training_exits_with_the_requeue_status(command, signum, monkeypatch, capsys):
    import seld.commands.train as train_command

    assert command in STAGES  # a training command because it is a stage of the one table

    def loading(args):  # e.g. still reading the features when SLURM's warning arrives
        signal.raise_signal(signum)
        raise AssertionError("not reached")

    before = signal.getsignal(signum)
    monkeypatch.setattr(train_command, "run", loading)
    assert cli.main([command]) == EXIT_REQUEUE
    assert f"stopped by {signum.name} outside training" in capsys.readouterr().err
    assert signal.getsignal(signum) is before  # main() puts the handlers back


_SLOW_START = """
import sys, time
import seld.commands.train as train_command
from seld import cli

def starting(args):  # start-up that takes a while (reading features, building the model)
    print("starting", flush=True)
    time.sleep(60)

train_command.run = starting
sys.exit(cli.main([sys.argv[1]]))
"""


@pytest.mark.parametrize("command", list(STAGES))
def test_sigterm_to_a_training_command_during_start_up_exits_with_the_requeue_status(command):
    # before: killed by the signal (exit 143, 138 for SIGUSR1) without a word, so never requeued
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_START, command], env=ENV, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "starting"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_REQUEUE == 75, err
    assert err.strip() == f"seld {command}: stopped by SIGTERM outside training (nothing new to save) (exit 75: requeue)"


def _worker(*args: object, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = (launcher or [sys.executable]) + [str(WORKER)] + [str(a) for a in args]
    return subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_plain_process_signal_exit_code_and_bitwise_resume(tmp_path):
    full = _worker(tmp_path / "full", 4, 2)
    assert full.returncode == 0, full.stderr
    for signame, code in (("USR1", EXIT_REQUEUE), ("INT", EXIT_INTERRUPTED)):
        out = tmp_path / signame
        first = _worker(out, 4, 2, signame, 10)  # item 10 is loaded for step 3: epoch 1, step 3 of 4
        assert first.returncode == code, first.stderr
        lines = [line for line in first.stderr.splitlines() if line.startswith("stopped:")]
        assert len(lines) == 1 and "step 3/4" in lines[0] and "Traceback" not in first.stderr
        assert load_checkpoint(out / "checkpoints" / "last.pt")["progress"]["global_step"] == 3
        if signame == "USR1":  # (the in-process tests resume after every signal)
            second = _worker(out, 4, 2)
            assert second.returncode == 0, second.stderr
            _assert_same(_weights(out), _weights(tmp_path / "full"))


def test_ddp_ranks_agree_on_the_stop_step_and_resume_bitwise(tmp_path):
    """Only rank 1 gets SIGUSR1; both ranks stop after the same step, and the resumed DDP run ends
    with the weights of an uninterrupted DDP run (the toy task has dropout: per-rank RNG matters)."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    full = _worker(tmp_path / "full", 2, 2, launcher=torchrun)
    assert full.returncode == 0, full.stderr
    cut = _worker(tmp_path / "cut", 2, 2, "USR1", 7, 1, launcher=torchrun)  # rank 1, item 7: step 4 of 4
    # torchrun exits 1 and reports the workers' status (it may end the slower rank once one has exited)
    assert cut.returncode == 1 and "exitcode  : 75" in cut.stderr, cut.stderr
    assert "stopped: stopped by SIGUSR1 at epoch 1/2, step 4/4" in cut.stderr
    prog = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["progress"]
    assert (prog["global_step"], prog["epoch"], prog["step_in_epoch"]) == (4, 0, 4)
    again = _worker(tmp_path / "cut", 2, 2, launcher=torchrun)
    assert again.returncode == 0, again.stderr
    _assert_same(_weights(tmp_path / "cut"), _weights(tmp_path / "full"))


def test_ctrl_c_on_seld_pretrain_is_one_line_exit_130_and_saves_last(sim, tmp_path):
    """The real command on the tiny simulated set: Ctrl-C mid-run gives one line, not a traceback."""
    from tests.train.test_slurm import TINY_TOKENIZER

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "seld.cli", "pretrain", "--config", "configs/quickstart/pretrain.yml",
           f"data.features_dir={sim.features}", f"train.out_dir={out}", "train.epochs=4", "train.batch_size=1",
           "train.progress=false", "train.tensorboard=false", *TINY_TOKENIZER]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(ENV, HF_HUB_OFFLINE="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # wait for the first epoch, then press "Ctrl-C"
        if line.startswith("epoch 1/4"):
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.startswith("seld pretrain:")]
    assert len(lines) == 1 and "run the same command again to resume" in lines[0], err
    assert "Traceback" not in err
    step = load_checkpoint(out / "checkpoints" / "last.pt")["progress"]["global_step"]
    assert f"is at step {step}" in lines[0] and 12 <= step < 48
