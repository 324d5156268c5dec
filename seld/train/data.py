"""Training data of a stage: merged feature files of the configured splits, a validation part held
out of the training splits by room, the loaders that read them, and validation scoring."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from seld.data.augment import AugmentConfig
from seld.data.dataset import SeldDataset, StreamConfig
from seld.data.targets import target_to_events
from seld.errors import ConfigError
from seld.metrics import MetricConfig, score_outputs


@dataclass
class ValFromTrainConfig:
    """Hold out whole rooms of the training splits for validation (model selection without the test set)."""

    fraction: float = 0.1
    """Share of the training clips to hold out: rooms are added in a seeded random order until at
    least this share of the clips is held out (whole rooms, so usually a little more)."""
    seed: int = 0
    """Seed of the room order (independent of ``train.seed``)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"val_from_train.fraction must be in (0, 1), got {self.fraction}")


@dataclass
class DataConfig:
    """Where a stage reads features (written by ``seld features``) and which splits it uses."""

    features_dir: str = "data/features"
    """Folder holding ``<split>.h5`` merged files and ``normalization.json``."""
    train_splits: list[str] = field(default_factory=lambda: ["dev-train-sony", "dev-train-tau"])
    val_splits: list[str] = field(default_factory=lambda: ["dev-test-sony", "dev-test-tau"])
    """Validated every ``train.validate_every_epochs``; ``best_f.pt`` / ``best_loss.pt`` are chosen on
    them. The authors (and our paper configs) use dev-test here, which is optimistic: the model
    is selected on the test set. Use ``val_from_train`` and ``test_splits`` for a clean protocol."""
    test_splits: list[str] = field(default_factory=list)
    """Scored once at the end of a finished run with ``best_f.pt``'s weights (the last weights when
    there is no validation), into ``<out_dir>/test_scores.json`` and TensorBoard ``test/*``."""
    val_from_train: Optional[ValFromTrainConfig] = None
    """Validate on whole rooms held out of ``train_splits`` (never trained on) instead of
    ``val_splits`` (which must then be empty). None: no hold-out."""
    normalization: Optional[str] = None
    """Normalisation statistics; None: ``<features_dir>/normalization.json``."""
    streams: StreamConfig = field(default_factory=StreamConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Training augmentation (left/right swap, FilterAugment, SpecAugment masks); off by default and
    never applied to validation."""

    def __post_init__(self) -> None:
        if self.val_from_train is not None and self.val_splits:
            raise ValueError(
                "val_from_train holds validation rooms out of train_splits: set val_splits: [] "
                f"(got {self.val_splits}); put the dev-test splits in test_splits to score them once at the end"
            )

    @property
    def normalization_path(self) -> Path:
        return Path(self.normalization) if self.normalization else Path(self.features_dir) / "normalization.json"

    def split_file(self, split: str) -> Path:
        return Path(self.features_dir) / f"{split}.h5"

    def check_files(self) -> None:
        """Raise ConfigError naming every missing feature file, before any training starts."""
        splits = list(dict.fromkeys(self.train_splits + self.val_splits + self.test_splits))
        missing = [self.split_file(s) for s in splits if not self.split_file(s).is_file()]
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


def make_loader(dataset: Dataset, sampler: Any, batch_size: int, num_workers: int, seed: int, drop_last: bool,
                pin_memory: bool) -> DataLoader:
    """A DataLoader over ``sampler``'s items with a private generator seeded by ``seed``: it never
    draws on the global torch RNG, which the checkpoint restores, so resuming mid-epoch reproduces
    dropout exactly."""
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=g,
        persistent_workers=False,
        pin_memory=pin_memory,
    )


def set_dataset_epoch(dataset: Dataset, epoch: int) -> None:
    """Tell ``dataset`` (each part of a ConcatDataset) the epoch it serves (its random draws follow it)."""
    for ds in getattr(dataset, "datasets", [dataset]):
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(epoch)


_ROOM_RE = re.compile(r"^(fold\d+_room\d+)(?:_|$)")


def room_of(clip_id: str) -> str:
    """The room a DCASE clip was recorded in: ``fold3_room21_mix013_...`` -> ``fold3_room21``.

    The fold stays in the key: room numbers of different folds (e.g. the synthetic fold1 and
    the STARSS fold3) name different rooms.
    """
    m = _ROOM_RE.match(clip_id)
    if m is None:
        raise ConfigError(
            f"data.val_from_train groups clips by room, but clip id {clip_id!r} does not start with "
            "'fold<N>_room<M>_' (DCASE naming); use val_splits instead"
        )
    return m.group(1)


def split_by_room(clip_ids: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, held-out indices) of ``clip_ids`` with whole rooms held out.

    Rooms (sorted by name) are shuffled with ``numpy.random.default_rng(seed)`` and held out in
    that order until at least ``fraction`` of the clips are held out; at least one room is held
    out and at least one is kept for training. Deterministic in (clip ids, fraction, seed).
    """
    rooms = [room_of(c) for c in clip_ids]
    names = sorted(set(rooms))
    if len(names) < 2:
        raise ConfigError(f"data.val_from_train needs clips of at least 2 rooms in train_splits; found {names}")
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    counts = {r: rooms.count(r) for r in names}
    held: set[str] = set()
    for room in order[:-1]:  # the last room always trains
        held.add(room)
        if sum(counts[r] for r in held) >= fraction * len(clip_ids):
            break
    train = [i for i, r in enumerate(rooms) if r not in held]
    val = [i for i, r in enumerate(rooms) if r in held]
    return train, val


class ClipSubset(Subset):
    """A :class:`~torch.utils.data.Subset` that passes ``set_epoch`` on and knows its clip ids."""

    def set_epoch(self, epoch: int) -> None:
        for ds in getattr(self.dataset, "datasets", [self.dataset]):
            if hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)

    @property
    def clip_ids(self) -> list[str]:
        ids = clip_ids_of(self.dataset)
        return [ids[i] for i in self.indices]


