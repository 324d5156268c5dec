"""Simulated DCASE2025-style stereo SELD data (spec section 7).

A clip is a scene in a pyroomacoustics shoebox room: up to ``max_polyphony`` overlapping static
events of the 13 procedural classes (:mod:`seld.data.sounds`), recorded by a coincident pair at
one point, an omni (W) and a figure-of-eight along +y (Y, positive to the left), mixed to stereo
as L = W + Y, R = W - Y like the DCASE2025 stereo set, plus a diffuse noise floor.

Room acoustics. The image-source method (pyroomacoustics, ``ism`` only: its directional
microphones work with image sources, not with ray tracing) gives the direct path and the early
reflections up to ``room.early_reflections_ms``; pyroomacoustics applies the signed
figure-of-eight gain ``cos(angle to +y)`` to every image source, so one image-source computation
serves both capsules. The full image-source model to an RT60 of 0.9 s needs orders above 100
(millions of images, seconds per source), so, as in gpuRIR, the late part is a diffuse tail:
Gaussian noise decaying by 60 dB over the room's RT60, its level matched to the image-source
energy at the junction, independent in W and Y, with the Y tail at 1/3 of the W power (the
figure-of-eight's response to a diffuse field).

Layout written by :func:`generate_dataset` (``fold`` prefixes from the config)::

    <out>/stereo_dev/dev-train-synth/fold3_room<R>_mix<MMM>.wav   <out>/metadata_dev/dev-train-synth/....csv
    <out>/stereo_dev/dev-test-synth/fold4_room<R>_mix<MMM>.wav    <out>/metadata_dev/dev-test-synth/....csv
    <out>/synth_config.yml      seed, clip count and the resolved config (checked when resuming)

Every clip is a pure function of ``(seed, clip index, config)``, so serial, parallel and resumed
runs write identical files.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.signal import fftconvolve

from seld.config import dump_config, to_dict
from seld.constants import (
    CLIP_SAMPLES,
    LABEL_FRAMES,
    LABEL_HOP_SECONDS,
    NUM_CLASSES,
    SAMPLE_RATE,
    SHORT_CLASS_NAMES,
    SYNTH_TEST_SPLIT,
    SYNTH_TRAIN_SPLIT,
)
from seld.data.audio import write_stereo
from seld.data.layout import audio_dir, metadata_dir
from seld.data.metadata import Event, fold_azimuth, read_metadata_csv, write_metadata_csv
from seld.data.sounds import synthesize_event
from seld.errors import ConfigError, DataError
from seld.io_utils import atomic_write_text

SPEED_OF_SOUND: float = 343.0
"""m/s, used for image-source orders; pyroomacoustics' own default is the same."""
FRAME_SAMPLES: int = int(round(LABEL_HOP_SECONDS * SAMPLE_RATE))  # 2400
_STREAM_CLIP, _STREAM_ROOM = 0, 1
STAMP_NAME = "synth_config.yml"


def _check_range(name: str, value: Sequence[float], lo: float | None = None, hi: float | None = None) -> None:
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"'{name}' must be [min, max] with min <= max, got {list(value)}")
    if lo is not None and value[0] < lo:
        raise ValueError(f"'{name}' must be >= {lo}, got {list(value)}")
    if hi is not None and value[1] > hi:
        raise ValueError(f"'{name}' must be <= {hi}, got {list(value)}")


# ---------------------------------------------------------------- config
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
            _check_range(name, getattr(self, name), lo=0.0)
        _check_range("rt60_s", self.rt60_s, lo=0.05)
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


