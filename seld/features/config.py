"""Typed config of feature extraction (spec section 4); loaded with :func:`seld.config.load_config`.

Relative paths (``dataset_root``, ``output_dir``) are resolved against the current working
directory. The YAML with every key explained is ``features/config.yml``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from seld.constants import DEV_SPLITS, LABEL_HOP_SECONDS, SAMPLE_RATE
from seld.data.audio import AudioConfig
from seld.errors import ConfigError

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


@dataclass
class StftConfig:
    """Short-time Fourier transform of the feature front end."""

    n_fft: int = 1024
    """FFT size = Hann window length in samples."""
    hop_length: int = 480
    """Hop in samples; the label hop (2400 samples at 24 kHz) must be a multiple of it."""

    def __post_init__(self) -> None:
        if self.n_fft <= 0 or self.hop_length <= 0:
            raise ValueError(f"n_fft ({self.n_fft}) and hop_length ({self.hop_length}) must be > 0")


@dataclass
class MelConfig:
    """Slaney mel filterbank (librosa ``filters.mel`` with ``htk=False, norm='slaney'``) and dB."""

    n_mels: int = 64
    fmin: float = 0.0
    fmax: float = 12000.0
    amin: float = 1e-10
    """Floor of power before 10·log10 (librosa ``power_to_db`` amin; ref 1, no top_db)."""


@dataclass
class WpeConfig:
    """WPE dereverberation (nara_wpe, STFT domain, whole-clip statistics) of the mid signal W."""

    taps: int = 60
    delay: int = 5
    iterations: int = 5
    psd_context: int = 0
    statistics_mode: Literal["full", "valid"] = "full"
    n_fft: int = 1024
    """STFT size used for WPE (independent of the feature STFT)."""
    hop_length: int = 480


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
    workers: int = 0
    """Parallel worker processes; 0 = one per CPU core, 1 = run in this process."""
    clips_per_task: int = 4
    """Clips a worker computes as one batch (the STFT front end is batched over clips)."""

    def __post_init__(self) -> None:
        from seld.features.channels import resolve_channels

        self.channels = resolve_channels(self.channels)
        missing = [s for s in self.train_splits if s not in self.splits]
        if missing:
            raise ValueError(f"train_splits {missing} are not among splits {self.splits}")
        frames_per_label_frame(self.stft.hop_length, self.audio.sample_rate)
        if self.workers < 0 or self.clips_per_task < 1:
            raise ValueError("workers must be >= 0 and clips_per_task >= 1")


def frames_per_label_frame(hop_length: int, sample_rate: int = SAMPLE_RATE) -> int:
    """STFT frames per 100 ms label frame (5 for hop 480 at 24 kHz); ConfigError if not integral."""
    label_hop = sample_rate * LABEL_HOP_SECONDS
    ratio = label_hop / hop_length
    if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
        raise ConfigError(
            f"stft.hop_length {hop_length} must divide the label hop ({label_hop:g} samples "
            f"at {sample_rate} Hz)"
        )
    return int(round(ratio))


def num_label_frames(num_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Label frames covering ``num_samples``: ceil(samples / label hop) (50 for a 5 s clip)."""
    label_hop = int(round(sample_rate * LABEL_HOP_SECONDS))
    return max(1, math.ceil(num_samples / label_hop))
