"""The sbatch scripts under a real single-machine SLURM (scripts/ci/slurm_local.sh).

Marked ``slurm``: ``make test`` leaves them out; ``.ci/run`` runs them with ``pytest -m slurm``.
They skip, saying why, where SLURM cannot be set up (not root, no apt). The jobs train the
quickstart configs shrunk by overrides on the tiny simulated set of ``conftest.py``.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seld.checkpoint import load_checkpoint
from tests.scripts import child_pythonpath
from tests.train.conftest import SimSet

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
SLURM_LOCAL = ROOT / "scripts" / "ci" / "slurm_local.sh"
# the local node has no GPUs, 2 CPUs and little memory: these replace the scripts' #SBATCH requests
LOCAL_RESOURCES = ["--gres=none", "--cpus-per-task=1", "--mem=2G", "--time=15"]
TINY_TOKENIZER = [
    "model.tokenizer.d_model=16",
    *[f"model.tokenizer.{enc}.channels=[4,8,16,16]" for enc in ("rcc", "doa", "dist")],
    *[f"model.tokenizer.{enc}.conformer.num_heads=2" for enc in ("rcc", "doa", "dist", "fusion")],
]
TINY_TEXT_ENCODER = ("model.text_encoder.model_config={vocab_size: 30522, hidden_size: 384, intermediate_size: 64, "
                     "num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 128}")


@pytest.fixture(scope="module")
def slurm() -> dict[str, str]:
    """Environment for SLURM commands; starts the local SLURM (and stops it after) unless it runs already."""
    env = dict(os.environ)
    if env.get("SLURM_LOCAL_DIR"):
        env["SLURM_CONF"] = str(Path(env["SLURM_LOCAL_DIR"]) / "slurm.conf")
    running = subprocess.run(["bash", str(SLURM_LOCAL), "status"], env=env, capture_output=True).returncode == 0
    if not running:
        t0 = time.monotonic()
        res = subprocess.run(["bash", str(SLURM_LOCAL), "start"], env=env, capture_output=True, text=True, timeout=600)
        if res.returncode == 3:
            pytest.skip(res.stderr.strip().splitlines()[-1])
        assert res.returncode == 0, res.stderr
        env["SLURM_CONF"] = re.search(r"export SLURM_CONF=(\S+)", res.stdout).group(1)  # a private mktemp folder
        print(f"local SLURM started in {time.monotonic() - t0:.1f} s")
    yield env
    if not running:
        subprocess.run(["bash", str(SLURM_LOCAL), "stop"], env=env, capture_output=True, timeout=120)


def _job_env(slurm: dict[str, str]) -> dict[str, str]:
    # sbatch exports this environment to the job: our interpreter and tree, one thread, offline
    return dict(slurm, PYTHON=sys.executable, PYTHONPATH=child_pythonpath(), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")


def _sbatch_wait(slurm: dict[str, str], script: str, log: Path, args: list[str]) -> subprocess.CompletedProcess:
    cmd = ["sbatch", "--parsable", "--wait", *LOCAL_RESOURCES, f"--output={log}", script, *args]
    return subprocess.run(cmd, cwd=ROOT, env=_job_env(slurm), capture_output=True, text=True, timeout=900)


def _job(slurm: dict[str, str], job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", job_id], env=slurm, capture_output=True, text=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def _pretrain_args(sim: SimSet, out: Path, *extra: str) -> list[str]:
    return ["configs/quickstart/pretrain.yml", f"data.features_dir={sim.features}", f"train.out_dir={out}",
            "train.progress=false", "train.tensorboard=false", "train.num_workers=0", *TINY_TOKENIZER, *extra]


def test_sbatch_pretrain_and_finetune_complete_with_checkpoints(slurm, sim, tmp_path):
    from seld.models.text_encoders import minilm_path

    pre = _sbatch_wait(slurm, "pretrain_sbatch.sh", tmp_path / "pre.log", _pretrain_args(sim, tmp_path / "pre", "train.epochs=1"))
    log = (tmp_path / "pre.log").read_text()
    assert pre.returncode == 0, pre.stderr + log
    job = _job(slurm, pre.stdout.strip().split(";")[0])
    assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0", (job, log)
    assert "on 1 node(s)" in log and "epoch 1/1" in log
    ckpt = tmp_path / "pre" / "checkpoints" / "last.pt"
    assert load_checkpoint(ckpt)["progress"]["epoch"] == 1

    ft = _sbatch_wait(slurm, "finetune_sbatch.sh", tmp_path / "ft.log", [
        "configs/quickstart/finetune.yml", f"data.features_dir={sim.features}", f"train.out_dir={tmp_path / 'ft'}",
        f"model.pretrained={ckpt}", f"model.text_encoder.tokenizer={minilm_path()}", TINY_TEXT_ENCODER,
        "train.epochs=1", "train.progress=false", "train.tensorboard=false",
    ])
    log = (tmp_path / "ft.log").read_text()
    assert ft.returncode == 0, ft.stderr + log
    job = _job(slurm, ft.stdout.strip().split(";")[0])
    assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0", (job, log)
    assert load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.pt")["progress"]["epoch"] == 1


def test_sbatch_train_script_runs_the_baseline_stage(slurm, sim, tmp_path):
    run = _sbatch_wait(slurm, "train_sbatch.sh", tmp_path / "base.log", [
        "baseline", "configs/baseline_seldnet.yml", f"data.features_dir={sim.features}",
        "data.train_splits=[dev-train-synth]", "data.val_splits=[]", f"train.out_dir={tmp_path / 'base'}",
        "train.epochs=1", "train.batch_size=4", "train.progress=false", "train.tensorboard=false",
    ])
    log = (tmp_path / "base.log").read_text()
    assert run.returncode == 0, run.stderr + log
    job = _job(slurm, run.stdout.strip().split(";")[0])
    assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0", (job, log)
    assert "textseld baseline: job" in log and "epoch 1/1" in log
    ckpt = load_checkpoint(tmp_path / "base" / "checkpoints" / "last.pt")
    assert ckpt["task"]["stage"] == "baseline" and ckpt["progress"]["epoch"] == 1


def test_scancel_usr1_requeues_and_the_job_resumes_bit_exactly(slurm, sim, tmp_path):
    # 12 clips, batch 1: 12 steps per epoch, so the signal almost surely lands mid-epoch
    extra = ["train.epochs=3", "train.batch_size=1"]
    ref = subprocess.run(["bash", "pretrain_sbatch.sh", *_pretrain_args(sim, tmp_path / "ref", *extra)],
                         cwd=ROOT, env={k: v for k, v in _job_env(slurm).items() if not k.startswith("SLURM_JOB")},
                         capture_output=True, text=True, timeout=900)
    assert ref.returncode == 0, ref.stderr

    log = tmp_path / "job.log"
    # no --wait here: sbatch --wait may return when it sees the job between its runs
    sub = subprocess.run(["sbatch", "--parsable", *LOCAL_RESOURCES, f"--output={log}", "pretrain_sbatch.sh",
                          *_pretrain_args(sim, tmp_path / "run", *extra)],
                         cwd=ROOT, env=_job_env(slurm), capture_output=True, text=True, timeout=60)
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip().split(";")[0]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and _job(slurm, job_id).get("JobState") in ("PENDING", "RUNNING"):
        if log.is_file() and "epoch 1/3" in log.read_text():
            break
        time.sleep(0.2)
    assert "epoch 1/3" in log.read_text(), (_job(slurm, job_id), log.read_text())
    subprocess.run(["scancel", "--signal=USR1", job_id], env=slurm, check=True)
    released, pending_since = False, 0.0
    while time.monotonic() < deadline:
        job = _job(slurm, job_id)
        if job.get("Restarts") == "1" and job.get("JobState") not in ("PENDING", "RUNNING", "COMPLETING", "REQUEUED"):
            break  # the second run ended
        if job.get("Restarts") not in (None, "0", "1") or job.get("JobState") in ("FAILED", "CANCELLED", "TIMEOUT"):
            break
        if not released and job.get("JobState") == "PENDING" and job.get("Restarts") == "1":
            # a requeued job waits for its begin time (minutes); let it go soon. Not in the second of
            # the requeue: slurmd compares credential times in whole seconds, so a run launched then
            # is killed as "Job credential revoked" (seen here when released 0.08 s after the requeue)
            pending_since = pending_since or time.monotonic()
            if time.monotonic() - pending_since >= 2.0:
                subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], env=slurm, check=True)
                released = True
        time.sleep(0.2)
    text = log.read_text()
    job = _job(slurm, job_id)
    assert job["JobState"] == "COMPLETED" and job["Restarts"] == "1", (job, text)
    stop = re.search(r"stopped by SIGUSR1 at epoch (\d)/3, step (\d+)/12 \(global step (\d+)\)", text)
    assert stop and 12 <= int(stop.group(3)) < 36, text
    assert f"requeueing job {job_id}" in text and "restart 1" in text
    assert f"resumed from {tmp_path / 'run' / 'checkpoints' / 'last.pt'}: epoch {int(stop.group(1)) - 1}" in text
    print(f"SIGUSR1 landed at epoch {stop.group(1)}, step {stop.group(2)}/12")
    a = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
