"""Training data of a stage: merged feature files of the configured splits, and validation scoring."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from torch.utils.data import ConcatDataset, Dataset

from seld.data.augment import AugmentConfig
from seld.data.dataset import SeldDataset, StreamConfig
from seld.data.targets import target_to_events
from seld.errors import ConfigError
from seld.metrics import MetricConfig, score_outputs


@dataclass
class DataConfig:
    """Where a stage reads features (written by ``seld features``) and which splits it uses."""

    features_dir: str = "data/features"
    """Folder holding ``<split>.h5`` merged files and ``normalization.json``."""
    train_splits: list[str] = field(default_factory=lambda: ["dev-train-sony", "dev-train-tau"])
    val_splits: list[str] = field(default_factory=lambda: ["dev-test-sony", "dev-test-tau"])
    normalization: Optional[str] = None
    """Normalisation statistics; None: ``<features_dir>/normalization.json``."""
    streams: StreamConfig = field(default_factory=StreamConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Training augmentation (left/right swap, FilterAugment, SpecAugment masks); off by default and
    never applied to validation."""

    @property
    def normalization_path(self) -> Path:
        return Path(self.normalization) if self.normalization else Path(self.features_dir) / "normalization.json"

    def split_file(self, split: str) -> Path:
        return Path(self.features_dir) / f"{split}.h5"

    def check_files(self) -> None:
        """Raise ConfigError naming every missing feature file, before any training starts."""
        missing = [self.split_file(s) for s in self.train_splits + self.val_splits if not self.split_file(s).is_file()]
        if not self.normalization_path.is_file():
            missing.append(self.normalization_path)
        if missing:
            raise ConfigError(
                "missing feature file(s): " + ", ".join(map(str, missing)) + "; run `seld features --config ...` first"
            )


def build_dataset(cfg: DataConfig, splits: list[str], train: bool, seed: int) -> Dataset:
    """One dataset over the merged files of ``splits`` (a ConcatDataset when several)."""
    if not splits:
        raise ConfigError("data: no splits given")
    parts = [
        SeldDataset(cfg.split_file(s), cfg.normalization_path, cfg.streams, train=train, seed=seed, augment=cfg.augment)
        for s in splits
    ]
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def make_validator(metrics: MetricConfig):
    """A validator for :class:`~seld.train.engine.Trainer`: DCASE2025 metrics of activated outputs."""

    def validate(preds: dict[str, np.ndarray], targets: dict[str, np.ndarray]) -> dict[str, float]:
        refs = {cid: target_to_events(t) for cid, t in targets.items()}
        scores = score_outputs(preds, refs, metrics)
        return {"F": float(scores.F), "DOAE": float(scores.DOAE), "RDE": float(scores.RDE)}

    return validate
