"""Per-channel mean and standard deviation of the features of the training splits.

Computed in one streaming pass over merged split files (chunks of clips, combined with Chan's
parallel update in float64), stored as human-readable JSON beside the features::

    {"channels": {"logmel_l": {"mean": -41.2, "std": 17.9}, ...},
     "files": ["dev-train-sony.h5", ...], "num_clips": 1234, "values_per_channel": 19742720}

and applied at load time by the dataset as ``(x - mean) / max(std, MIN_STD)``; the stored
features stay unnormalised.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from seld.errors import DataError
from seld.io_utils import atomic_write_text

NORMALIZATION_FILE = "normalization.json"
MIN_STD = 1e-6
"""Floor of the std used when applying the statistics (a constant channel stays finite)."""


@dataclass(frozen=True)
class ChannelStats:
    """Mean and std of one feature channel."""

    mean: float
    std: float


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

    ``channels`` defaults to all channels of the first file; each file must hold them all.
    """
    import h5py
    from tqdm import tqdm

    paths = [Path(p) for p in h5_paths]
    if not paths:
        raise DataError("no merged feature files given for the normalisation statistics")
    running: dict[str, _Running] = {}
    for path in paths:
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise DataError(f"{path}: cannot open merged feature file ({exc})") from exc
        with f:
            names = [str(c) for c in f.attrs.get("channels", [])]
            if "features" not in f:
                raise DataError(f"{path}: no 'features' dataset (not a merged feature file)")
            if channels is None:
                channels = names
            missing = [c for c in channels if c not in names]
            if missing:
                raise DataError(f"{path}: channels {missing} missing; file has {names}")
            index = [names.index(c) for c in channels]
            feats = f["features"]
            n = feats.shape[0]
            for start in tqdm(range(0, n, clips_per_read), desc=f"stats {path.name}", disable=not progress):
                block = feats[start : start + clips_per_read]  # (b, C, T, M)
                for c, i in zip(channels, index):
                    running.setdefault(c, _Running()).update(block[:, i])
    assert channels is not None
    return {c: ChannelStats(running[c].mean, running[c].std) for c in channels}


def save_normalization(
    stats: dict[str, ChannelStats], path: str | os.PathLike[str], **meta: object
) -> Path:
    """Write ``stats`` (and any JSON-able ``meta``) as JSON atomically; returns the path."""
    data = {"channels": {c: {"mean": s.mean, "std": s.std} for c, s in stats.items()}, **meta}
    p = Path(path)
    atomic_write_text(p, json.dumps(data, indent=2) + "\n")
    return p


def load_normalization(path: str | os.PathLike[str]) -> dict[str, ChannelStats]:
    """Read a normalisation JSON; DataError naming the file when it is missing or malformed."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"normalisation file not found: {p} (run `seld features merge`)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{p}: not a valid normalisation JSON ({exc})") from exc
    chans = data.get("channels") if isinstance(data, dict) else None
    if not isinstance(chans, dict):
        raise DataError(f"{p}: expected a top-level 'channels' mapping")
    out: dict[str, ChannelStats] = {}
    for name, s in chans.items():
        try:
            mean, std = float(s["mean"]), float(s["std"])
        except (TypeError, KeyError, ValueError):
            raise DataError(f"{p}: channel '{name}' needs numeric 'mean' and 'std', got {s!r}") from None
        if not (np.isfinite(mean) and np.isfinite(std) and std >= 0):
            raise DataError(f"{p}: channel '{name}' has invalid mean/std {mean}, {std}")
        out[name] = ChannelStats(mean, std)
    return out
