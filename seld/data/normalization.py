"""Per-channel feature normalisation statistics: the record and its JSON file.

The statistics (mean and population std of each feature channel over the training splits) are
stored as human-readable JSON beside the features::

    {"channels": {"logmel_l": {"mean": -41.2, "std": 17.9}, ...},
     "splits": ["dev-train-sony", ...], "files": ["dev-train-sony.h5", ...], "num_clips": 1234}

and applied at load time by the dataset as ``(x - mean) / max(std, MIN_STD)``; the stored
features stay unnormalised. Computing them (a streaming pass over merged feature files) lives in
:mod:`seld.features.normalization`; this record sits one floor lower so the data layer reads it
without importing the feature layer.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

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

    def offset_and_scale(self) -> tuple[np.float32, np.float32]:
        """``(mean, 1 / max(std, MIN_STD))`` in float32; normalised = ``(x - mean) * scale``.

        The one rule used by training (``SeldDataset``) and inference (``LoadedModel.normalize``),
        so both feed the model bit-identical inputs.
        """
        return np.float32(self.mean), np.float32(1.0 / max(self.std, MIN_STD))


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
