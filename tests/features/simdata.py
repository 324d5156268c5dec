"""Tiny simulated stereo clips and DCASE-layout datasets for the feature tests.

A source at azimuth ``az`` recorded by the coincident pair of spec section 1 gives
L = (1 + sin az) s, R = (1 - sin az) s for the direct sound; reverberation is a noise tail with
an exponential decay of the requested RT60, the same in both channels (diffuse, W only).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from seld.constants import CLIP_SAMPLES, SAMPLE_RATE
from seld.data.audio import write_stereo
from seld.data.metadata import Event, write_metadata_csv


def exponential_rir(rt60: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A noise room impulse response: unit direct path + tail decaying 60 dB in ``rt60`` s."""
    n = int(rt60 * sample_rate * 1.2)
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * 10 ** (-3.0 * t / rt60) * 0.15
    tail[: int(0.003 * sample_rate)] = 0.0
    tail[0] = 1.0
    return tail


def panned_clip(
    azimuth_deg: float,
    rng: np.random.Generator,
    rt60: float | None = None,
    num_samples: int = CLIP_SAMPLES,
    active: tuple[float, float] = (0.5, 4.5),
) -> np.ndarray:
    """Stereo float32 ``(2, num_samples)``: band noise active during ``active`` seconds."""
    s = rng.standard_normal(num_samples)
    s = np.convolve(s, np.ones(4) / 4, mode="same")  # mild low-pass, still broadband
    t = np.arange(num_samples) / SAMPLE_RATE
    s *= (t >= active[0]) & (t < active[1])
    sin_az = np.sin(np.deg2rad(azimuth_deg))
    dry_l, dry_r = (1 + sin_az) * s, (1 - sin_az) * s
    if rt60 is not None:
        rir = exponential_rir(rt60, rng)
        tail = fftconvolve(s, rir)[:num_samples] - s  # reverberant part only
        dry_l, dry_r = dry_l + tail, dry_r + tail
    audio = np.stack([dry_l, dry_r])
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32)


def write_dataset(root: Path, splits: dict[str, int], seed: int = 0) -> list[tuple[str, str, float]]:
    """Write ``splits`` = {split: num clips} in the DCASE layout; returns (split, stem, az) per clip."""
    rng = np.random.default_rng(seed)
    written = []
    for split, count in splits.items():
        for i in range(count):
            az = float(rng.uniform(-80, 80))
            stem = f"fold3_room{i % 3}_mix{i:03d}"
            audio = panned_clip(az, rng, rt60=float(rng.uniform(0.2, 0.8)))
            write_stereo(root / "stereo_dev" / split / f"{stem}.wav", audio)
            cls = int(rng.integers(13))
            dist = int(rng.integers(100, 400))
            events = [Event(f, cls, 0, round(az), dist) for f in range(5, 45)]
            write_metadata_csv(root / "metadata_dev" / split / f"{stem}.csv", events)
            written.append((split, stem, az))
    return written
