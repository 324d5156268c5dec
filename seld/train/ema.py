"""An exponential moving average of a model's weights (``train.ema_decay``): updated after every
optimiser step, swapped in for validation and the best checkpoints, carried in ``last.pt``."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

Pairs = tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]
"""(averaged tensors, their live tensors, (average, live) integer counters copied as they are)."""


class WeightAverage:
    """The average of ``module``'s state_dict, keyed like it (:attr:`weights`).

    One step at optimiser step n (0-based) moves it towards the weights with decay
    ``min(decay, (1 + n) / (10 + n))``."""

    def __init__(self, module: nn.Module, optimizer: torch.optim.Optimizer, decay: float):
        self.decay = decay
        self.weights: dict[str, torch.Tensor] = {k: v.detach().clone() for k, v in module.state_dict().items()}
        """The average, keyed like the module's state_dict."""
        self.pairs = moving_pairs(module, optimizer, self.weights)

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the average towards the weights after optimiser step ``step`` (0-based)."""
        decay = min(self.decay, (1 + step) / (10 + step))
        averaged, live, counters = self.pairs
        if averaged:
            torch._foreach_lerp_(averaged, live, 1.0 - decay)
        for e, v in counters:  # BatchNorm's num_batches_tracked follows the weights
            e.copy_(v)

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Copy ``state`` (a checkpoint's ``ema``, or its weights) into the average in place."""
        for k, v in state.items():
            self.weights[k].copy_(v)

    @contextlib.contextmanager
    def swapped_into(self, module: nn.Module) -> Iterator[None]:
        """Inside the block ``module`` holds the average; its own weights come back afterwards."""
        raw = {k: v.detach().clone() for k, v in module.state_dict().items()}
        module.load_state_dict(self.weights)
        try:
            yield
        finally:
            module.load_state_dict(raw)


def moving_pairs(module: nn.Module, optimizer: torch.optim.Optimizer, average: dict[str, torch.Tensor]) -> Pairs:
    """The (average, live) tensors one EMA step touches, found once: every floating buffer and
    every parameter the optimiser holds. A parameter outside the optimiser (a frozen text
    encoder: 22.7 M of MiniLM's weights, 96 % of a fine-tuning task) never moves, and its
    average, a copy of it, would stay bit-for-bit the same under ``lerp``; skipping it saves
    reading and writing those weights twice every step. The live tensors are the state_dict's,
    which share storage with the modules' own (loading a checkpoint copies into them)."""
    optimised = {id(p) for g in optimizer.param_groups for p in g["params"]}
    params = {name: p for name, p in module.named_parameters(remove_duplicate=False)}
    averaged, live, counters = [], [], []
    for k, v in module.state_dict(keep_vars=True).items():
        v = v.detach()
        if not v.is_floating_point():
            counters.append((average[k], v))
        elif k not in params or id(params[k]) in optimised:
            averaged.append(average[k])
            live.append(v)
    return averaged, live, counters