@dataclass
class EventConfig:
    """Sound events: how many, how long, where, and how they overlap."""

    events_per_clip: list[int] = field(default_factory=lambda: [1, 6])
    duration_s: list[float] = field(default_factory=lambda: [0.5, 3.0])
    max_polyphony: int = 3
    same_class_overlap_prob: float = 0.15
    allow_cut_at_edges: bool = True
    min_separation_deg: float = 20.0
    distance_m: list[float] = field(default_factory=lambda: [0.5, 4.0])
    elevation_deg: list[float] = field(default_factory=lambda: [-15.0, 15.0])
    gain_db: list[float] = field(default_factory=lambda: [-8.0, 0.0])
    classes: list[int] = field(default_factory=lambda: list(range(NUM_CLASSES)))

    def __post_init__(self) -> None:
        _check_range("events_per_clip", self.events_per_clip, lo=0)
        _check_range("duration_s", self.duration_s, lo=LABEL_HOP_SECONDS, hi=LABEL_FRAMES * LABEL_HOP_SECONDS)
        if self.max_polyphony < 1:
            raise ValueError(f"'max_polyphony' must be >= 1, got {self.max_polyphony}")
        if not 0.0 <= self.same_class_overlap_prob <= 1.0:
            raise ValueError(f"'same_class_overlap_prob' must be in [0, 1], got {self.same_class_overlap_prob}")
        _check_range("distance_m", self.distance_m, lo=0.05)
        _check_range("elevation_deg", self.elevation_deg, lo=-80.0, hi=80.0)
        _check_range("gain_db", self.gain_db)
        if not self.classes or any(not 0 <= c < NUM_CLASSES for c in self.classes):
            raise ValueError(
                f"'classes' must be a non-empty list of indices in 0..{NUM_CLASSES - 1}, got {self.classes}"
            )


@dataclass
class MixConfig:
    """Noise floor and output level."""

    snr_db: list[float] = field(default_factory=lambda: [15.0, 35.0])
    noise_slope: list[float] = field(default_factory=lambda: [0.5, 1.5])
    peak: list[float] = field(default_factory=lambda: [0.3, 0.9])
    peak_limit: float = 0.9999

    def __post_init__(self) -> None:
        _check_range("snr_db", self.snr_db)
        _check_range("noise_slope", self.noise_slope, lo=0.0, hi=3.0)
        _check_range("peak", self.peak, lo=1e-3)
        if not 0 < self.peak_limit <= 1.0:
            raise ValueError(f"'peak_limit' must be in (0, 1], got {self.peak_limit}")
        if self.peak[1] >= self.peak_limit:
            raise ValueError(f"'peak' {self.peak} must stay below 'peak_limit' {self.peak_limit}")


