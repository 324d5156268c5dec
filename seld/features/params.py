"""Typed parameters of the spectral front end (STFT, mel, WPE) and the frame arithmetic.

This is the lowest floor of :mod:`seld.features`: it imports nothing from the package, so
:mod:`~seld.features.stft`, :mod:`~seld.features.wpe`, :mod:`~seld.features.channels` and
:mod:`~seld.features.config` (which re-exports these names) can all build on it without an
import circle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from seld.constants import LABEL_HOP_SECONDS, SAMPLE_RATE
from seld.errors import ConfigError


@dataclass
class StftConfig:
    """Short-time Fourier transform of the feature front end (also the WPE domain)."""

    n_fft: int = 1024
    """FFT size (frequency bins = n_fft // 2 + 1)."""
    hop_length: int = 480
    """Hop in samples; the label hop (2400 samples at 24 kHz) must be a multiple of it."""
    win_length: int = 960
    """Periodic Hann window length, zero-padded (centred) to ``n_fft``: 960 = 2 x hop as in the
    authors' code and the DCASE2025 baseline (``librosa.stft(win_length=960, n_fft=1024)``)."""

    def __post_init__(self) -> None:
        if self.n_fft <= 0 or self.hop_length <= 0:
            raise ConfigError(f"stft.n_fft ({self.n_fft}) and stft.hop_length ({self.hop_length}) must be > 0")
        if not 0 < self.win_length <= self.n_fft:
            raise ConfigError(f"stft.win_length ({self.win_length}) must be in 1..n_fft ({self.n_fft})")
        if self.hop_length > self.win_length:
            raise ConfigError(
                f"stft.hop_length ({self.hop_length}) exceeds stft.win_length ({self.win_length}): "
                "frames would leave gaps and the STFT could not be inverted"
            )


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
    """WPE dereverberation of the mid signal W in the feature STFT domain (nara_wpe's algorithm,
    whole-clip statistics), run by the batched torch implementation in :mod:`seld.features.wpe`
    in complex128 (complex64 is unstable: measured in ``scripts/bench/bench_wpe.py``)."""

    taps: int = 60
    """Prediction filter length (frames)."""
    delay: int = 5
    """Prediction delay (frames, >= 1): reverberation later than this is predicted and removed
    (with 0 the filter would predict each frame from itself and remove the signal too)."""
    iterations: int = 5
    """Alternations of power estimate and filter estimate."""
    psd_context: int = 0
    """Frames either side averaged into the power estimate (nara_wpe ``psd_context``)."""
    statistics_mode: Literal["full", "valid"] = "full"
    """``full``: correlations over every frame (zeros before the clip); ``valid``: only frames
    with a complete history of ``taps + delay - 1`` frames (nara_wpe ``statistics_mode``)."""
    reverb: Literal["time_domain", "stft_domain"] = "time_domain"
    """How the reverberant part Rev of W is formed from WPE's direct part D (``reverb_logmel``,
    ``drr_logmel``). ``time_domain``, the authors' ``get_distance_feats``: the residual
    w - ISTFT(D) analysed again with the feature STFT. ``stft_domain``: STFT(w) - D bin by bin,
    exactly WPE's prediction of the late reverberation, so D + Rev is the mixture in every bin
    (WPE's output is not a consistent STFT, so resynthesis changes it and the two differ)."""

    def __post_init__(self) -> None:
        if self.taps < 1 or self.delay < 1 or self.iterations < 1 or self.psd_context < 0:
            raise ConfigError(
                f"wpe: taps ({self.taps}), delay ({self.delay}) and iterations ({self.iterations}) "
                f"must be >= 1 and psd_context ({self.psd_context}) >= 0 (a delay of 0 predicts each "
                "frame from itself: nara_wpe's guard interval)"
            )
        if self.statistics_mode not in ("full", "valid"):
            raise ConfigError(f"wpe.statistics_mode must be 'full' or 'valid', got {self.statistics_mode!r}")
        if self.reverb not in ("time_domain", "stft_domain"):
            raise ConfigError(f"wpe.reverb must be 'time_domain' or 'stft_domain', got {self.reverb!r}")


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
