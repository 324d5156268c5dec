"""Training-time augmentation of stereo SELD features (off at evaluation; deterministic from a seed).

Applied by :class:`seld.data.dataset.SeldDataset` to one clip's features ``(C, T, M)`` (channels
named by the merged file) and its ADPIT target ``(50, 6, 4, 13)``:

* **Left/right swap** (probability ``swap_prob``): mirroring the scene about the front axis
  (azimuth -> -azimuth) swaps the coincident pair's channels, L' = R and R' = L, since
  L = W + Y, R = W - Y and Y (figure-of-eight along +y) changes sign while W does not. So
  ``logmel_l`` <-> ``logmel_r``; ``ild`` = dB L - dB R and ``ivy`` ~ Re(Y W*) change sign;
  ``ipd_sin`` (phase of L R*) changes sign while ``ipd_cos`` does not; every channel of the mid
  signal W (``logmel_mid``, ``direct_logmel``, ``reverb_logmel``, ``drr_logmel``) is unchanged.
  In the target y = sin(azimuth) changes sign; activity, x and distance do not.
* **FilterAugment** (probability ``filter_prob``): random gains in dB on a few random frequency
  bands (piecewise constant over mel bins), added to every log-power channel alike (``logmel_*``,
  ``direct_logmel``, ``reverb_logmel``). A gain common to L and R leaves the ratio channels
  (``ild``, ``ivy``, ``ipd_*``, ``drr_logmel``) unchanged, so they are not touched.
* **SpecAugment masks** (after normalisation): ``time_masks`` time stripes of up to
  ``time_mask_frames`` frames and ``freq_masks`` frequency stripes of up to ``freq_mask_bins``
  mel bins, set to 0 (the channel mean) in every channel; the target is unchanged.

The swap and the gains act on raw features, before normalisation (so each channel keeps its own
statistics); the masks act after it. All draws come from a generator seeded with
``(seed, epoch, index)``: an item's augmentation does not depend on the worker that reads it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from seld.errors import ConfigError

SWAPPED_PAIRS: tuple[tuple[str, str], ...] = (("logmel_l", "logmel_r"),)
"""Channels exchanged by a left/right swap."""
NEGATED_ON_SWAP: frozenset[str] = frozenset({"ild", "ivy", "ipd_sin"})
"""Channels whose sign flips with a left/right swap (every other channel is symmetric)."""
LOG_POWER_CHANNELS: frozenset[str] = frozenset(
    {"logmel_l", "logmel_r", "logmel_mid", "direct_logmel", "reverb_logmel"}
)
"""Channels in dB of a power: FilterAugment adds its band gains to these."""
Y_INDEX: int = 2
"""Index of y = sin(azimuth) among the target values [activity, x, y, distance]."""


@dataclass
class AugmentConfig:
    """Training augmentation of one stage (``data.augment``); everything off by default (faithful)."""

    swap_prob: float = 0.0
    """Probability of the left/right swap per clip (0.5 doubles the azimuth coverage)."""
    filter_prob: float = 0.0
    """Probability of FilterAugment band gains per clip."""
    filter_bands: list[int] = field(default_factory=lambda: [2, 5])
    """Range [min, max] of the number of bands per clip."""
    filter_db: float = 6.0
    """Gains drawn uniformly in [-filter_db, +filter_db] dB per band."""
    time_masks: int = 0
    """SpecAugment time masks per clip."""
    time_mask_frames: int = 20
    """Largest time mask in feature frames (drawn uniformly in 0..this)."""
    freq_masks: int = 0
    """SpecAugment frequency masks per clip."""
    freq_mask_bins: int = 8
    """Largest frequency mask in mel bins (drawn uniformly in 0..this)."""

    def __post_init__(self) -> None:
        for name in ("swap_prob", "filter_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"augment.{name} must be in [0, 1], got {v}")
        if len(self.filter_bands) != 2 or not 1 <= self.filter_bands[0] <= self.filter_bands[1]:
            raise ConfigError(f"augment.filter_bands must be [min, max] with 1 <= min <= max, got {self.filter_bands}")
        for name in ("filter_db", "time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins"):
            if getattr(self, name) < 0:
                raise ConfigError(f"augment.{name} must be >= 0, got {getattr(self, name)}")

    @property
    def enabled(self) -> bool:
        return self.swap_prob > 0 or self.filter_prob > 0 or self.time_masks > 0 or self.freq_masks > 0


def swap_left_right(feats: np.ndarray, channels: list[str], target: np.ndarray | None = None):
    """Mirror a clip about the front axis: ``(C, T, M)`` features by channel name and the target.

    Returns new arrays (features, target or None); see the module docstring for the rules.
    """
    index = {c: i for i, c in enumerate(channels)}
    out = feats.copy()
    for a, b in SWAPPED_PAIRS:
        if (a in index) != (b in index):
            raise ConfigError(f"left/right swap needs both {a} and {b} in the features, or neither")
        if a in index:
            out[index[a]], out[index[b]] = feats[index[b]], feats[index[a]]
    for c in NEGATED_ON_SWAP:
        if c in index:
            out[index[c]] = -feats[index[c]]
    new_target = None
    if target is not None:
        new_target = target.copy()
        new_target[:, :, Y_INDEX, :] = -target[:, :, Y_INDEX, :]
    return out, new_target


class Augmenter:
    """The augmentation of :class:`AugmentConfig` for features whose channels are ``channels``."""

    def __init__(self, cfg: AugmentConfig, channels: list[str]) -> None:
        self.cfg = cfg
        self.channels = list(channels)
        self.gain_rows = np.array([c in LOG_POWER_CHANNELS for c in self.channels])
        if cfg.swap_prob > 0:
            swap_left_right(np.zeros((len(self.channels), 1, 1), np.float32), self.channels)  # checks the pairs

    def before_normalization(self, feats: np.ndarray, target: np.ndarray, rng: np.random.Generator):
        """Swap and band gains on raw ``(C, T, M)`` features; returns (features, target)."""
        cfg = self.cfg
        if cfg.swap_prob > 0 and rng.random() < cfg.swap_prob:
            feats, target = swap_left_right(feats, self.channels, target)
        if cfg.filter_prob > 0 and rng.random() < cfg.filter_prob and self.gain_rows.any():
            feats = feats.copy()
            feats[self.gain_rows] += self.band_gains(feats.shape[-1], rng)[None, None, :]
        return feats, target

    def band_gains(self, num_bins: int, rng: np.random.Generator) -> np.ndarray:
        """FilterAugment gains ``(num_bins,)`` in dB: constant over random contiguous bands."""
        lo, hi = self.cfg.filter_bands
        bands = int(rng.integers(lo, hi + 1))
        bands = min(bands, num_bins)
        edges = np.sort(rng.choice(np.arange(1, num_bins), size=bands - 1, replace=False)) if bands > 1 else []
        gains = rng.uniform(-self.cfg.filter_db, self.cfg.filter_db, size=bands)
        out = np.empty(num_bins, dtype=np.float32)
        for g, a, b in zip(gains, [0, *edges], [*edges, num_bins]):
            out[a:b] = g
        return out

    def after_normalization(self, feats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """SpecAugment time and frequency masks (value 0) on normalised ``(C, T, M)`` features."""
        cfg = self.cfg
        if cfg.time_masks == 0 and cfg.freq_masks == 0:
            return feats
        feats = feats.copy()
        frames, bins = feats.shape[-2:]
        for _ in range(cfg.time_masks):
            width = int(rng.integers(0, min(cfg.time_mask_frames, frames) + 1))
            start = int(rng.integers(0, frames - width + 1))
            feats[:, start : start + width, :] = 0.0
        for _ in range(cfg.freq_masks):
            width = int(rng.integers(0, min(cfg.freq_mask_bins, bins) + 1))
            start = int(rng.integers(0, bins - width + 1))
            feats[:, :, start : start + width] = 0.0
        return feats
