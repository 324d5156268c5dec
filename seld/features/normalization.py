"""Per-channel mean and standard deviation of the features of the training splits.

Computed in one streaming pass over merged split files (chunks of ``clips_per_read`` clips,
combined with Chan's parallel update in float64), so memory stays bounded by one chunk whatever
the size of the split. The record, its JSON file and how it is applied are in
:mod:`seld.data.normalization` (re-exported here).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from seld.data import h5schema
from seld.data.normalization import (
    MIN_STD,
    NORMALIZATION_FILE,
    ChannelStats,
    load_normalization,
    save_normalization,
)
from seld.errors import DataError

__all__ = [
    "MIN_STD",
    "NORMALIZATION_FILE",
    "ChannelStats",
    "compute_normalization",
    "load_normalization",
    "save_normalization",
]


class _Running:
    """Count, mean and sum of squared deviations of a stream of arrays (float64)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def update(self, values: np.ndarray) -> None:
        x = np.asarray(values, dtype=np.float64).ravel()
        if x.size == 0:
            return
        n_b = x.size
        mean_b = float(x.mean())
        m2_b = float(((x - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta**2 * self.n * n_b / n
        self.n = n

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.n)) if self.n else 0.0


def compute_normalization(
    h5_paths: Iterable[str | os.PathLike[str]],
    channels: list[str] | None = None,
    clips_per_read: int = 64,
    progress: bool = False,
) -> dict[str, ChannelStats]:
    """Mean/std per channel over every clip of the merged files ``h5_paths`` (population std).

    ``channels`` defaults to all channels of the first file; each file must hold them all (DataError
    naming the file otherwise, or when it is not a merged file of this format version).
    """
    from tqdm import tqdm

    paths = [Path(p) for p in h5_paths]
    if not paths:
        raise DataError("no merged feature files given for the normalisation statistics")
    running: dict[str, _Running] = {}
    for path in paths:
        with h5schema.open_merged(path) as f:
            names = h5schema.merged_channels(f)
            if channels is None:
                channels = names
            missing = [c for c in channels if c not in names]
            if missing:
                raise DataError(f"{path}: channels {missing} missing; file has {names}")
            index = [names.index(c) for c in channels]
            feats = f[h5schema.FEATURES]
            n = feats.shape[0]
            for start in tqdm(range(0, n, clips_per_read), desc=f"stats {path.name}", disable=not progress):
                block = feats[start : start + clips_per_read]  # (b, C, T, M)
                for c, i in zip(channels, index):
                    running.setdefault(c, _Running()).update(block[:, i])
    assert channels is not None
    return {c: ChannelStats(running[c].mean, running[c].std) for c in channels}
