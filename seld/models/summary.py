"""Parameter counts of a model."""
from __future__ import annotations

from torch import nn


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(total, trainable) number of parameter values; shared parameters count once."""
    total = trainable = 0
    for p in module.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return total, trainable
