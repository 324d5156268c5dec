"""The model contract every stage implements: a :class:`SeldTask` turns a batch into a loss and a
``(batch, 50, 117)`` prediction and says which parameters get which learning rate; the engine
(:mod:`seld.train.engine`) owns everything else. Inference and the commands read a trained model
through the same contract (:mod:`seld.tasks.loading`)."""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from seld.data.dataset import StreamConfig, source_view_batches
from seld.errors import ConfigError
from seld.losses import adpit_loss
from seld.models.tokenizer import TokenizerConfig


@dataclass
class StepOutput:
    """What a task returns for one batch."""

    loss: torch.Tensor
    """Scalar to minimise."""
    output: torch.Tensor
    """Activated multi-ACCDOA prediction ``(batch, 50, 117)``."""
    logs: dict[str, float] = field(default_factory=dict)
    """Loss terms to log (e.g. ``adpit``, ``embed``)."""


class SeldTask(nn.Module):
    """Interface a stage implements; ``step`` must not depend on anything but the batch and RNG."""

    def step(self, batch: dict[str, Any]) -> StepOutput:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, batch: dict[str, Any]) -> StepOutput:
        """DDP calls ``forward``; it is the training step."""
        return self.step(batch)

    def evaluation_step(
        self, batch: dict[str, Any], autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
    ) -> StepOutput:
        """The step validation and testing score: with several source views of each clip
        (``streams.src_eval: mean_lr``) the mean of their predictions and of their losses. Each view's
        step runs inside ``autocast()`` (the engine's precision); the mean is taken outside it."""
        with autocast():
            outs = [self.step(view) for view in source_view_batches(batch)]
        if len(outs) == 1:
            return outs[0]
        return StepOutput(
            loss=torch.stack([o.loss for o in outs]).mean(), output=torch.stack([o.output for o in outs]).mean(0), logs={})

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimiser parameter groups; the default trains every parameter that requires grad at ``lr``."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr, "name": "all"}]

    def checkpoint_extras(self) -> dict[str, Any]:
        """Plain data saved with the model (its config, class name) so it loads without the YAML."""
        return {}


class AdpitTask(SeldTask):
    """A task trained by ADPIT alone on its own ``predict`` output (pre-training, the baseline), whose
    checkpoint record is the ``_extras`` its builder set."""

    _extras: dict[str, Any]

    def step(self, batch: dict[str, Any]) -> StepOutput:
        out = self.predict(batch["src"], batch["doa"], batch["dist"])
        loss = adpit_loss(out.float(), batch["target"])
        return StepOutput(loss=loss, output=out, logs={"adpit": float(loss.detach())})

    def checkpoint_extras(self) -> dict[str, Any]:
        return self._extras


def apply_stream_channels(tok: TokenizerConfig, streams: StreamConfig) -> TokenizerConfig:
    """A copy of ``tok`` whose encoders take as many input channels as ``streams`` names.

    The stream lists in ``data.streams`` are the one place that says which channels feed which
    encoder; the encoders' ``in_channels`` follow them.
    """
    tok = copy.deepcopy(tok)
    if tok.source_encoder == "rcc":
        tok.rcc.in_channels = len(streams.src)
    elif len(streams.src) != 1:
        raise ConfigError(f"data.streams.src names {len(streams.src)} channels; the BEATs source encoder takes exactly one")
    tok.doa.in_channels = len(streams.doa)
    tok.dist.in_channels = len(streams.dist)
    return tok
