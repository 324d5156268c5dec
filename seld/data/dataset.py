"""The training dataset: clips of a merged feature file, normalised and grouped per encoder.

Each item is ``{"src": (C_src, T, M), "doa": (C_doa, T, M), "dist": (C_dist, T, M),
"target": (50, 6, 4, 13), "clip_id": str}`` (float32 tensors; T = 250, M = 64 by default;
evaluation items add ``"src_views": (V, C_src, T, M)`` when ``streams.src_eval`` averages V views),
where each stream stacks the channels that :class:`StreamConfig` names, each normalised with
the training-split statistics as ``(x - mean) / max(std, MIN_STD)``.

The merged HDF5 file (layout: :mod:`seld.data.h5schema`; a file of another format version is
refused at construction) is opened lazily on the first item read in each process (DataLoader
workers get their own handle; the handle is never pickled).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from seld.data import h5schema
from seld.data.augment import AugmentConfig, Augmenter
from seld.errors import DataError

STREAMS: tuple[str, ...] = ("src", "doa", "dist")

SOURCE_EVAL_VIEWS: dict[str, tuple[tuple[str, ...], ...]] = {
    "mid": (("logmel_mid",),),
    "l": (("logmel_l",),),
    "r": (("logmel_r",),),
    "mean_lr": (("logmel_l",), ("logmel_r",)),
}
"""``streams.src_eval`` -> the source-stream input(s) at evaluation; several = predictions averaged."""


@dataclass
class StreamConfig:
    """Feature channels fed to the source, DOA and distance encoders (spec section 4 defaults)."""

    src: list[str] = field(default_factory=lambda: ["logmel_mid"])
    doa: list[str] = field(default_factory=lambda: ["logmel_l", "logmel_r", "ivy", "ild"])
    dist: list[str] = field(default_factory=lambda: ["direct_logmel", "reverb_logmel"])
    src_train_choices: list[str] = field(default_factory=lambda: ["logmel_l", "logmel_r"])
    """In training, when ``src`` has one channel, use one of these drawn at random per item
    instead (the authors pick L or R at random); empty disables (``src`` is then used throughout)."""
    src_eval: Literal["mid", "l", "r", "mean_lr"] = "mid"
    """Source-stream input at validation and inference when training draws it from
    ``src_train_choices``: ``mid`` (logmel_mid), ``l``, ``r``, or ``mean_lr`` (the model runs on
    logmel_l and on logmel_r and the two predictions are averaged). Without a random training
    choice, ``src`` is used at evaluation too and this is ignored."""

    def __post_init__(self) -> None:
        for name in STREAMS:
            if not getattr(self, name):
                raise ValueError(f"stream '{name}' needs at least one feature channel")
        if self.src_eval not in SOURCE_EVAL_VIEWS:
            raise ValueError(f"streams.src_eval must be one of {', '.join(SOURCE_EVAL_VIEWS)}, got {self.src_eval!r}")

    @property
    def random_source(self) -> bool:
        """Training draws the one source channel from ``src_train_choices``."""
        return bool(self.src_train_choices) and len(self.src) == 1

    def eval_source_views(self) -> list[list[str]]:
        """The source-stream channel list(s) at evaluation; predictions over several are averaged."""
        if not self.random_source:
            return [list(self.src)]
        return [list(v) for v in SOURCE_EVAL_VIEWS[self.src_eval]]

    def required_channels(self, train: bool) -> list[str]:
        """Every channel an item may read (order of first appearance)."""
        if train:
            src = self.src_train_choices if self.random_source else self.src
        else:
            src = [c for view in self.eval_source_views() for c in view]
        return list(dict.fromkeys(src + self.doa + self.dist))


class SeldDataset(Dataset):
    """Items of one merged feature file; see the module docstring for the item layout.

    Args:
        h5_path: merged split file ``<features>/<split>.h5``.
        normalization_path: ``normalization.json`` from the training splits, or None to return
            unnormalised features.
        streams: channel lists per encoder.
        train: draw the source channel from ``streams.src_train_choices`` per item.
        seed: the random source choice is a function of (seed, epoch, index) only, so it is
            the same whatever worker reads the item; call :meth:`set_epoch` each epoch.
        augment: training augmentation (:mod:`seld.data.augment`, also drawn from (seed, epoch,
            index)); ignored when ``train`` is False.
    """

    def __init__(
        self,
        h5_path: str | os.PathLike[str],
        normalization_path: str | os.PathLike[str] | None,
        streams: StreamConfig | None = None,
        train: bool = False,
        seed: int = 0,
        augment: AugmentConfig | None = None,
    ) -> None:
        self.h5_path = Path(h5_path)
        self.streams = streams or StreamConfig()
        self.train = train
        self.seed = int(seed)
        self.epoch = 0
        with h5schema.open_merged(self.h5_path) as f:  # DataError: unreadable, another format version
            self.channels: list[str] = h5schema.merged_channels(f)
            self.feature_shape = tuple(f[h5schema.FEATURES].shape[1:])
            self.clip_ids: list[str] = h5schema.merged_clip_ids(f)
            num_targets = f[h5schema.TARGETS].shape[0]
            num_features = f[h5schema.FEATURES].shape[0]
        if len(self.channels) != self.feature_shape[0]:
            raise DataError(
                f"{self.h5_path}: attribute 'channels' names {len(self.channels)} channels but "
                f"'features' has {self.feature_shape[0]}"
            )
        if not (len(self.clip_ids) == num_targets == num_features):
            raise DataError(f"{self.h5_path}: features, targets and clip_ids differ in length")
        missing = [c for c in self.streams.required_channels(train) if c not in self.channels]
        if missing:
            raise DataError(
                f"{self.h5_path}: feature channel(s) {', '.join(missing)} named in the stream config "
                f"are not in the file; available: {', '.join(self.channels)}"
            )
        self.index = {c: i for i, c in enumerate(self.channels)}
        needed = self.streams.required_channels(train)
        self.mean = np.zeros(len(self.channels), dtype=np.float32)
        self.scale = np.ones(len(self.channels), dtype=np.float32)
        self.normalization_path = Path(normalization_path) if normalization_path is not None else None
        if self.normalization_path is not None:
            from seld.data.normalization import load_normalization

            stats = load_normalization(self.normalization_path)
            absent = [c for c in needed if c not in stats]
            if absent:
                raise DataError(
                    f"{self.normalization_path}: no statistics for channel(s) {', '.join(absent)}; "
                    f"it has: {', '.join(stats)}"
                )
            for c in needed:
                self.mean[self.index[c]], self.scale[self.index[c]] = stats[c].offset_and_scale()
        self._h5: Any = None
        self._h5_pid: int | None = None
        self.augmenter = Augmenter(augment, self.channels) if (train and augment is not None and augment.enabled) else None

    def __len__(self) -> int:
        return len(self.clip_ids)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch used in the random source-channel choice."""
        self.epoch = int(epoch)

    def _file(self) -> Any:
        import h5py

        if self._h5 is None or self._h5_pid != os.getpid():
            self._h5 = h5py.File(self.h5_path, "r")
            self._h5_pid = os.getpid()
        return self._h5

    def source_channels(self, index: int) -> list[str]:
        """The channel(s) of the source stream for item ``index`` (random choice in training; the
        first evaluation view otherwise, see :meth:`StreamConfig.eval_source_views`)."""
        choices = self.streams.src_train_choices
        if self.train and self.streams.random_source:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            return [choices[int(rng.integers(len(choices)))]]
        return self.streams.eval_source_views()[0]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips in {self.h5_path}")
        f = self._file()
        feats = f[h5schema.FEATURES][index]  # (C, T, M): one contiguous chunk
        target = f[h5schema.TARGETS][index]
        aug_rng = np.random.default_rng([self.seed, self.epoch, index, 1]) if self.augmenter is not None else None
        if self.augmenter is not None:  # training only: swap and band gains on raw features
            feats, target = self.augmenter.before_normalization(feats, target, aug_rng)
        feats = (feats - self.mean[:, None, None]) * self.scale[:, None, None]
        if self.augmenter is not None:  # masks on normalised features (0 = channel mean)
            feats = self.augmenter.after_normalization(feats, aug_rng)
        groups = {
            "src": self.source_channels(index),
            "doa": self.streams.doa,
            "dist": self.streams.dist,
        }
        item: dict[str, Any] = {
            name: torch.from_numpy(np.ascontiguousarray(feats[[self.index[c] for c in chans]], dtype=np.float32))
            for name, chans in groups.items()
        }
        views = self.streams.eval_source_views()
        if not self.train and len(views) > 1:  # e.g. src_eval: mean_lr -> (views, C_src, T, M)
            item["src_views"] = torch.stack(
                [torch.from_numpy(np.ascontiguousarray(feats[[self.index[c] for c in v]], dtype=np.float32)) for v in views]
            )
        item["target"] = torch.from_numpy(np.asarray(target, dtype=np.float32))
        item["clip_id"] = self.clip_ids[index]
        return item

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"] = None
        state["_h5_pid"] = None
        return state

    def close(self) -> None:
        """Close this process's file handle (it reopens on the next read)."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def source_view_batches(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """The batch once per evaluation view of the source stream (``src_views (B, V, C, T, M)``), with
    ``src`` set to that view; the batch itself when it has a single view. Callers average the
    predictions over the returned batches (``streams.src_eval: mean_lr``)."""
    views = batch.get("src_views")
    if views is None:
        return [batch]
    rest = {k: v for k, v in batch.items() if k != "src_views"}
    return [{**rest, "src": views[:, i]} for i in range(views.shape[1])]
