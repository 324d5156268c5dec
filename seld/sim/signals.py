"""Signal building blocks of the procedural sounds (:mod:`seld.sim.sounds`): resonators, band-limited
noise, harmonic tones, envelopes and event trains, mono float64 ``(num_samples,)`` at ``sr`` Hz.

Each takes its randomness from the ``rng`` it is given, so a sound drawn from one generator state is
the same whatever else is drawn around it.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def resonator_coeffs(freq: float, bandwidth: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-pole resonator with unit gain at ``freq`` (numerator, denominator)."""
    r = float(np.exp(-np.pi * bandwidth / sr))
    theta = 2.0 * np.pi * freq / sr
    a = np.array([1.0, -2.0 * r * np.cos(theta), r * r])
    # Normalise the peak gain: |A(e^{j theta})| at the resonance.
    gain = abs(np.polyval(a[::-1], np.exp(-1j * theta)))
    return np.array([gain]), a


def resonate(x: np.ndarray, freq: float, bandwidth: float, sr: int) -> np.ndarray:
    b, a = resonator_coeffs(min(freq, 0.45 * sr), bandwidth, sr)
    return lfilter(b, a, x)


def formant_filter(x: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray, sr: int) -> np.ndarray:
    """Parallel formant resonators with amplitudes falling by ~6 dB per formant."""
    out = np.zeros_like(x)
    for k, (f, bw) in enumerate(zip(formants, bandwidths)):
        out += (0.5**k) * resonate(x, float(f), float(bw), sr)
    return out


def bandpass_noise(rng: np.random.Generator, n: int, lo: float, hi: float, sr: int, tilt: float = 0.0) -> np.ndarray:
    """White noise restricted to ``[lo, hi]`` Hz in the FFT domain, magnitude ~ f^-tilt."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    mask = ((freqs >= lo) & (freqs <= hi)).astype(np.float64)
    if tilt:
        mask *= np.maximum(freqs, 1.0) ** (-tilt)
    out = np.fft.irfft(spec * mask, n)
    std = out.std()
    return out / std if std > 0 else out


def harmonic_tone(
    f0: np.ndarray,
    sr: int,
    amps: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sum of harmonics ``k * f0(t)`` with amplitudes ``amps[k-1]``, muted above 0.45 * sr."""
    phase = 2.0 * np.pi * np.cumsum(f0) / sr
    out = np.zeros_like(phase)
    f0_max = float(np.max(f0))
    for k, amp in enumerate(amps, start=1):
        if k * f0_max >= 0.45 * sr:
            break
        out += amp * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return out


def rolloff(num: int, db_per_octave: float) -> np.ndarray:
    k = np.arange(1, num + 1, dtype=np.float64)
    return k ** (-db_per_octave / 6.02)


def ramp_envelope(n: int, attack: int, release: int) -> np.ndarray:
    """Raised-cosine attack and release over ``n`` samples."""
    env = np.ones(n)
    attack = min(attack, n // 2)
    release = min(release, n - attack)
    if attack > 0:
        env[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    if release > 0:
        env[n - release :] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, release + 1) / release)
    return env


def decay(n: int, tau_s: float, sr: int, attack_s: float = 0.001) -> np.ndarray:
    """Exponential decay with time constant ``tau_s`` and a short linear attack."""
    t = np.arange(n) / sr
    env = np.exp(-t / tau_s)
    a = max(1, int(attack_s * sr))
    env[:a] *= np.arange(a) / a
    return env


def place(out: np.ndarray, template: np.ndarray, starts: np.ndarray, amps: np.ndarray) -> np.ndarray:
    """Add ``amp * template`` at each start sample (clipped to ``out``); returns ``out``."""
    n = out.shape[0]
    for s, a in zip(starts, amps):
        s = int(s)
        if s >= n or s + template.shape[0] <= 0:
            continue
        lo = max(0, -s)
        hi = min(template.shape[0], n - s)
        out[s + lo : s + hi] += a * template[lo:hi]
    return out


def jittered_times(rng: np.random.Generator, n: int, sr: int, period_s: float, jitter: float) -> np.ndarray:
    """Sample indices of a quasi-periodic train starting within the first period."""
    times = []
    t = rng.uniform(0.0, period_s)
    while t < n / sr:
        times.append(t)
        t += period_s * (1.0 + jitter * rng.standard_normal())
    return (np.asarray(times) * sr).astype(np.int64)


def midi_to_hz(m: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)
