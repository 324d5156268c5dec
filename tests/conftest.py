"""Shared test set-up: offline Hugging Face, deterministic torch on CPU."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Give every test the thread count the session started with: library calls that set it for
    their process (``Trainer`` with ``train.num_threads``, ``seld infer --num-threads``) would
    otherwise leak it into the tests after them, and a test's numbers would depend on the order."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
