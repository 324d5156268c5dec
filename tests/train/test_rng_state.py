"""RNG states in checkpoints: a round trip restores every generator; states that come back from a
checkpoint loaded onto a GPU, or written on a machine with more GPUs, still restore."""
from __future__ import annotations

import random

import numpy as np
import torch

from seld import checkpoint as ck


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_round_trip_through_a_saved_checkpoint_restores_every_generator(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = ck.capture_rng_state()
    expected = _draws()
    ck.save_checkpoint(tmp_path / "c.pt", {"model": {}, "rng": state})
    _draws()  # move every generator on
    ck.restore_rng_state(ck.load_checkpoint(tmp_path / "c.pt")["rng"])
    assert _draws() == expected


def test_cuda_states_of_a_machine_with_more_gpus_restore_the_gpus_there_are(monkeypatch):
    # a checkpoint written with 4 GPUs visible, resumed where 1 is: the first state goes to GPU 0
    state = ck.capture_rng_state()
    state["cuda"] = [torch.full((16,), i, dtype=torch.uint8) for i in range(4)]
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: calls.append((int(s[0]), device)))
    ck.restore_rng_state(state)
    assert calls == [(0, 0)]
