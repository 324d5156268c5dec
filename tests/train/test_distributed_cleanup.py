"""``seld.train.distributed.cleanup``: a stop signal arriving while the process group is being destroyed
waits until it is gone (a handler raising mid-teardown used to leave gloo to be torn down at exit)."""
from __future__ import annotations

import signal

import pytest

from seld.train import distributed
from seld.train.distributed import DistInfo, cleanup


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_a_signal_during_the_teardown_is_delivered_after_it(monkeypatch, signum):
    events: list[str] = []

    class Stop(Exception):
        pass

    def handler(num, frame):
        events.append("handler")
        raise Stop

    def destroy():
        signal.raise_signal(signum)  # e.g. torchrun's SIGTERM once another rank has exited
        events.append("destroyed")

    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "destroy_process_group", destroy)
    previous = signal.signal(signum, handler)
    try:
        with pytest.raises(Stop):
            cleanup(DistInfo(rank=1, local_rank=1, world_size=2))
    finally:
        signal.signal(signum, previous)
    assert events == ["destroyed", "handler"]
    assert signum not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the mask is restored


def test_without_a_process_group_nothing_is_destroyed(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: calls.append(1))
    cleanup(DistInfo())
    assert calls == []
