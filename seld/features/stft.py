"""The STFT / mel front end in torch, batched over any leading dims (clips, channels).

Conventions (spec section 4, librosa-compatible):

* STFT: periodic Hann window of ``win_length`` samples (960 = 2 x hop by default) zero-padded
  on both sides to ``n_fft`` (1024), hop ``hop_length``, centred frames with zero ("constant")
  padding of ``n_fft // 2`` on both sides, exactly like
  ``librosa.stft(n_fft=1024, win_length=960, center=True, pad_mode="constant")``.
* Frames: audio of ``n`` samples is first zero-padded to ``label_frames * label_hop`` samples
  (``label_frames = ceil(n / 2400)`` at 24 kHz). A centred STFT of that gives
  ``frames_per_label * label_frames + 1`` frames (251 for a 5 s clip at hop 480); the last one,
  centred on the final sample, is dropped so features have exactly ``5 * label_frames`` frames
  (250 for 5 s) and 5 feature frames map to one 100 ms label frame.
* Mel: librosa Slaney filterbank (``htk=False, norm="slaney"``) applied to power |X|^2, as one
  matrix product over every frame of every clip and quantity (spectra are ``(..., F, T)`` views
  whose F axis is contiguous, so ``x.mT @ basis.T`` is a single GEMM).
* dB: ``10 * log10(max(power, amin))`` (``librosa.power_to_db`` with ref 1, no ``top_db``).

Computation runs in float64 (the caller casts the features to float32), which keeps the
log-mel within 1e-3 dB of librosa even in quiet bands.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from seld.constants import LABEL_HOP_SECONDS, SAMPLE_RATE
from seld.features.params import MelConfig, StftConfig, frames_per_label_frame, num_label_frames

DTYPE = torch.float64
"""Working precision of the front end."""

CPU_SIGNALS_PER_STFT = 2
"""Signals per ``torch.stft`` call on a CPU (one stereo clip; measured fastest per signal)."""


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> torch.Tensor:
    import librosa

    basis = librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney"
    )
    return torch.from_numpy(basis.astype(np.float64))


def mel_basis(mel: MelConfig, n_fft: int, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """The Slaney mel filterbank ``(n_mels, n_fft // 2 + 1)`` in float64."""
    return _mel_basis(sample_rate, n_fft, mel.n_mels, float(mel.fmin), float(mel.fmax))


def padded_length(num_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Samples after zero-padding to whole label frames (120000 for a 5 s clip)."""
    label_hop = int(round(sample_rate * LABEL_HOP_SECONDS))
    return num_label_frames(num_samples, sample_rate) * label_hop


def num_feature_frames(num_samples: int, hop_length: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Feature frames for ``num_samples`` of audio: 5 x label frames at hop 480 (250 for 5 s)."""
    return frames_per_label_frame(hop_length, sample_rate) * num_label_frames(num_samples, sample_rate)


def pad_to_label_frames(audio: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Zero-pad the last axis of ``audio (..., n)`` to whole 100 ms label frames."""
    n = audio.shape[-1]
    target = padded_length(n, sample_rate)
    if target == n:
        return audio
    return torch.nn.functional.pad(audio, (0, target - n))


def _window(win_length: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.hann_window(win_length, periodic=True, dtype=dtype, device=device)


def stft(
    audio: torch.Tensor, n_fft: int, hop_length: int, win_length: int | None = None, num_frames: int | None = None
) -> torch.Tensor:
    """Centred STFT of ``audio (..., n)`` -> complex ``(..., n_fft // 2 + 1, frames)``.

    ``win_length`` (default ``n_fft``): periodic Hann window, zero-padded to ``n_fft``.
    ``num_frames`` trims the frame axis (the centred STFT has ``n // hop + 1`` frames).
    """
    lead = audio.shape[:-1]
    flat = audio.reshape(-1, audio.shape[-1])
    win = win_length or n_fft
    window = _window(win, flat.dtype, flat.device)

    def transform(x: torch.Tensor) -> torch.Tensor:
        return torch.stft(x, n_fft=n_fft, hop_length=hop_length, win_length=win, window=window,
                          center=True, pad_mode="constant", return_complex=True)

    # On a CPU, torch.stft materialises the windowed frames of all signals at once; beyond a
    # couple of 5 s signals that buffer outgrows the caches and every signal costs ~2x more.
    step = CPU_SIGNALS_PER_STFT if flat.device.type == "cpu" else flat.shape[0]
    if flat.shape[0] <= step:
        spec = transform(flat)
    else:
        spec = torch.cat([transform(flat[i : i + step]) for i in range(0, flat.shape[0], step)])
    if num_frames is not None:
        if spec.shape[-1] < num_frames:
            raise ValueError(f"STFT has {spec.shape[-1]} frames, fewer than the {num_frames} requested")
        spec = spec[..., :num_frames]
    return spec.reshape(*lead, *spec.shape[-2:])


def istft(spec: torch.Tensor, n_fft: int, hop_length: int, length: int, win_length: int | None = None) -> torch.Tensor:
    """Inverse of :func:`stft` (untrimmed): complex ``(..., F, frames)`` -> ``(..., length)``."""
    lead = spec.shape[:-2]
    flat = spec.reshape(-1, *spec.shape[-2:])
    win = win_length or n_fft
    wave = torch.istft(
        flat, n_fft=n_fft, hop_length=hop_length, win_length=win,
        window=_window(win, flat.real.dtype, flat.device), center=True, length=length,
    )
    return wave.reshape(*lead, length)


def mel_filter(per_bin: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Apply ``basis (M, F)`` to a per-bin quantity ``(..., F, T)`` -> ``(..., T, M)``.

    One GEMM when the F axis of ``per_bin`` is contiguous (as for spectra from :func:`stft`).
    """
    return torch.matmul(per_bin.mT, basis.to(per_bin.dtype).T)


def power_to_db(power: torch.Tensor, amin: float) -> torch.Tensor:
    """``10 * log10(max(power, amin))`` (librosa ``power_to_db``, ref 1, no top_db)."""
    return 10.0 * torch.log10(torch.clamp(power, min=amin))


def log_mel(audio: torch.Tensor, stft_cfg: StftConfig, mel: MelConfig, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Log-mel power in dB of ``audio (..., n)`` -> ``(..., T, n_mels)``, T = 5 x label frames.

    The audio is zero-padded to whole label frames first (see module docstring).
    """
    audio = pad_to_label_frames(audio.to(DTYPE), sample_rate)
    frames = num_feature_frames(audio.shape[-1], stft_cfg.hop_length, sample_rate)
    spec = stft(audio, stft_cfg.n_fft, stft_cfg.hop_length, stft_cfg.win_length, frames)
    basis = mel_basis(mel, stft_cfg.n_fft, sample_rate).to(audio.device)
    return power_to_db(mel_filter(spec.real**2 + spec.imag**2, basis), mel.amin)
