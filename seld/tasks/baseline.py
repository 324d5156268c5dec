"""The DCASE2025 baseline CRNN (:mod:`seld.models.seldnet`) under ADPIT, trained by the same engine for comparisons."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from seld.config import from_dict, to_dict
from seld.metrics import MetricConfig
from seld.models.seldnet import SeldNet, SeldnetConfig
from seld.tasks import StageParts
from seld.tasks.base import AdpitTask
from seld.train.config import TrainConfig
from seld.train.data import DataConfig

if TYPE_CHECKING:
    from seld.train.engine import Trainer


@dataclass
class BaselineModelConfig:
    """The DCASE2025 baseline CRNN fed the channels of some streams stacked (``seld.models.seldnet``)."""

    inputs: list[str] = field(default_factory=lambda: ["doa"])
    """Streams of ``data.streams`` stacked as the CRNN input, in this order (default: the DOA stream,
    log-mel L/R + IVy + ILD: the 4-channel input of the issue's 735,413-parameter model)."""
    seldnet: SeldnetConfig = field(default_factory=SeldnetConfig)
    """Layer sizes; ``in_channels`` is set from the stream lists."""

    def __post_init__(self) -> None:
        bad = [s for s in self.inputs if s not in ("src", "doa", "dist")]
        if not self.inputs or bad:
            raise ValueError(f"model.inputs must name streams among src, doa, dist; got {self.inputs}")


@dataclass
class BaselineConfig:
    """``seld baseline``: the DCASE2025 baseline model trained by the same engine (ADPIT, metric, checkpoints)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: BaselineModelConfig = field(default_factory=BaselineModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=1e-3, batch_size=16))
    metrics: MetricConfig = field(default_factory=MetricConfig)


class BaselineTask(AdpitTask):
    """SeldNet on the stacked input streams; loss = ADPIT."""

    def __init__(self, model: SeldNet, inputs: list[str], extras: dict[str, Any]):
        super().__init__()
        self.model = model
        self.inputs = list(inputs)
        self._extras = extras

    def predict(self, src: torch.Tensor, doa: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """Activated multi-ACCDOA output ``(batch, frames, 117)``."""
        streams = {"src": src, "doa": doa, "dist": dist}
        return self.model(torch.cat([streams[s] for s in self.inputs], dim=1))


def build_baseline_task(cfg: BaselineConfig, record: dict[str, Any] | None = None) -> BaselineTask:
    """The baseline task; the CRNN's input channels follow ``data.streams`` and ``model.inputs``."""
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.seldnet.in_channels = sum(len(getattr(cfg.data.streams, s)) for s in model_cfg.inputs)
    extras = {
        "stage": "baseline",
        "model": to_dict(model_cfg),
        "streams": to_dict(cfg.data.streams),
        **(record or {}),
    }
    return BaselineTask(SeldNet(model_cfg.seldnet), model_cfg.inputs, extras)


def run_baseline(cfg: BaselineConfig) -> Trainer:
    """Train the baseline CRNN; files and channels are checked before the first step."""
    from seld.tasks.runner import run_stage

    return run_stage(cfg, build_baseline_task)


def rebuild_baseline_task(ckpt: dict[str, Any], extras: dict[str, Any], streams: Any, src: str) -> BaselineTask:
    """The CRNN of a baseline checkpoint (its stored ``model`` config holds the input channels)."""
    base_cfg = from_dict(BaselineModelConfig, extras["model"], source=f"{src} (model config)")
    return BaselineTask(SeldNet(base_cfg.seldnet), base_cfg.inputs, extras)


PARTS = StageParts(schema=BaselineConfig, build=build_baseline_task, run=run_baseline, rebuild=rebuild_baseline_task)
