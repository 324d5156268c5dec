"""The output-folder lock (seld/locks.py): one holder, named; released however the holder ends;
lines left by killed holders taken over on this host or by the same SLURM job, refused from others."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from seld.locks import LOCK_FILE, FolderLock, FolderLockedError
from tests.scripts import child_pythonpath

_HOLD = """
import sys, time
from seld.locks import FolderLock
with FolderLock(sys.argv[1], "the holder"):
    print("locked", flush=True)
    time.sleep(120)
"""


def _holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=child_pythonpath()))
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_holder_is_refused_with_the_first_named_until_it_ends(tmp_path) -> None:
    holder = _holder(tmp_path / "out")
    try:
        with pytest.raises(FolderLockedError) as exc:
            FolderLock(tmp_path / "out", "me").acquire()
        assert f"pid {holder.pid} on host {socket.gethostname()}, started " in str(exc.value)
        assert "the holder" in str(exc.value)
    finally:
        holder.kill()  # killed: no chance to empty its line
        holder.wait()
    with FolderLock(tmp_path / "out", "me") as path:  # flock went with the process
        assert path == tmp_path / "out" / LOCK_FILE
        assert path.read_text().startswith(f"pid {os.getpid()} on host ")
    assert path.read_text() == ""  # released: emptied


def test_re_entrant_in_one_process_and_released_by_the_last(tmp_path) -> None:
    outer, inner = FolderLock(tmp_path, "a"), FolderLock(tmp_path, "b")
    outer.acquire()
    inner.acquire()
    inner.release()
    assert (tmp_path / LOCK_FILE).read_text() != ""  # still held by outer
    outer.release()
    assert (tmp_path / LOCK_FILE).read_text() == ""
    assert FolderLock(tmp_path / "missing", "c", create=False).acquire() is None
    assert not (tmp_path / "missing").exists()


def test_a_line_left_on_this_host_is_taken_over_with_a_line_saying_so(tmp_path, capsys) -> None:
    left = f"pid {_dead_pid()} on host {socket.gethostname()}, started 2026-01-01 10:00:00, training"
    (tmp_path / LOCK_FILE).write_text(left + "\n")
    with FolderLock(tmp_path, "seld pretrain"):
        pass
    err = capsys.readouterr().err
    assert f"seld pretrain: taking over {tmp_path}: its lock was left by {left}, which ended without releasing it" in err


def test_a_line_left_on_another_host_is_refused_unless_it_is_this_slurm_job(tmp_path, monkeypatch, capsys) -> None:
    left = "pid 4242 on host node-elsewhere, started 2026-01-01 10:00:00, training, SLURM job 77"
    (tmp_path / LOCK_FILE).write_text(left + "\n")
    monkeypatch.setenv("SLURM_JOB_ID", "78")
    with pytest.raises(FolderLockedError, match=f"names a run on another host .*delete {tmp_path / LOCK_FILE}"):
        FolderLock(tmp_path, "training").acquire()
    assert (tmp_path / LOCK_FILE).read_text() == left + "\n"  # left as it was
    monkeypatch.setenv("SLURM_JOB_ID", "77")  # the same job, requeued onto another node
    with FolderLock(tmp_path, "training") as path:
        assert path.read_text().endswith(", training, SLURM job 77\n")
    assert "taking over" in capsys.readouterr().err
