"""Shoebox rooms of the simulator and the impulse responses of its coincident microphone pair.

A clip is recorded at one point by an omni (W) and a figure-of-eight along +y (Y, positive to the
left), mixed to stereo as L = W + Y, R = W - Y like the DCASE2025 stereo set
(:func:`wy_to_stereo`).

Room acoustics. The image-source method (pyroomacoustics, ``ism`` only: its directional
microphones work with image sources, not with ray tracing) gives the direct path and the early
reflections up to ``room.early_reflections_ms``; pyroomacoustics applies the signed
figure-of-eight gain ``cos(angle to +y)`` to every image source, so one image-source computation
serves both capsules. The full image-source model to an RT60 of 0.9 s needs orders above 100
(millions of images, seconds per source), so, as in gpuRIR, the late part is a diffuse tail:
Gaussian noise decaying by 60 dB over the room's RT60, its level matched to the image-source
energy at the junction, independent in W and Y, with the Y tail at 1/3 of the W power (the
figure-of-eight's response to a diffuse field).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from seld.constants import SAMPLE_RATE

SPEED_OF_SOUND: float = 343.0
"""m/s, used for image-source orders; pyroomacoustics' own default is the same."""
STREAM_CLIP, STREAM_ROOM = 0, 1
"""``SeedSequence`` spawn keys of a dataset seed's two random streams: one per clip
(:func:`seld.sim.scenes.clip_rng`) and one per room of the pool (:func:`sample_room`)."""


def check_range(name: str, value: Sequence[float], lo: float | None = None, hi: float | None = None) -> None:
    """ValueError naming ``name`` unless ``value`` is ``[min, max]`` with ``lo <= min <= max <= hi``."""
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"'{name}' must be [min, max] with min <= max, got {list(value)}")
    if lo is not None and value[0] < lo:
        raise ValueError(f"'{name}' must be >= {lo}, got {list(value)}")
    if hi is not None and value[1] > hi:
        raise ValueError(f"'{name}' must be <= {hi}, got {list(value)}")


# ---------------------------------------------------------------- rooms
@dataclass
class RoomConfig:
    """Shoebox rooms: a pool of ``num_rooms`` rooms per dataset, each clip in one of them."""

    num_rooms: int = 10
    length_m: list[float] = field(default_factory=lambda: [4.0, 10.0])
    width_m: list[float] = field(default_factory=lambda: [3.5, 8.0])
    height_m: list[float] = field(default_factory=lambda: [2.5, 4.0])
    rt60_s: list[float] = field(default_factory=lambda: [0.2, 0.9])
    mic_height_m: list[float] = field(default_factory=lambda: [1.2, 1.8])
    mic_wall_margin_m: float = 1.0
    source_wall_margin_m: float = 0.3
    early_reflections_ms: float = 60.0

    def __post_init__(self) -> None:
        if self.num_rooms < 1:
            raise ValueError(f"'num_rooms' must be >= 1, got {self.num_rooms}")
        for name in ("length_m", "width_m", "height_m", "mic_height_m"):
            check_range(name, getattr(self, name), lo=0.0)
        check_range("rt60_s", self.rt60_s, lo=0.05)
        smallest = min(self.length_m[0], self.width_m[0])
        if 2 * self.mic_wall_margin_m >= smallest:
            raise ValueError(
                f"'mic_wall_margin_m' = {self.mic_wall_margin_m} leaves no room for the microphone "
                f"in a {smallest} m wide room"
            )
        if self.mic_height_m[1] >= self.height_m[0] - self.source_wall_margin_m:
            raise ValueError(f"'mic_height_m' {self.mic_height_m} does not fit under 'height_m' {self.height_m}")
        if self.early_reflections_ms <= 0:
            raise ValueError(f"'early_reflections_ms' must be > 0, got {self.early_reflections_ms}")


@dataclass(frozen=True)
class Room:
    """A shoebox room of the dataset's pool."""

    index: int
    dims_m: tuple[float, float, float]
    rt60_s: float


def sample_room(seed: int, index: int, cfg: RoomConfig) -> Room:
    """Room ``index`` of the pool drawn from ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(STREAM_ROOM, index)))
    dims = (
        float(rng.uniform(*cfg.length_m)),
        float(rng.uniform(*cfg.width_m)),
        float(rng.uniform(*cfg.height_m)),
    )
    return Room(index, dims, float(rng.uniform(*cfg.rt60_s)))


def distance_to_walls(mic: np.ndarray, direction: np.ndarray, dims: np.ndarray, margin: float) -> float:
    """How far a ray from ``mic`` along the unit ``direction`` stays ``margin`` inside the box."""
    limits = []
    for axis in range(3):
        d = direction[axis]
        if d > 1e-12:
            limits.append((dims[axis] - margin - mic[axis]) / d)
        elif d < -1e-12:
            limits.append((mic[axis] - margin) / -d)
    return float(min(limits))


def unit_vector(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """The unit vector toward ``azimuth_deg`` (0 = +x, positive toward +y) and ``elevation_deg``."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


# ---------------------------------------------------------------- acoustics
def _early_order(dims: Sequence[float], early_s: float) -> int:
    """Image-source order that contains every reflection arriving within ``early_s``.

    Same geometry as pyroomacoustics' ``inverse_sabine``: the largest sphere inside the diamond of
    image rooms of order N has radius N * min(l1 * l2 / sqrt(l1^2 + l2^2)).
    """
    radii = [a * b / math.hypot(a, b) for a, b in ((dims[0], dims[1]), (dims[0], dims[2]), (dims[1], dims[2]))]
    return int(math.ceil(SPEED_OF_SOUND * early_s / min(radii))) + 1


