"""Two "nodes" on one machine: two torchrun launchers joined by a c10d rendezvous on 127.0.0.1."""
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import torch

from tests.scripts import child_pythonpath
from tests.train.ddp_worker import train_toy

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=child_pythonpath(), OMP_NUM_THREADS="1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _both(cmds: list[list[str]], env: dict[str, str], timeout: float = 300) -> list[subprocess.CompletedProcess]:
    """Run the launchers side by side, each in its own process group. A launcher that hangs fails the
    test with what both printed, and no torchrun or worker is left behind (killing the shell alone
    would orphan the torchrun it started)."""
    procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True) for c in cmds]
    out = []
    try:
        for p in procs:
            so, se = p.communicate(timeout=timeout)
            out.append(subprocess.CompletedProcess(p.args, p.returncode, so, se))
    except subprocess.TimeoutExpired:
        for q in procs:
            _kill_group(q)
        logs = [f"--- launcher {i} (rc {q.returncode}) ---\n{q.communicate()[1][-4000:]}" for i, q in enumerate(procs)]
        raise AssertionError(f"a launcher ran past {timeout} s:\n" + "\n".join(logs)) from None
    finally:
        for q in procs:
            _kill_group(q)
    return out


def _kill_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_two_launchers_nnodes_2_match_one_process_on_the_global_batch(tmp_path):
    script = ROOT / "tests" / "train" / "ddp_worker.py"
    single = tmp_path / "single"
    train_toy(single, 8)  # one process, the same global batch
    # The rendezvous store lives in this process, not in one of the launchers: a launcher that hosts
    # it exits when its own worker ends, and the other launcher's next keep-alive then fails (a race
    # that a loaded machine hits). Both launchers join as clients (is_host=false).
    store = torch.distributed.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
                "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{store.port}", "--rdzv_id=twonodes",
                "--rdzv_conf=is_host=false"]
    runs = _both([launcher + [str(script), str(tmp_path / "multi"), "4"]] * 2, ENV)
    del store
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
    # `scontrol show hostnames` without a controller: first host = this machine. It pauses before the
    # second host, as a long node list would: a launcher that reads only the first line must not die of
    # SIGPIPE (it did with `| head -n 1` under pipefail: rc 141, and the other node waited forever).
    scontrol = shim / "scontrol"
    scontrol.write_text("#!/bin/sh\necho 127.0.0.1\nsleep 0.3\necho 127.0.0.2\n")
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
