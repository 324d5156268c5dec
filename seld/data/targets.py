"""Multi-ACCDOA ADPIT targets (spec section 2).

Target per clip: ``(frames, 6 dummy tracks, 4 values, 13 classes)``, values
``[activity, x = cos az, y = sin az, distance in metres]``. Per frame and class, one event fills
track A0 (index 0); two fill B0, B1 (1, 2); three or more fill C0, C1, C2 (3..5). Events of one
(frame, class) keep the order of their CSV rows: with four or more, the first three rows in file
order are kept and the rest dropped, as the official DCASE2025 baseline's label code does (so our
targets equal the baseline's). Each event keeps its own azimuth and distance.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np

from seld.constants import LABEL_FRAMES, NUM_CLASSES, NUM_DUMMY_TRACKS, NUM_TARGET_VALUES
from seld.data.metadata import Event

TRACK_SLOTS: dict[int, tuple[int, ...]] = {1: (0,), 2: (1, 2), 3: (3, 4, 5)}
"""Dummy-track indices used when a (frame, class) has 1, 2 or 3+ events."""


def build_adpit_target(events: Iterable[Event], num_frames: int = LABEL_FRAMES) -> np.ndarray:
    """Return the float32 ADPIT target ``(num_frames, 6, 4, 13)`` for a clip's events.

    Events at frames >= ``num_frames`` are ignored; events of one (frame, class) fill their tracks
    in the order given (file order for :func:`seld.data.metadata.read_metadata_csv`), and a fourth
    or later one is dropped.
    """
    target = np.zeros((num_frames, NUM_DUMMY_TRACKS, NUM_TARGET_VALUES, NUM_CLASSES), dtype=np.float32)
    groups: dict[tuple[int, int], list[Event]] = defaultdict(list)
    for e in events:
        if 0 <= e.frame < num_frames:
            groups[(e.frame, e.class_idx)].append(e)
    for (frame, cls), group in groups.items():
        group = group[:3]  # first three in file order (the baseline's choice), not by source id
        for slot, e in zip(TRACK_SLOTS[len(group)], group):
            rad = np.deg2rad(e.azimuth)
            target[frame, slot, :, cls] = (1.0, np.cos(rad), np.sin(rad), e.distance_cm / 100.0)
    return target


def target_to_events(target: np.ndarray) -> list[Event]:
    """Inverse of :func:`build_adpit_target`: the events a target encodes.

    Azimuth and distance are rounded to whole degrees and centimetres, as the DCASE2025 CSV the
    target was built from stores them: scoring these events equals scoring the CSV (an unrounded
    azimuth such as 54.99999 made a prediction exactly 20 degrees off a miss in validation but a
    hit in ``seld evaluate``).
    """
    if target.ndim != 4 or target.shape[1:] != (NUM_DUMMY_TRACKS, NUM_TARGET_VALUES, NUM_CLASSES):
        raise ValueError(f"target must be (frames, 6, 4, 13), got {tuple(target.shape)}")
    events: list[Event] = []
    frames, slots, classes = np.nonzero(target[:, :, 0, :] > 0.5)
    for f, s, c in zip(frames.tolist(), slots.tolist(), classes.tolist()):
        _, x, y, d = target[f, s, :, c]
        source = {0: 0, 1: 0, 2: 1, 3: 0, 4: 1, 5: 2}[s]
        az = float(round(float(np.rad2deg(np.arctan2(y, x)))))
        events.append(Event(f, c, source, az, float(round(d * 100.0))))
    return events