def coincident_rirs(
    room_dim: Sequence[float],
    mic: Sequence[float],
    sources: Sequence[Sequence[float]],
    rt60: float | None,
    rng: np.random.Generator,
    early_reflections_ms: float = 60.0,
    sample_rate: int = SAMPLE_RATE,
) -> list[np.ndarray]:
    """Impulse responses of the coincident W (omni) / Y (figure-of-eight, +y) pair: float32 ``(2, taps)`` per source.

    ``rt60=None`` gives an anechoic room (direct path only). Otherwise image sources up to
    ``early_reflections_ms`` plus a diffuse exponential tail reaching -60 dB after ``rt60`` s.
    """
    import pyroomacoustics as pra
    from pyroomacoustics.directivities import CardioidFamily, DirectionVector

    dims = [float(d) for d in room_dim]
    if rt60 is None:
        room = pra.ShoeBox(dims, fs=sample_rate, max_order=0, air_absorption=False)
    else:
        absorption, _ = pra.inverse_sabine(float(rt60), dims, c=SPEED_OF_SOUND)
        order = _early_order(dims, early_reflections_ms / 1000.0)
        room = pra.ShoeBox(
            dims, fs=sample_rate, materials=pra.Material(float(absorption)), max_order=order, air_absorption=False
        )
    # p = 0 in the cardioid family is a figure-of-eight; its response cos(angle to +y) is signed.
    figure_of_eight = CardioidFamily(orientation=DirectionVector(azimuth=90.0, colatitude=90.0, degrees=True), p=0.0)
    position = np.asarray(mic, dtype=np.float64).reshape(3, 1)
    pair = np.concatenate([position, position], axis=1)
    room.add_microphone_array(pra.MicrophoneArray(pair, sample_rate, directivity=[None, figure_of_eight]))
    for src in sources:
        room.add_source(np.asarray(src, dtype=np.float64))
    # One thread: pyroomacoustics' multi-threaded RIR builder sums image sources in a varying
    # order, which changes the last bits of the RIR and breaks bit-exact reproducibility.
    threads = pra.constants.get("num_threads")
    pra.constants.set("num_threads", 1)
    try:
        room.compute_rir()
    finally:
        pra.constants.set("num_threads", threads)

    out = []
    for s in range(len(sources)):
        w, y = np.asarray(room.rir[0][s], np.float64), np.asarray(room.rir[1][s], np.float64)
        n = max(w.shape[0], y.shape[0])
        rir = np.zeros((2, n))
        rir[0, : w.shape[0]], rir[1, : y.shape[0]] = w, y
        if rt60 is not None:
            rir = _add_diffuse_tail(rir, float(rt60), early_reflections_ms / 1000.0, rng, sample_rate)
        out.append(rir.astype(np.float32))
    return out


def _add_diffuse_tail(rir: np.ndarray, rt60: float, early_s: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Replace everything after ``early_s`` (+ the 40-sample fractional-delay offset) by a decaying diffuse tail."""
    import pyroomacoustics as pra

    start = int(round(early_s * sr)) + pra.constants.get("frac_delay_length") // 2
    fade = int(0.005 * sr)
    window = int(0.02 * sr)
    decay = 3.0 * math.log(10.0) / rt60  # amplitude decays 60 dB (x 1e-3) in rt60 seconds
    length = start + int(math.ceil(rt60 * sr))
    out = np.zeros((2, length))
    early = rir[:, :start]
    out[:, : early.shape[1]] = early
    # Tail level: the image-source energy just before the junction, corrected for the decay across the window.
    seg_start = max(0, start - window)
    seg = rir[0, seg_start:start]
    t_win = (np.arange(seg_start, seg_start + seg.shape[0]) - start) / sr
    expected = np.mean(np.exp(-2.0 * decay * t_win))
    level = math.sqrt(float(np.mean(seg**2)) / expected) if seg.size else 0.0
    n_tail = length - start + fade
    t = (np.arange(n_tail) - fade) / sr
    env = level * np.exp(-decay * np.maximum(t, 0.0))
    env[:fade] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    tail = rng.standard_normal((2, n_tail)) * env
    tail[1] /= math.sqrt(3.0)  # figure-of-eight picks up 1/3 of a diffuse field's power
    out[:, start - fade : start] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    out[:, start - fade :] += tail
    return out


def diffuse_noise(
    rng: np.random.Generator, num_samples: int, slope: float, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Diffuse noise at the W/Y pair: float64 ``(2, n)``, power spectrum ~ 1/f^slope, Y at 1/3 of W's power."""
    freqs = np.fft.rfftfreq(num_samples, 1.0 / sample_rate)
    shape = np.maximum(freqs, 20.0) ** (-slope / 2.0)
    shape[freqs < 20.0] = 0.0
    spec = np.fft.rfft(rng.standard_normal((2, num_samples)), axis=-1) * shape
    noise = np.fft.irfft(spec, num_samples, axis=-1)
    noise /= noise.std(axis=-1, keepdims=True) + 1e-12
    noise[1] /= math.sqrt(3.0)
    return noise


def wy_to_stereo(wy: np.ndarray) -> np.ndarray:
    """Stereo ``(2, n)`` [L, R] = [W + Y, W - Y] from ``(2, n)`` [W, Y]."""
    return np.stack([wy[0] + wy[1], wy[0] - wy[1]])
