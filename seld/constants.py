"""Constants of the DCASE2025 Task 3 stereo SELD format (spec sections 1-2).

One source of truth: every module imports these instead of repeating the numbers.
"""
from __future__ import annotations

SAMPLE_RATE: int = 24_000
"""Audio sample rate in Hz."""
NUM_CHANNELS: int = 2
"""Stereo: channel 0 is left, channel 1 is right."""
CLIP_SECONDS: float = 5.0
CLIP_SAMPLES: int = int(SAMPLE_RATE * CLIP_SECONDS)  # 120000

LABEL_HOP_SECONDS: float = 0.1
"""Label resolution: one metadata frame per 100 ms."""
LABEL_FRAMES: int = 50
"""Label frames per 5 s clip (frames 0..49)."""

NUM_CLASSES: int = 13
NUM_TRACKS: int = 3
"""Output tracks per class in multi-ACCDOA."""
NUM_DUMMY_TRACKS: int = 6
"""ADPIT dummy tracks: A0, B0, B1, C0, C1, C2."""
NUM_TARGET_VALUES: int = 4
"""Per dummy track and class: [activity, x, y, distance (m)]."""
OUTPUT_VALUES: int = 3
"""Per output track and class: [x, y, distance (m)]."""
OUTPUT_DIM: int = NUM_TRACKS * OUTPUT_VALUES * NUM_CLASSES  # 117

CLASS_NAMES: tuple[str, ...] = (
    "Female speech, woman speaking",
    "Male speech, man speaking",
    "Clapping",
    "Telephone",
    "Laughter",
    "Domestic sounds",
    "Walk, footsteps",
    "Door, open or close",
    "Music",
    "Musical instrument",
    "Water tap, faucet",
    "Bell",
    "Knock",
)
SHORT_CLASS_NAMES: tuple[str, ...] = (
    "woman",
    "man",
    "clapping",
    "telephone",
    "laughter",
    "domestic sounds",
    "footsteps",
    "door",
    "music",
    "musical instrument",
    "water tap",
    "bell",
    "knock",
)

METADATA_HEADER: tuple[str, ...] = ("frame", "class", "source", "azimuth", "distance", "onscreen")

DEV_SPLITS: tuple[str, ...] = ("dev-train-sony", "dev-train-tau", "dev-test-sony", "dev-test-tau")
SYNTH_TRAIN_SPLIT: str = "dev-train-synth"
SYNTH_TEST_SPLIT: str = "dev-test-synth"