def clip_ids_of(dataset: Dataset) -> list[str]:
    """Clip ids of a dataset from :func:`build_dataset` in item order (without reading features)."""
    if isinstance(dataset, ConcatDataset):
        return [c for d in dataset.datasets for c in clip_ids_of(d)]
    return list(dataset.clip_ids)  # type: ignore[attr-defined]


def build_stage_datasets(cfg: DataConfig, seed: int) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """(train, validation or None, test or None) datasets of a stage.

    With ``val_from_train`` the validation set is the held-out rooms of ``train_splits`` (read
    as evaluation items: the ``src`` channels, no random choice) and the training set the rest.
    """
    train_set = build_dataset(cfg, cfg.train_splits, train=True, seed=seed)
    val_set = build_dataset(cfg, cfg.val_splits, train=False, seed=seed) if cfg.val_splits else None
    if cfg.val_from_train is not None:
        train_idx, val_idx = split_by_room(clip_ids_of(train_set), cfg.val_from_train.fraction, cfg.val_from_train.seed)
        val_set = ClipSubset(build_dataset(cfg, cfg.train_splits, train=False, seed=seed), val_idx)
        train_set = ClipSubset(train_set, train_idx)
    test_set = build_dataset(cfg, cfg.test_splits, train=False, seed=seed) if cfg.test_splits else None
    return train_set, val_set, test_set


def make_validator(metrics: MetricConfig):
    """A validator for :class:`~seld.train.engine.Trainer`: DCASE2025 metrics of activated outputs."""

    def validate(preds: dict[str, np.ndarray], targets: dict[str, np.ndarray]) -> dict[str, float]:
        refs = {cid: target_to_events(t) for cid, t in targets.items()}
        scores = score_outputs(preds, refs, metrics)
        return {"F": float(scores.F), "DOAE": float(scores.DOAE), "RDE": float(scores.RDE)}

    return validate
