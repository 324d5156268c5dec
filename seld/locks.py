"""One writer per output folder: an exclusive lock on the folder that names its holder.

Every command that owns the folder it writes holds :class:`FolderLock` on it for the whole run:
``seld features`` its ``output_dir``, the training commands ``train.out_dir`` (rank 0 under DDP),
``seld infer`` its ``--out``. A second run into a held folder stops at once with
:class:`FolderLockedError` naming the holder.

The lock is ``flock`` on ``<folder>/.seld.lock``, which the system releases when its holder ends,
however it ends (also killed). The file holds one line naming the holder (pid, host, start time,
command, SLURM job); a holder that ends normally empties it. A line left by a holder that ended
without doing so (killed) is taken over, with a line on stderr saying so, when it was written on
this host (flock there is authoritative) or by the same SLURM job (a requeued job on another node);
a line from another host is refused, since a file system that does not share locks between hosts
(NFS mounted ``nolock``) cannot tell whether that run is alive: the message names the file to
delete once it has ended.
"""
from __future__ import annotations

import os
import re
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from seld.errors import SeldError

LOCK_FILE = ".seld.lock"

_HELD: dict[str, list[int]] = {}
"""Resolved lock path -> [fd, depth] of the locks this process holds (re-entrant in one process)."""


class FolderLockedError(SeldError):
    """Another run holds the lock on an output folder (the message names it)."""


def _holder_line(command: str) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    job = os.environ.get("SLURM_JOB_ID")
    return (f"pid {os.getpid()} on host {socket.gethostname()}, started {stamp}, {command}"
            + (f", SLURM job {job}" if job else "") + "\n")


def _field(line: str, pattern: str) -> str | None:
    found = re.search(pattern, line)
    return found.group(1) if found else None


class FolderLock:
    """Exclusive lock on ``folder`` for ``command`` (a ``with`` block, or :meth:`acquire` /
    :meth:`release`). A missing ``folder`` is created when ``create``, else nothing is locked
    (:meth:`acquire` returns None: there is nothing in it to protect)."""

    def __init__(self, folder: str | os.PathLike[str], command: str, create: bool = True) -> None:
        self.folder = Path(folder)
        self.command = command
        self.create = create
        self._key: str | None = None

    def acquire(self) -> Path | None:
        """Take the lock; returns the lock file, or None (see the class). Raises FolderLockedError."""
        import fcntl

        if self._key is not None:
            raise RuntimeError(f"{self.folder}: this FolderLock is already held")
        if not self.folder.is_dir() and not self.create:
            return None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SeldError(f"cannot create the output folder {self.folder} ({err})") from err
        path = self.folder / LOCK_FILE
        key = str(path.resolve())
        if key in _HELD:
            _HELD[key][1] += 1
            self._key = key
            return path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderLockedError(
                f"{self.folder} is in use by another run ({_read(path) or 'unknown process'}); wait for it to "
                "finish or stop it (the lock is released when that process ends)") from None
        except OSError as err:  # e.g. ENOLCK: a file system without flock
            os.close(fd)
            raise SeldError(f"cannot lock {path} ({err}); write to a folder on a file system with flock") from err
        try:
            self._take_over(path, _read(path))
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_line(self.command).encode(), 0)
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        _HELD[key] = [fd, 1]
        self._key = key
        return path

    def _take_over(self, path: Path, left: str) -> None:
        """Report a line left by a holder that ended without releasing; refuse one from another host."""
        if not left:
            return
        host, job = _field(left, r"on host (\S+?),"), _field(left, r"SLURM job (\S+)")
        same_job = job is not None and job == os.environ.get("SLURM_JOB_ID")
        if host not in (None, socket.gethostname()) and not same_job:
            raise FolderLockedError(
                f"{self.folder}: its lock file {path} names a run on another host ({left}); this host cannot tell "
                f"whether it is still running: if it has ended, delete {path} and start again")
        print(f"{self.command}: taking over {self.folder}: its lock was left by {left}, which ended without "
              "releasing it", file=sys.stderr, flush=True)

    def release(self) -> None:
        """Give the lock back (emptying the holder line); nothing when it is not held."""
        import fcntl

        key, self._key = self._key, None
        if key is None or key not in _HELD:
            return
        _HELD[key][1] -= 1
        if _HELD[key][1] > 0:
            return
        fd = _HELD.pop(key)[0]
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass  # a full or read-only disk: the next holder reports the line it finds
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> Path | None:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
