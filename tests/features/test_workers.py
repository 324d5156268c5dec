"""Worker processes: they exit when their parent is killed, results come back, and a worker that dies
stops the run with how it ended and the tasks lost (the extraction's own message: test_extract)."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from seld.features.workers import WorkerDiedError, in_worker_processes

_POOL_PARENT = """
import multiprocessing, os, time
from seld.features.workers import worker_init
if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(1, initializer=worker_init, initargs=(os.getpid(),))
    worker = pool.apply(os.getpid)
    pool.apply_async(time.sleep, (120,))
    print(worker, flush=True)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\tZ" not in next(line for line in f if line.startswith("State:"))
    except (FileNotFoundError, StopIteration):
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_worker_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(_POOL_PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 15
        while _alive(worker) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive(worker)
    finally:
        parent.kill()


def kill_self_on_2(x: int) -> int:
    """A task that kills its worker (as a crash in native code would) on 2, else squares."""
    if x == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


def _lost(how: str, lost: list[int]) -> str:
    return f"worker {how}; lost {sorted(lost)}"


def test_results_come_back_from_the_workers() -> None:
    assert sorted(in_worker_processes(kill_self_on_2, [1, 3, 4], 2, _lost)) == [1, 9, 16]


def test_a_dead_worker_stops_the_run_naming_the_signal_and_the_lost_task() -> None:
    # one worker: task 2 kills it, task 3 never runs; both are lost, in the caller's own words
    with pytest.raises(WorkerDiedError, match=r"^worker was killed by SIGKILL; lost \[2, 3\]$"):
        list(in_worker_processes(kill_self_on_2, [2, 3], 1, _lost))
