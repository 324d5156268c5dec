"""Direct / reverberant split of the mid signal by WPE dereverberation (nara_wpe).

``direct = iSTFT(WPE(STFT(w)))`` with nara_wpe's STFT-domain ``wpe`` (``nara_wpe.wpe.wpe``,
which takes ``(..., channels D, frames T)`` per frequency and estimates its statistics over the
whole clip), and ``reverberant = w - direct`` in the time domain. The STFT used here (Hann,
centred, ``cfg.n_fft`` / ``cfg.hop_length``) is independent of the feature STFT.

WPE runs hundreds of small matrix products per clip; a multi-threaded BLAS spends more time
synchronising than computing on them (measured 3-10x slower on 2 cores), so the BLAS is held
to one thread while WPE runs (threadpoolctl) and parallelism comes from the extraction workers.
"""
from __future__ import annotations

import numpy as np
import torch

from seld.features.config import WpeConfig
from seld.features.stft import istft, stft


def _single_threaded_blas():  # -> context manager
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn (librosa)
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def wpe_stft(spec: np.ndarray, cfg: WpeConfig) -> np.ndarray:
    """WPE-dereverberated STFT of one clip: complex ``(F, D, T)`` -> ``(F, D, T)`` complex128."""
    from nara_wpe.wpe import wpe

    if spec.ndim != 3:
        raise ValueError(f"WPE input must be (freq, channels, frames), got shape {spec.shape}")
    # complex64 makes nara_wpe's normal equations numerically unstable: always use complex128.
    with _single_threaded_blas():
        return wpe(
            np.ascontiguousarray(spec, dtype=np.complex128),
            taps=cfg.taps,
            delay=cfg.delay,
            iterations=cfg.iterations,
            psd_context=cfg.psd_context,
            statistics_mode=cfg.statistics_mode,
        )


def direct_and_reverberant(w: torch.Tensor, cfg: WpeConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Split mono ``w (B, n)`` into ``(direct, reverberant)``, each ``(B, n)``, with ``w = d + r``.

    Each clip is dereverberated on its own (WPE statistics are per clip); parallelism comes from
    the extraction workers.
    """
    if w.ndim != 2:
        raise ValueError(f"expected mono audio (batch, samples), got shape {tuple(w.shape)}")
    n = w.shape[-1]
    spec = stft(w.to(torch.float64), cfg.n_fft, cfg.hop_length)  # (B, F, T)
    spec_np = spec.numpy()
    out = np.empty_like(spec_np, dtype=np.complex128)
    for b in range(spec_np.shape[0]):
        if not np.any(spec_np[b]):
            out[b] = 0.0  # a silent clip has no direct path (WPE would divide by zero power)
            continue
        out[b] = wpe_stft(spec_np[b][:, None, :], cfg)[:, 0, :]
    direct = istft(torch.from_numpy(out), cfg.n_fft, cfg.hop_length, length=n)
    return direct, w.to(direct.dtype) - direct
