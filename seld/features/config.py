"""Typed config of feature extraction (spec section 4); loaded with :func:`seld.config.load_config`.

Relative paths (``dataset_root``, ``output_dir``) are resolved against the current working
directory. The YAML with every key explained is ``features/config.yml``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from seld.constants import DEV_SPLITS
from seld.data.audio import AudioConfig
from seld.features.channels import resolve_channels
from seld.features.params import (
    MelConfig,
    StftConfig,
    WpeConfig,
    frames_per_label_frame,
    num_label_frames,
)

__all__ = [
    "DEFAULT_CHANNELS",
    "FeatureConfig",
    "outdated_feature_definition",
    "MelConfig",
    "StftConfig",
    "WpeConfig",
    "frames_per_label_frame",
    "num_label_frames",
]

DEFAULT_CHANNELS: tuple[str, ...] = (
    "logmel_l",
    "logmel_r",
    "logmel_mid",
    "ild",
    "ivy",
    "direct_logmel",
    "reverb_logmel",
)
"""Channels computed by default: everything the default encoder streams need."""

REVERB_CHANNELS: tuple[str, ...] = ("reverb_logmel", "drr_logmel")
"""Channels that read the reverberant part (``wpe.reverb``)."""


def outdated_feature_definition(features: dict[str, Any]) -> str | None:
    """What an older textseld computed differently for the stored feature config ``features``
    (plain data: a feature folder's ``config.yml`` or a checkpoint's record of it), or None.

    Such features cannot be reproduced by this version: a model trained on them must not be fed
    today's. Recognised by a key that did not exist yet: ``stft.win_length`` (before it: a
    1024-sample window and a resynthesised WPE direct signal) and, when a channel reads the
    reverberant part, ``wpe.reverb`` (before it: Rev = W - D in the STFT domain and
    ``drr_logmel`` = dB mel |D|^2 - dB mel |Rev|^2).
    """
    stft, wpe = features.get("stft"), features.get("wpe")
    if isinstance(stft, dict) and "win_length" not in stft:
        return "1024-sample STFT window, resynthesised WPE direct signal"
    channels = features.get("channels", DEFAULT_CHANNELS)
    reverb = [c for c in REVERB_CHANNELS if isinstance(channels, (list, tuple)) and c in channels]
    if isinstance(wpe, dict) and "reverb" not in wpe and reverb:
        return f"{' and '.join(reverb)} from the STFT-domain reverberant part W - D, before wpe.reverb existed"
    return None


@dataclass
class FeatureConfig:
    """Everything `seld features` needs: where the data is, which channels, how to compute them."""

    dataset_root: str = "data/dcase2025"
    output_dir: str = "data/features"
    splits: list[str] = field(default_factory=lambda: list(DEV_SPLITS))
    train_splits: list[str] = field(default_factory=lambda: ["dev-train-sony", "dev-train-tau"])
    """Splits whose clips give the normalisation statistics (must be among ``splits``)."""
    channels: list[str] = field(default_factory=lambda: list(DEFAULT_CHANNELS))
    """Feature channel names (see ``seld.features.channels.CHANNELS``); ``ipd`` = ipd_cos + ipd_sin."""
    peak_normalize: bool = True
    """Divide each clip by its peak absolute sample (over both channels) before features."""
    require_labels: bool = True
    """A clip without a metadata CSV is an error (else it gets an all-zero target)."""
    stft: StftConfig = field(default_factory=StftConfig)
    mel: MelConfig = field(default_factory=MelConfig)
    wpe: WpeConfig = field(default_factory=WpeConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    device: Literal["cpu", "cuda"] = "cpu"
    """Where features (STFT, mel, WPE) are computed. ``cuda`` runs in this process on the first
    visible GPU (``workers`` is then ignored) and fails with a clear error when none is visible."""
    batch_size: int = 4
    """Clips computed together as one batch (shared spectra, one mel product, one WPE call).
    On a GPU (or a CPU without the compiled WPE kernel) WPE holds 134 MB of lag products per clip it
    works on: up to 1 GiB worth of clips at a time on a GPU, one clip per thread on a CPU."""
    workers: int = 0
    """Parallel worker processes on CPU; 0 = one per CPU core, 1 = run in this process."""

    def __post_init__(self) -> None:
        self.channels = resolve_channels(self.channels)
        missing = [s for s in self.train_splits if s not in self.splits]
        if missing:
            raise ValueError(f"train_splits {missing} are not among splits {self.splits}")
        frames_per_label_frame(self.stft.hop_length, self.audio.sample_rate)
        if self.workers < 0 or self.batch_size < 1:
            raise ValueError("workers must be >= 0 and batch_size >= 1")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")