@dataclass
class SynthConfig:
    """Simulated dataset generator (``configs/synth.yml`` documents every key)."""

    room: RoomConfig = field(default_factory=RoomConfig)
    events: EventConfig = field(default_factory=EventConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    test_fraction: float = 0.25
    train_fold: int = 3
    test_fold: int = 4

    def __post_init__(self) -> None:
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(f"'test_fraction' must be in [0, 1), got {self.test_fraction}")
        if self.train_fold < 0 or self.test_fold < 0:
            raise ValueError(f"folds must be >= 0, got train_fold={self.train_fold}, test_fold={self.test_fold}")


# ---------------------------------------------------------------- scene records
@dataclass(frozen=True)
class Room:
    """A shoebox room of the dataset's pool."""

    index: int
    dims_m: tuple[float, float, float]
    rt60_s: float


@dataclass(frozen=True)
class SceneEvent:
    """One static sound event; frames ``onset_frame .. offset_frame - 1`` (may start before 0)."""

    class_idx: int
    source: int
    onset_frame: int
    offset_frame: int
    position_m: tuple[float, float, float]
    azimuth_deg: float
    """True azimuth on the full circle, 0 = front (+x), positive = left (+y)."""
    elevation_deg: float
    distance_m: float
    gain_db: float

    @property
    def num_frames(self) -> int:
        return self.offset_frame - self.onset_frame

    def label_frames(self) -> range:
        return range(max(0, self.onset_frame), min(LABEL_FRAMES, self.offset_frame))


@dataclass(frozen=True)
class Scene:
    """A clip's room, microphone position and events."""

    room: Room
    mic_m: tuple[float, float, float]
    events: tuple[SceneEvent, ...]

    def label_events(self) -> list[Event]:
        """The clip's metadata rows: azimuth folded to the front and rounded, distance in integer cm."""
        rows = []
        for ev in self.events:
            az = float(round(fold_azimuth(ev.azimuth_deg)))
            dist = float(round(ev.distance_m * 100.0))
            rows.extend(Event(f, ev.class_idx, ev.source, az, dist) for f in ev.label_frames())
        return sorted(rows, key=lambda e: (e.frame, e.class_idx, e.source))


# ---------------------------------------------------------------- randomness
def clip_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of clip ``index``: independent of every other clip and of the worker count."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(_STREAM_CLIP, index)))


def sample_room(seed: int, index: int, cfg: RoomConfig) -> Room:
    """Room ``index`` of the pool drawn from ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(_STREAM_ROOM, index)))
    dims = (
        float(rng.uniform(*cfg.length_m)),
        float(rng.uniform(*cfg.width_m)),
        float(rng.uniform(*cfg.height_m)),
    )
    return Room(index, dims, float(rng.uniform(*cfg.rt60_s)))


def _distance_to_walls(mic: np.ndarray, direction: np.ndarray, dims: np.ndarray, margin: float) -> float:
    """How far a ray from ``mic`` along the unit ``direction`` stays ``margin`` inside the box."""
    limits = []
    for axis in range(3):
        d = direction[axis]
        if d > 1e-12:
            limits.append((dims[axis] - margin - mic[axis]) / d)
        elif d < -1e-12:
            limits.append((mic[axis] - margin) / -d)
    return float(min(limits))


def _direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


def _place_events(rng: np.random.Generator, cfg: EventConfig) -> list[tuple[int, int]]:
    """(onset, offset) frames of the clip's events, never more than ``max_polyphony`` at once."""
    count = int(rng.integers(cfg.events_per_clip[0], cfg.events_per_clip[1] + 1))
    lo = max(1, int(round(cfg.duration_s[0] / LABEL_HOP_SECONDS)))
    hi = max(lo, int(round(cfg.duration_s[1] / LABEL_HOP_SECONDS)))
    occupancy = np.zeros(LABEL_FRAMES, dtype=np.int64)
    spans: list[tuple[int, int]] = []
    for _ in range(count):
        for _attempt in range(30):
            dur = int(rng.integers(lo, hi + 1))
            if cfg.allow_cut_at_edges:  # at least half of the event inside the clip
                onset = int(rng.integers(-(dur // 2), LABEL_FRAMES - (dur + 1) // 2 + 1))
            else:
                onset = int(rng.integers(0, LABEL_FRAMES - dur + 1))
            a, b = max(0, onset), min(LABEL_FRAMES, onset + dur)
            if occupancy[a:b].max() < cfg.max_polyphony:
                occupancy[a:b] += 1
                spans.append((onset, onset + dur))
                break
    return spans


def sample_scene(rng: np.random.Generator, room: Room, cfg: EventConfig, room_cfg: RoomConfig) -> Scene:
    """A random scene in ``room``: microphone position, event spans, classes, instance ids, positions."""
    dims = np.asarray(room.dims_m)
    m = room_cfg.mic_wall_margin_m
    mic = np.array(
        [
            rng.uniform(m, dims[0] - m),
            rng.uniform(m, dims[1] - m),
            rng.uniform(*room_cfg.mic_height_m),
        ]
    )
    events: list[SceneEvent] = []
    for onset, offset in _place_events(rng, cfg):
        overlapping = [e for e in events if e.onset_frame < offset and onset < e.offset_frame]
        if overlapping and rng.random() < cfg.same_class_overlap_prob:
            cls = overlapping[int(rng.integers(len(overlapping)))].class_idx
        else:
            cls = int(cfg.classes[int(rng.integers(len(cfg.classes)))])
        used = {e.source for e in overlapping if e.class_idx == cls}
        source = next(i for i in range(len(used) + 1) if i not in used)
        others = [fold_azimuth(e.azimuth_deg) for e in overlapping]
        for _attempt in range(100):
            az = float(rng.uniform(-180.0, 180.0))
            el = float(rng.uniform(*cfg.elevation_deg))
            direction = _direction(az, el)
            reach = min(cfg.distance_m[1], _distance_to_walls(mic, direction, dims, room_cfg.source_wall_margin_m))
            if reach < cfg.distance_m[0]:
                continue
            if all(abs(fold_azimuth(az) - o) >= cfg.min_separation_deg for o in others):
                break
        else:
            # A cramped room or many overlaps: give up on the separation, keep a position that fits.
            while reach < cfg.distance_m[0]:
                az, el = float(rng.uniform(-180.0, 180.0)), 0.0
                direction = _direction(az, el)
                reach = min(cfg.distance_m[1], _distance_to_walls(mic, direction, dims, room_cfg.source_wall_margin_m))
        dist = float(rng.uniform(cfg.distance_m[0], reach))
        pos = mic + dist * direction
        events.append(
            SceneEvent(
                class_idx=cls,
                source=source,
                onset_frame=onset,
                offset_frame=offset,
                position_m=tuple(float(v) for v in pos),
                azimuth_deg=az,
                elevation_deg=el,
                distance_m=float(np.linalg.norm(pos - mic)),
                gain_db=float(rng.uniform(*cfg.gain_db)),
            )
        )
    return Scene(room, tuple(float(v) for v in mic), tuple(events))


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


def render_scene(scene: Scene, rng: np.random.Generator, cfg: SynthConfig) -> np.ndarray:
    """The clip's stereo audio: float32 ``(2, 120000)`` [L, R], peak inside ``cfg.mix.peak``."""
    pre = max([0] + [-e.onset_frame * FRAME_SAMPLES for e in scene.events])
    total = pre + CLIP_SAMPLES
    wy = np.zeros((2, total))
    active = np.zeros(CLIP_SAMPLES, dtype=bool)
    if scene.events:
        rirs = coincident_rirs(
            scene.room.dims_m,
            scene.mic_m,
            [e.position_m for e in scene.events],
            scene.room.rt60_s,
            rng,
            cfg.room.early_reflections_ms,
        )
        for ev, rir in zip(scene.events, rirs):
            dry = synthesize_event(ev.class_idx, ev.num_frames * FRAME_SAMPLES, rng) * 10.0 ** (ev.gain_db / 20.0)
            start = pre + ev.onset_frame * FRAME_SAMPLES
            wet = fftconvolve(dry[None, :].astype(np.float64), rir.astype(np.float64), axes=-1)
            stop = min(total, start + wet.shape[1])
            wy[:, start:stop] += wet[:, : stop - start]
            frames = ev.label_frames()
            if len(frames):
                active[frames.start * FRAME_SAMPLES : frames.stop * FRAME_SAMPLES] = True
    wy = wy[:, pre:]
    noise = diffuse_noise(rng, CLIP_SAMPLES, float(rng.uniform(*cfg.mix.noise_slope)))
    snr_db = float(rng.uniform(*cfg.mix.snr_db))
    if active.any():
        signal_power = float(np.mean(wy[0, active] ** 2))
        noise *= math.sqrt(signal_power / 10.0 ** (snr_db / 10.0))
    else:  # a silent clip: only the noise floor, about 60 dB below full scale
        noise *= 1e-3
    wy += noise
    stereo = wy_to_stereo(wy)
    target = min(float(rng.uniform(*cfg.mix.peak)), cfg.mix.peak_limit * 0.999)
    if active.any():
        stereo *= target / float(np.abs(stereo).max())
    return stereo.astype(np.float32)


def render_clip(seed: int, index: int, cfg: SynthConfig) -> tuple[np.ndarray, list[Event], Scene]:
    """Clip ``index`` of the dataset drawn from ``seed``: (audio ``(2, 120000)``, metadata rows, scene)."""
    rng = clip_rng(seed, index)
    room = sample_room(seed, int(rng.integers(cfg.room.num_rooms)), cfg.room)
    scene = sample_scene(rng, room, cfg.events, cfg.room)
    audio = render_scene(scene, rng, cfg)
    return audio, scene.label_events(), scene


def render_single_source(
    azimuth_deg: float,
    distance_m: float,
    room_dim: Sequence[float] = (8.0, 6.0, 3.0),
    rt60: float | None = None,
    signal: np.ndarray | None = None,
    *,
    seed: int = 0,
    class_idx: int = 2,
    elevation_deg: float = 0.0,
    mic_position: Sequence[float] | None = None,
    num_samples: int = CLIP_SAMPLES,
    peak: float | None = 0.5,
    early_reflections_ms: float = 60.0,
) -> np.ndarray:
    """Stereo [L, R] float32 ``(2, num_samples)`` of one static source at a known azimuth and distance.

    The microphone sits at ``mic_position`` (default: room centre, 1.5 m high or mid-height) facing
    +x; ``azimuth_deg`` is positive to the left. ``signal`` (mono, any length) defaults to a
    ``class_idx`` event filling the clip drawn from ``seed``. ``rt60=None`` is anechoic. ``peak``
    rescales the output to that peak; None keeps the physical level (1/r spreading, no noise).
    Raises ValueError when the source falls outside the room.
    """
    dims = np.asarray(room_dim, dtype=np.float64)
    if dims.shape != (3,) or np.any(dims <= 0):
        raise ValueError(f"room_dim must be 3 positive lengths in metres, got {list(room_dim)}")
    mic = (
        np.array([dims[0] / 2, dims[1] / 2, min(1.5, dims[2] / 2)])
        if mic_position is None
        else np.asarray(mic_position, dtype=np.float64)
    )
    source = mic + distance_m * _direction(azimuth_deg, elevation_deg)
    if np.any(source <= 0) or np.any(source >= dims) or np.any(mic <= 0) or np.any(mic >= dims):
        raise ValueError(
            f"source at azimuth {azimuth_deg} deg, distance {distance_m} m from the microphone at "
            f"{mic.round(2).tolist()} lies outside the room {dims.tolist()} m"
        )
    rng = np.random.default_rng(seed)
    if signal is None:
        signal = synthesize_event(class_idx, num_samples, rng)
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1:
        raise ValueError(f"signal must be mono (samples,), got shape {signal.shape}")
    (rir,) = coincident_rirs(dims, mic, [source], rt60, rng, early_reflections_ms)
    wy = fftconvolve(signal[None, :], rir.astype(np.float64), axes=-1)[:, :num_samples]
    if wy.shape[1] < num_samples:
        wy = np.pad(wy, ((0, 0), (0, num_samples - wy.shape[1])))
    stereo = wy_to_stereo(wy)
    if peak is not None:
        top = float(np.abs(stereo).max())
        stereo = stereo * (peak / top if top > 0 else 0.0)
    return stereo.astype(np.float32)


# ---------------------------------------------------------------- the dataset
@dataclass(frozen=True)
class ClipJob:
    """Where clip ``index`` goes."""

    index: int
    split: str
    stem: str
    wav_path: Path
    csv_path: Path


@dataclass
class SynthReport:
    """What a :func:`generate_dataset` run did."""

    out_dir: Path
    generated: int
    skipped: int
    num_train: int
    num_test: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"{self.out_dir}: {self.generated} clips generated, {self.skipped} already present "
            f"({self.num_train} train, {self.num_test} test) in {self.seconds:.1f} s"
        )


def num_test_clips(num_clips: int, test_fraction: float) -> int:
    """Test clips among ``num_clips``: round(N * fraction), at least 1 (N >= 2, fraction > 0), at most N - 1."""
    if num_clips < 2 or test_fraction <= 0:
        return 0
    return int(min(num_clips - 1, max(1, round(num_clips * test_fraction))))


def plan_clips(out_dir: Path, num_clips: int, seed: int, cfg: SynthConfig) -> list[ClipJob]:
    """The file of every clip; test clips are spread evenly over the indices."""
    n_test = num_test_clips(num_clips, cfg.test_fraction)
    width = max(3, len(str(num_clips)))
    jobs = []
    for i in range(num_clips):
        is_test = (i + 1) * n_test // num_clips > i * n_test // num_clips
        split, fold = (SYNTH_TEST_SPLIT, cfg.test_fold) if is_test else (SYNTH_TRAIN_SPLIT, cfg.train_fold)
        room = int(clip_rng(seed, i).integers(cfg.room.num_rooms)) + 1  # same draw as render_clip
        stem = f"fold{fold}_room{room}_mix{i + 1:0{width}d}"
        wav = audio_dir(out_dir, split) / f"{stem}.wav"
        jobs.append(ClipJob(i, split, stem, wav, metadata_dir(out_dir, split) / f"{stem}.csv"))
    return jobs


def write_clip(job: ClipJob, seed: int, cfg: SynthConfig) -> int:
    """Render and write one clip: the WAV first, then the CSV, each atomically (a CSV implies a WAV)."""
    audio, events, _ = render_clip(seed, job.index, cfg)
    write_stereo(job.wav_path, audio)
    write_metadata_csv(job.csv_path, events)
    return job.index


def _is_finished(job: ClipJob) -> bool:
    return job.csv_path.is_file() and job.wav_path.is_file()


def _check_stamp(out_dir: Path, stamp: str) -> None:
    path = out_dir / STAMP_NAME
    if path.is_file() and path.read_text(encoding="utf-8") != stamp:
        raise ConfigError(
            f"{path}: {out_dir} holds a simulated set made with another seed, clip count or config; "
            "resume with the same settings, or use a new --out folder"
        )
    if not path.is_file():
        atomic_write_text(path, stamp)


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Delete temporary files of writes that a killed run left behind (``.<name>.<random>.tmp``)."""
    for split in (SYNTH_TRAIN_SPLIT, SYNTH_TEST_SPLIT):
        for folder in (audio_dir(out_dir, split), metadata_dir(out_dir, split)):
            if folder.is_dir():
                for tmp in folder.glob(".fold*.tmp"):
                    tmp.unlink(missing_ok=True)


_WORKER: dict = {}


def _init_worker(seed: int, cfg: SynthConfig) -> None:
    _WORKER["seed"], _WORKER["cfg"] = seed, cfg


def _worker_write(job: ClipJob) -> int:
    return write_clip(job, _WORKER["seed"], _WORKER["cfg"])


def generate_dataset(
    out_dir: str | os.PathLike[str],
    num_clips: int,
    seed: int,
    cfg: SynthConfig | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> SynthReport:
    """Write ``num_clips`` simulated clips in the DCASE2025 layout under ``out_dir``; skip finished ones.

    ``workers`` processes (default: CPU count; 1 = in this process) render clips in parallel.
    Raises ConfigError when ``out_dir`` holds a set made with different settings.
    """
    from tqdm import tqdm

    cfg = cfg or SynthConfig()
    if num_clips < 0:
        raise ConfigError(f"number of clips must be >= 0, got {num_clips}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    out = Path(out_dir)
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    _check_stamp(out, dump_config({"seed": int(seed), "num_clips": int(num_clips), "config": to_dict(cfg)}))
    _remove_stale_temporaries(out)
    jobs = plan_clips(out, num_clips, int(seed), cfg)
    for split in (SYNTH_TRAIN_SPLIT, SYNTH_TEST_SPLIT):
        audio_dir(out, split).mkdir(parents=True, exist_ok=True)
        metadata_dir(out, split).mkdir(parents=True, exist_ok=True)
    pending = [j for j in jobs if not _is_finished(j)]
    skipped = len(jobs) - len(pending)
    workers = max(1, min(workers or os.cpu_count() or 1, len(pending) or 1))
    bar = tqdm(total=len(jobs), initial=skipped, desc="synth", unit="clip", disable=not progress)
    try:
        if workers == 1:
            for job in pending:
                write_clip(job, int(seed), cfg)
                bar.update(1)
        else:
            # fork (Linux) needs no `if __name__ == "__main__"` guard in the caller's script and starts
            # fast; the workers use no OpenMP/torch, only numpy/scipy FFTs and pyroomacoustics (1 thread).
            methods = mp.get_all_start_methods()
            ctx = mp.get_context("fork" if "fork" in methods else "spawn")
            pool = ctx.Pool(workers, initializer=_init_worker, initargs=(int(seed), cfg))
            with pool:
                for _ in pool.imap_unordered(_worker_write, pending, chunksize=1):
                    bar.update(1)
    finally:
        bar.close()
    n_test = sum(j.split == SYNTH_TEST_SPLIT for j in jobs)
    return SynthReport(out, len(pending), skipped, len(jobs) - n_test, n_test, time.perf_counter() - t0)


def load_synth_config(path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None) -> SynthConfig:
    """The generator config from YAML ``path`` (defaults when None) plus ``a.b=value`` overrides."""
    from seld.config import load_config

    return load_config(path, SynthConfig, overrides)


# ---------------------------------------------------------------- summary
def _event_segments(events: list[Event]) -> list[tuple[int, int, int]]:
    """(class, source, frames) for each run of consecutive frames of one (class, source, position)."""
    by_key: dict[tuple, list[int]] = defaultdict(list)
    for e in events:
        by_key[(e.class_idx, e.source, e.azimuth, e.distance_cm)].append(e.frame)
    segments = []
    for (cls, src, _, _), frames in by_key.items():
        frames.sort()
        start = prev = frames[0]
        for f in frames[1:] + [None]:
            if f is None or f != prev + 1:
                segments.append((cls, src, prev - start + 1))
                if f is not None:
                    start = f
            if f is not None:
                prev = f
    return segments


def summarize_dataset(root: str | os.PathLike[str]) -> str:
    """A printable table of a simulated set: clips per split, events per class, polyphony, azimuths, distances."""
    root = Path(root)
    lines: list[str] = []
    splits = [s for s in (SYNTH_TRAIN_SPLIT, SYNTH_TEST_SPLIT) if audio_dir(root, s).is_dir()]
    if not splits:
        raise DataError(f"{root}: no {SYNTH_TRAIN_SPLIT} or {SYNTH_TEST_SPLIT} folder under stereo_dev/")
    class_events: Counter = Counter()
    class_frames: Counter = Counter()
    polyphony: Counter = Counter()
    same_class_frames = 0
    azimuths: list[float] = []
    distances: list[float] = []
    lines.append(f"Simulated SELD set at {root}")
    for split in splits:
        wavs = sorted(audio_dir(root, split).glob("*.wav"))
        labelled = 0
        for wav in wavs:
            csv = metadata_dir(root, split) / f"{wav.stem}.csv"
            if not csv.is_file():
                continue
            labelled += 1
            events = read_metadata_csv(csv, num_frames=LABEL_FRAMES)
            per_frame = Counter(e.frame for e in events)
            for f in range(LABEL_FRAMES):
                polyphony[per_frame.get(f, 0)] += 1
            per_frame_class = Counter((e.frame, e.class_idx) for e in events)
            same_class_frames += sum(1 for v in per_frame_class.values() if v > 1)
            for cls, _, n in _event_segments(events):
                class_events[cls] += 1
                class_frames[cls] += n
            azimuths += [e.azimuth for e in events]
            distances += [e.distance_m for e in events]
        lines.append(f"  {split:<16} {len(wavs):>6} clips ({labelled} labelled)")
    lines.append("")
    lines.append(f"  {'class':<20} {'events':>7} {'seconds':>8}")
    for c in range(NUM_CLASSES):
        seconds = class_frames[c] * LABEL_HOP_SECONDS
        lines.append(f"  {c:>2} {SHORT_CLASS_NAMES[c]:<17} {class_events[c]:>7} {seconds:>8.1f}")
    total_frames = sum(polyphony.values())
    lines.append("")
    lines.append("  polyphony (share of 100 ms frames): " + ", ".join(
        f"{k}: {polyphony[k] / max(total_frames, 1):.2f}" for k in sorted(polyphony)
    ))
    lines.append(f"  frames with two or more events of one class: {same_class_frames}")
    if azimuths:
        lines.append(f"  azimuth (folded) {min(azimuths):.0f} .. {max(azimuths):.0f} deg")
        lines.append(f"  distance {min(distances):.2f} .. {max(distances):.2f} m")
    return "\n".join(lines)
