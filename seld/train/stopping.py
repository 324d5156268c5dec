"""Stopping a training run cleanly: preemption signals, Ctrl-C and a wall-clock limit.

One mechanism for every way a run ends early. A signal handler or the clock only *records* a
request; the engine acts on it after the current optimiser step, when weights, optimiser, RNG
and progress agree, so the ``last.pt`` it writes resumes bit-exactly:

* ``SIGUSR1`` / ``SIGTERM`` (preemption warning, ``#SBATCH --signal=USR1@120``, ``scancel
  --signal=USR1``, ``kill``): save ``last`` and raise :class:`TrainingPreempted`; ``seld``
  exits with :data:`EXIT_REQUEUE` (75), which the sbatch scripts turn into ``scontrol requeue``.
* ``SIGINT`` (Ctrl-C): save ``last`` if a step finished since the last save and raise
  :class:`TrainingInterrupted`; ``seld`` exits 130 with one line. A second Ctrl-C (at least a
  second later) stops at once without saving the step in flight.
* ``train.max_minutes``: save ``last`` and return from ``fit()`` normally.

This module does not import torch, so the CLI can use it cheaply.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from enum import IntEnum
from types import FrameType
from typing import Any, Optional

EXIT_REQUEUE = 75
"""Exit status of ``seld pretrain|finetune`` after a preemption signal saved ``last.pt``
(``EX_TEMPFAIL``: try again). The sbatch scripts requeue the job on it."""
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT, the shell convention)."""

REPEAT_SIGINT_SECONDS = 1.0
"""A second SIGINT at least this long after the first stops at once; closer repeats (a launcher
forwarding the terminal's Ctrl-C to its children) count as the same request."""


class StopReason(IntEnum):
    """Why a run stops early; when processes disagree the largest value wins."""

    NONE = 0
    TIME_LIMIT = 1
    PREEMPTED = 2
    INTERRUPTED = 3


class TrainingPreempted(Exception):
    """Raised by ``Trainer.fit`` after ``SIGUSR1``/``SIGTERM``: ``last.pt`` is saved, rerun to resume."""

    exit_code = EXIT_REQUEUE


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by ``Trainer.fit`` after Ctrl-C; the message says what was saved and how to resume."""

    exit_code = EXIT_INTERRUPTED


_SIGNAL_REASONS = {
    signal.SIGUSR1: StopReason.PREEMPTED,
    signal.SIGTERM: StopReason.PREEMPTED,
    signal.SIGINT: StopReason.INTERRUPTED,
}


class StopSignals:
    """Context manager: while active, SIGUSR1/SIGTERM/SIGINT record a stop request instead of killing.

    Handlers are installed only in the main thread of the process that entered the context
    (forked data-loader workers inherit them and ignore the signals, so a Ctrl-C sent to the
    whole process group does not kill them before the step finishes). The previous handlers come
    back on exit.
    """

    def __init__(self) -> None:
        self.reason = StopReason.NONE
        self.signal_name: Optional[str] = None
        self._pid = os.getpid()
        self._sigint_at: Optional[float] = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        self.reason = StopReason.NONE
        self.signal_name = None
        self._sigint_at = None
        self._pid = os.getpid()
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNAL_REASONS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:  # a forked worker: the main process decides
            return
        name = signal.Signals(signum).name
        now = time.monotonic()
        if signum == signal.SIGINT:
            if self._sigint_at is not None and now - self._sigint_at >= REPEAT_SIGINT_SECONDS:
                raise KeyboardInterrupt
            if self._sigint_at is None:
                self._sigint_at = now
                _say("\ninterrupt: finishing the current step, then saving last.pt (Ctrl-C again to quit at once)\n")
        elif self.reason < StopReason.PREEMPTED:
            _say(f"\n{name}: finishing the current step, then saving last.pt and exiting with {EXIT_REQUEUE}\n")
        reason = _SIGNAL_REASONS[signal.Signals(signum)]
        if reason > self.reason:
            self.reason = reason
            self.signal_name = name


def _say(text: str) -> None:
    """Write to stderr without Python's buffered streams (safe inside a signal handler)."""
    try:
        os.write(2, text.encode())
    except OSError:
        pass


class Deadline:
    """Wall-clock budget in minutes, counting ``already_spent`` seconds from earlier runs."""

    def __init__(self, max_minutes: Optional[float], already_spent: float = 0.0) -> None:
        self.max_minutes = max_minutes
        self.already_spent = already_spent
        self._start = time.monotonic()

    def elapsed(self) -> float:
        """Seconds spent in this run and the runs before it."""
        return self.already_spent + (time.monotonic() - self._start)

    def expired(self) -> bool:
        return self.max_minutes is not None and self.elapsed() >= 60.0 * self.max_minutes
