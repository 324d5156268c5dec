"""The authors' distance features in numpy / librosa, as a reference for ``direct_logmel``,
``reverb_logmel`` and ``drr_logmel`` (``get_distance_feats`` of ShreJais/TextEncodersForSELD,
features/feature_extraction.py, with the WPE output given).

``python -m tests.features.authors_distance`` prints how far textseld's channels are from this
formula with ``wpe.reverb: stft_domain`` and ``time_domain`` (the default), and how far the
definition before ``wpe.reverb`` was, on simulated rooms of RT60 0.2-0.9 s.
"""
from __future__ import annotations

import librosa
import numpy as np
import torch

from seld.constants import SAMPLE_RATE
from seld.features.config import FeatureConfig
from seld.features.stft import stft
from seld.features.wpe import wpe
from seld.sim.scenes import render_single_source

ROOMS = ((30.0, 2.0, 0.2), (-60.0, 3.0, 0.5), (80.0, 1.5, 0.7), (-10.0, 2.5, 0.9))
"""(azimuth deg, distance m, RT60 s) of the simulated clips."""

STFT_ARGS = dict(n_fft=1024, hop_length=480, win_length=960, center=True)
"""The feature STFT of :class:`~seld.features.params.StftConfig` in librosa's words."""


def room_clips(num_samples: int = 120000) -> np.ndarray:
    """Stereo float32 ``(len(ROOMS), 2, num_samples)`` of one source per room (pyroomacoustics)."""
    return np.stack([render_single_source(az, dist, rt60=rt, seed=i, class_idx=2 + i, num_samples=num_samples)
                     for i, (az, dist, rt) in enumerate(ROOMS)])


def peak_normalized(audio: np.ndarray) -> np.ndarray:
    """float64 ``audio (..., 2, n)`` divided by each clip's peak (as the feature config does)."""
    x = audio.astype(np.float64)
    return x / np.abs(x).max(axis=(-2, -1), keepdims=True)


def authors_logmel(psd: np.ndarray) -> np.ndarray:
    """The authors' ``get_Logmel``: dB of librosa's Slaney mel of ``psd (F, T)`` -> ``(T, 64)``."""
    mel = librosa.feature.melspectrogram(S=psd, sr=SAMPLE_RATE, n_mels=64)
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).T


def _logmels(direct_stft: np.ndarray, reverb_stft: np.ndarray) -> dict[str, np.ndarray]:
    direct_psd, reverb_psd = np.abs(direct_stft) ** 2, np.abs(reverb_stft) ** 2
    direct_psd = np.clip(direct_psd, 1e-100, direct_psd.max())
    reverb_psd = np.clip(reverb_psd, 1e-100, reverb_psd.max())
    return {
        "direct_logmel": authors_logmel(direct_psd),
        "reverb_logmel": authors_logmel(reverb_psd),
        "drr_logmel": authors_logmel(direct_psd / (reverb_psd + 1e-8)),
    }


def authors_distance_logmels(audio: np.ndarray, direct_stft: np.ndarray) -> dict[str, np.ndarray]:
    """direct / reverb / drr log-mels ``(T + 1, 64)`` of ``audio (2, n)`` (peak-normalised here,
    n a multiple of the 480 hop) whose mid signal's WPE output is ``direct_stft (513, T + 1)``:
    Rev = STFT(w - ISTFT(D))."""
    x = peak_normalized(audio)
    w = (x[0] + x[1]) / 2
    reverb_w = w - librosa.istft(direct_stft, window="hann", **STFT_ARGS)
    return _logmels(direct_stft, librosa.stft(reverb_w, pad_mode="constant", **STFT_ARGS))


def stft_domain_logmels(audio: np.ndarray, direct_stft: np.ndarray) -> dict[str, np.ndarray]:
    """The same with Rev = STFT(w) - D bin by bin (``wpe.reverb: stft_domain``)."""
    x = peak_normalized(audio)
    spec = librosa.stft((x[0] + x[1]) / 2, pad_mode="constant", **STFT_ARGS)
    return _logmels(direct_stft, spec - direct_stft)


def mid_wpe(audio: np.ndarray, cfg: FeatureConfig, device: str = "cpu") -> np.ndarray:
    """textseld's WPE output for the clips ``audio (B, 2, n)`` in one call: ``(B, 513, T + 1)``.

    The WPE input is formed as the feature front end forms it, (STFT(l) + STFT(r)) / 2, which
    is STFT(w) up to rounding: WPE's conditioning amplifies that rounding to up to 5e-5 dB in
    the DC band of the RT60 0.9 s clip, a property of WPE, not of the formula under test.
    """
    x = torch.from_numpy(peak_normalized(audio)).to(device)
    spec = stft(x, cfg.stft.n_fft, cfg.stft.hop_length, cfg.stft.win_length)
    return wpe(0.5 * (spec[:, 0] + spec[:, 1]), cfg.wpe).cpu().numpy()


def _row(label: str, name: str, diff: np.ndarray) -> str:
    q = np.quantile(diff, [0.5, 0.99])
    return f"{label:<26} {name:<14} {q[0]:9.2e} {q[1]:9.2e} {diff.max():9.2e}"


def main() -> None:
    from seld.features.extract import compute_batch_features

    names = ["direct_logmel", "reverb_logmel", "drr_logmel"]
    audio = room_clips()
    cfg = FeatureConfig()
    # WPE clip by clip, as the CPU front end runs it with one thread (a batched call rounds differently)
    refs = [authors_distance_logmels(a, mid_wpe(a[None], cfg)[0]) for a in audio]

    def diff(values: np.ndarray, name: str) -> np.ndarray:
        return np.concatenate([np.abs(values[i] - ref[name][: values.shape[1]]).ravel() for i, ref in enumerate(refs)])

    print(f"{len(audio)} clips of 5 s, RT60 {', '.join(f'{r[2]:g}' for r in ROOMS)} s; "
          "|textseld - authors' formula| in dB")
    print(f"{'definition':<26} {'channel':<14} {'median':>9} {'p99':>9} {'max':>9}")
    for mode in ("stft_domain", "time_domain"):
        cfg.wpe.reverb = mode
        ours = compute_batch_features(audio, names, cfg)
        for name in names:
            print(_row(f"wpe.reverb: {mode}", name, diff(ours[name], name)))
        if mode == "stft_domain":  # before wpe.reverb: this Rev and the DRR as a difference of dB
            old_drr = ours["direct_logmel"] - ours["reverb_logmel"]
            print(_row("before (dB D - dB Rev)", "drr_logmel", diff(old_drr, "drr_logmel")))


if __name__ == "__main__":
    main()
