"""Tasks in worker processes that die with their parent and whose own death stops the run, saying how.

A plain process pool does neither: its workers keep computing (and writing files) after the parent
is killed, and a pool that replaces a dead worker loses that worker's tasks and waits for them
forever, without a message. Here each worker is a "spawn" process (safe with torch and BLAS thread
pools) running one thread (the workers are the parallelism) and watching its parent; a worker that
dies stops the run with :class:`WorkerDiedError`, naming the signal or exit status and, through the
caller's message, the tasks that were lost. The feature extraction (:mod:`seld.features.extract`)
runs its clip batches this way.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from typing import Callable, Iterator, TypeVar

from seld.errors import SeldError

PARENT_CHECK_S = 0.5
"""How often a worker process checks that its parent is still alive (seconds)."""

Task = TypeVar("Task")
Result = TypeVar("Result")


class WorkerDiedError(SeldError):
    """A worker process ended without a result (killed, or crashed in native code)."""


def exit_when_parent_dies(parent_pid: int, interval_s: float = PARENT_CHECK_S) -> threading.Thread:
    """Start a daemon thread that ends this process as soon as ``parent_pid`` is no longer its parent.

    A killed parent (even by SIGKILL) would otherwise leave the workers computing and writing
    files; when the parent dies the worker is re-parented, so ``os.getppid()`` changes.
    """

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(interval_s)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def worker_init(parent_pid: int | None = None) -> None:
    """One thread per worker process (the workers are the parallelism); exit with the parent."""
    import torch

    if parent_pid is not None:
        exit_when_parent_dies(parent_pid)
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
    except ImportError:  # pragma: no cover
        pass


def in_worker_processes(
    task_fn: Callable[[Task], Result],
    tasks: list[Task],
    workers: int,
    died_message: Callable[[str, list[Task]], str],
) -> Iterator[Result]:
    """``task_fn(task)`` of every task, computed in ``workers`` "spawn" processes, as each finishes.

    ``task_fn`` must be importable by name (a module-level function). A worker that dies (a
    signal, a crash in native code) raises :class:`WorkerDiedError` with the text
    ``died_message(how, lost)``: ``how`` says how it ended (:func:`how_workers_ended`), ``lost`` are
    the tasks whose results will not come (the dead worker's and those not finished). The other
    workers are stopped; the results yielded so far stand.
    """
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=worker_init,
                               initargs=(os.getpid(),))
    processes = getattr(pool, "_processes", None)  # how a dead worker ended (CPython keeps them here)
    pending = {pool.submit(task_fn, task): task for task in tasks}
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    finished = [f for f in pending if f.done() and not f.cancelled() and f.exception() is None]
                    lost = [task, *(t for f, t in pending.items() if f not in finished)]
                    raise WorkerDiedError(died_message(how_workers_ended(processes), lost)) from None
                yield result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if pending:  # stopped early (a dead worker, Ctrl-C): do not wait for the tasks still running
            for process in list((processes or {}).values()):
                process.terminate()


def how_workers_ended(processes: dict | None) -> str:
    """'was killed by SIGBUS' (or 'exited with status 3'), from the pool's worker processes."""
    import signal

    codes: list[int] = []
    for _ in range(40):  # the pool reaps its workers in its own thread, just after it reports the break
        codes = [p.exitcode for p in list((processes or {}).values()) if p.exitcode not in (None, 0)]
        if codes:
            break
        time.sleep(0.05)
    # the pool terminates the surviving workers (SIGTERM) once one has died: name another cause first
    codes.sort(key=lambda c: c == -signal.SIGTERM)
    if not codes:
        return "ended without a result"
    code = codes[0]
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def spawn_cannot_import_main() -> str | None:
    """Why "spawn" workers could not start from this process, or None when they can.

    A spawned worker re-runs the parent's ``__main__`` from its file. A script read from stdin
    (``python - < script.py``) names the file ``<stdin>``, which does not exist: every worker dies
    while starting, the pool starts new ones forever and the parent waits forever.
    """
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file is not None and not os.path.isfile(main_file):
        return f"the main script {main_file!r} is not a file that worker processes can import"
    return None
