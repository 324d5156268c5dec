"""Two "nodes" on one machine: two torchrun launchers joined by a c10d rendezvous on 127.0.0.1."""
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _both(cmds: list[list[str]], env: dict[str, str]) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in cmds]
    out = []
    for p in procs:
        try:
            so, se = p.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        out.append(subprocess.CompletedProcess(p.args, p.returncode, so, se))
    return out


def _ddp_worker_in_process(out: Path, batch: int) -> None:
    """What ``ddp_worker.py OUT BATCH`` does, in this process (one process: no torchrun needed)."""
    from seld.train.engine import TrainConfig, Trainer
    from tests.train.toy import ToyDataset, ToyTask

    torch.manual_seed(0)
    task = ToyTask(dropout=0.0)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(task.state_dict(), out / "init.pt")
    cfg = TrainConfig(out_dir=str(out), epochs=1, batch_size=batch, lr=1e-2, num_workers=0, device="cpu",
                      progress=False, tensorboard=False, max_steps=2, resume="never")
    trainer = Trainer(task, ToyDataset(16), cfg)
    trainer.fit()
    trainer.close()


def test_two_launchers_nnodes_2_match_one_process_on_the_global_batch(tmp_path):
    script = ROOT / "tests" / "train" / "ddp_worker.py"
    single = tmp_path / "single"
    _ddp_worker_in_process(single, 8)
    port = _free_port()
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
                "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=twonodes"]
    runs = _both([launcher + [str(script), str(tmp_path / "multi"), "4"]] * 2, ENV)
    for r in runs:
        assert r.returncode == 0, r.stderr
    a = torch.load(single / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "multi" / "checkpoints" / "last.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a[k], torch.load(single / "init.pt", weights_only=True)[k]) for k in a)


def test_launch_stage_node_tasks_of_a_two_node_job_meet_at_the_first_host(tmp_path):
    """What srun starts on each node of a 2-node job: the script's torchrun command must rendezvous."""
    shim = tmp_path / "bin"
    shim.mkdir()
    scontrol = shim / "scontrol"  # `scontrol show hostnames` without a controller: first host = this machine
    scontrol.write_text("#!/bin/sh\necho 127.0.0.1\necho 127.0.0.2\n")
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    env = dict(ENV, PATH=f"{shim}:{ENV['PATH']}", PYTHON=sys.executable, SLURM_JOB_ID="4242", SLURM_NNODES="2",
               SLURM_JOB_NODELIST="node[1-2]", SLURM_SUBMIT_DIR=str(ROOT), SLURM_STEP_ID="0",
               MASTER_PORT=str(_free_port()), SLURM_GPUS_ON_NODE="1")
    cmd = ["bash", "scripts/launch_stage.sh", "--node-task", "pretrain", "configs/quickstart/pretrain.yml",
           "--print-config", "train.epochs=7"]
    runs = _both([cmd, cmd], env)
    for r in runs:
        assert r.returncode == 0, r.stderr
        assert "processes=1 (per node; nodes=2)" in r.stdout
        assert "epochs: 7" in r.stdout  # a worker of the 2-node group ran the command
