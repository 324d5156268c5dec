"""Pre-training (spec section 5): the tokenizer and the pre-training head under ADPIT."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from seld.config import from_dict, to_dict
from seld.metrics import MetricConfig
from seld.models.pretrain import ModelConfig, PretrainModel
from seld.tasks import StageParts
from seld.tasks.base import AdpitTask, apply_stream_channels
from seld.train.config import TrainConfig
from seld.train.data import DataConfig

if TYPE_CHECKING:
    from seld.train.engine import Trainer


@dataclass
class PretrainConfig:
    """``seld pretrain`` / ``pretraining/config.yml``."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    metrics: MetricConfig = field(default_factory=MetricConfig)


class PretrainTask(AdpitTask):
    """Tokenizer + pre-training head; loss = ADPIT."""

    def __init__(self, model: PretrainModel, extras: dict[str, Any]):
        super().__init__()
        self.model = model
        self._extras = extras

    def predict(self, src: torch.Tensor, doa: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """Activated multi-ACCDOA output ``(batch, frames, 117)``."""
        return self.model(src, doa, dist)


def build_pretrain_task(cfg: PretrainConfig, record: dict[str, Any] | None = None) -> PretrainTask:
    """The pre-training task (model built from config; BEATs weights read when configured)."""
    model_cfg = ModelConfig(tokenizer=apply_stream_channels(cfg.model.tokenizer, cfg.data.streams))
    model = PretrainModel.from_config(model_cfg)
    extras = {
        "stage": "pretrain",
        "model": to_dict(model_cfg),
        "streams": to_dict(cfg.data.streams),
        **(record or {}),
    }
    return PretrainTask(model, extras)


def run_pretraining(cfg: PretrainConfig) -> Trainer:
    """Train the tokenizer; everything is checked (files, channels, checkpoints) before the first step."""
    from seld.tasks.runner import run_stage

    return run_stage(cfg, build_pretrain_task)


def rebuild_pretrain_task(ckpt: dict[str, Any], extras: dict[str, Any], streams: Any, src: str) -> PretrainTask:
    """The architecture of a pre-training checkpoint (no BEATs weights read: the checkpoint holds them)."""
    model_cfg = from_dict(ModelConfig, extras["model"], source=f"{src} (model config)")
    return PretrainTask(PretrainModel.from_config(model_cfg, load_pretrained=False), extras)


PARTS = StageParts(schema=PretrainConfig, build=build_pretrain_task, run=run_pretraining, rebuild=rebuild_pretrain_task)
