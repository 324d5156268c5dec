"""Model tests run single-threaded: tiny tensors gain nothing from threads, and on a busy 2-core box
thread contention made them 20x slower. The previous setting is restored after each test.
(test_text_encoders.py, owned separately, is left as it is.)"""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread(request):
    if request.node.path.name == "test_text_encoders.py":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
