"""Scenes of the simulator and their stereo audio (spec section 7).

A clip is a scene in a shoebox room of the dataset's pool (:mod:`seld.sim.rooms`): up to
``max_polyphony`` overlapping static events of the 13 procedural classes (:mod:`seld.sim.sounds`),
recorded by the coincident W/Y pair and mixed to stereo, plus a diffuse noise floor.
:func:`render_clip` draws clip ``index`` of a dataset from ``(seed, index, config)`` alone;
:func:`render_single_source` renders one source at a known position (tests and benchmarks).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.signal import fftconvolve

from seld.constants import CLIP_SAMPLES, LABEL_FRAMES, LABEL_HOP_SECONDS, NUM_CLASSES, SAMPLE_RATE
from seld.data.metadata import Event, fold_azimuth
from seld.sim.rooms import (
    STREAM_CLIP,
    Room,
    RoomConfig,
    check_range,
    coincident_rirs,
    diffuse_noise,
    distance_to_walls,
    sample_room,
    unit_vector,
    wy_to_stereo,
)
from seld.sim.sounds import synthesize_event

FRAME_SAMPLES: int = int(round(LABEL_HOP_SECONDS * SAMPLE_RATE))  # 2400


# ---------------------------------------------------------------- config
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
        check_range("events_per_clip", self.events_per_clip, lo=0)
        check_range("duration_s", self.duration_s, lo=LABEL_HOP_SECONDS, hi=LABEL_FRAMES * LABEL_HOP_SECONDS)
        if self.max_polyphony < 1:
            raise ValueError(f"'max_polyphony' must be >= 1, got {self.max_polyphony}")
        if not 0.0 <= self.same_class_overlap_prob <= 1.0:
            raise ValueError(f"'same_class_overlap_prob' must be in [0, 1], got {self.same_class_overlap_prob}")
        check_range("distance_m", self.distance_m, lo=0.05)
        check_range("elevation_deg", self.elevation_deg, lo=-80.0, hi=80.0)
        check_range("gain_db", self.gain_db)
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
        check_range("snr_db", self.snr_db)
        check_range("noise_slope", self.noise_slope, lo=0.0, hi=3.0)
        check_range("peak", self.peak, lo=1e-3)
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


def load_synth_config(path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None) -> SynthConfig:
    """The generator config from YAML ``path`` (defaults when None) plus ``a.b=value`` overrides."""
    from seld.config import load_config

    return load_config(path, SynthConfig, overrides)


# ---------------------------------------------------------------- scene records
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


# ---------------------------------------------------------------- scenes
def clip_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of clip ``index``: independent of every other clip and of the worker count."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(STREAM_CLIP, index)))


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
            direction = unit_vector(az, el)
            reach = min(cfg.distance_m[1], distance_to_walls(mic, direction, dims, room_cfg.source_wall_margin_m))
            if reach < cfg.distance_m[0]:
                continue
            if all(abs(fold_azimuth(az) - o) >= cfg.min_separation_deg for o in others):
                break
        else:
            # A cramped room or many overlaps: give up on the separation, keep a position that fits.
            while reach < cfg.distance_m[0]:
                az, el = float(rng.uniform(-180.0, 180.0)), 0.0
                direction = unit_vector(az, el)
                reach = min(cfg.distance_m[1], distance_to_walls(mic, direction, dims, room_cfg.source_wall_margin_m))
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
    source = mic + distance_m * unit_vector(azimuth_deg, elevation_deg)
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
