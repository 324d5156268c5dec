"""A stage that exists only in the tests: the toy task of ``tests.train.toy`` trained by the real
engine on toy clips. One module like this and one entry in :data:`seld.tasks.STAGES` make a stage."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seld.tasks import StageParts
from seld.train.config import TrainConfig
from seld.train.data import DataConfig
from seld.train.engine import Trainer
from tests.train.toy import ToyDataset, ToyTask


@dataclass
class ToyConfig:
    """The toy stage's YAML: ``data`` (unread: the clips are the toy dataset's) and ``train``."""

    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class ToyStageTask(ToyTask):
    """The toy task, recording its stage in its checkpoints as every stage's task does."""

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"stage": "toy", "streams": {}}


def build(cfg: ToyConfig, record: dict[str, Any] | None = None) -> ToyStageTask:
    return ToyStageTask()


def run(cfg: ToyConfig) -> Trainer:
    trainer = Trainer(build(cfg), ToyDataset(), cfg.train, resolved_config=cfg)
    try:
        trainer.fit()
    finally:
        trainer.close()
    return trainer


def rebuild(ckpt: dict[str, Any], extras: dict[str, Any], streams: Any, src: str) -> ToyStageTask:
    return ToyStageTask()


PARTS = StageParts(schema=ToyConfig, build=build, run=run, rebuild=rebuild)
