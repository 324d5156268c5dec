"""DCASE2025 metadata CSVs: typed event records, azimuth folding, a validating reader and a writer.

CSV format (spec section 1): header ``frame,class,source,azimuth,distance,onscreen``, all integers,
one row per active event per 100 ms frame; azimuth in degrees in [-90, 90] (0 front, positive
left), distance in centimetres. Header-only files (silent clips) are valid.

Azimuth range and folding:

* A **label** CSV (reference metadata) must hold azimuths in [-90, 90]: DCASE2025 stereo labels
  are already folded to the front half-plane, so no DCASE2025 label value needs folding (folding
  leaves [-90, 90] unchanged). A value outside, e.g. 200, is a broken file and stops with an error
  naming the file and line instead of being folded silently.
* A **prediction** CSV (``predictions=True``, what ``seld evaluate`` reads from ``--pred``) may
  hold any azimuth in [-180, 180] (e.g. atan2 of a model's x, y); it is folded to the front, as
  the official metric folds predictions (spec section 3).
* The writer folds before rounding, so every CSV textseld writes (labels and predictions) is in
  [-90, 90].
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from seld.constants import METADATA_HEADER, NUM_CLASSES
from seld.errors import DataError
from seld.io_utils import atomic_write_text


def fold_azimuth(azimuth_deg: float | np.ndarray) -> float | np.ndarray:
    """Fold azimuth(s) in degrees to the front half-plane [-90, 90] (stereo front/back ambiguity).

    Wrap to [-180, 180), then az > 90 -> 180 - az and az < -90 -> -180 - az.
    """
    az = np.asarray(azimuth_deg, dtype=np.float64)
    wrapped = (az + 180.0) % 360.0 - 180.0
    folded = np.where(wrapped > 90.0, 180.0 - wrapped, wrapped)
    folded = np.where(folded < -90.0, -180.0 - folded, folded)
    if np.ndim(azimuth_deg) == 0:
        return float(folded)
    return folded


@dataclass(frozen=True)
class Event:
    """One active sound event in one 100 ms label frame."""

    frame: int
    class_idx: int
    source: int
    azimuth: float
    """Degrees, 0 = front, positive = left."""
    distance_cm: float
    onscreen: int = 0

    def __post_init__(self) -> None:
        if self.frame < 0:
            raise ValueError(f"frame must be >= 0, got {self.frame}")
        if not 0 <= self.class_idx < NUM_CLASSES:
            raise ValueError(f"class must be in 0..{NUM_CLASSES - 1}, got {self.class_idx}")
        if self.source < 0:
            raise ValueError(f"source must be >= 0, got {self.source}")
        if not np.isfinite(self.azimuth):
            raise ValueError(f"azimuth must be finite, got {self.azimuth}")
        if not (np.isfinite(self.distance_cm) and self.distance_cm >= 0):
            raise ValueError(f"distance must be >= 0 cm, got {self.distance_cm}")

    @property
    def distance_m(self) -> float:
        return self.distance_cm / 100.0


def _parse_int(text: str, column: str, path: Path, line: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        try:
            value = float(text.strip())
        except ValueError:
            raise DataError(f"{path}:{line}: column '{column}' is not an integer: {text!r}") from None
        if not value.is_integer():
            raise DataError(f"{path}:{line}: column '{column}' is not an integer: {text!r}")
        return int(value)


LABEL_AZIMUTH_LIMIT: float = 90.0
"""Label azimuths lie in [-90, 90] degrees (DCASE2025 stereo: front half-plane)."""
PREDICTION_AZIMUTH_LIMIT: float = 180.0
"""Prediction azimuths may lie anywhere in [-180, 180] degrees; they are folded when read."""


def read_metadata_csv(
    path: str | os.PathLike[str], *, num_frames: int | None = None, predictions: bool = False
) -> list[Event]:
    """Read a DCASE2025 metadata CSV into events.

    Labels (default): an azimuth outside [-90, 90] is an error (nothing is folded). With
    ``predictions=True`` azimuths in [-180, 180] are accepted and folded to [-90, 90].
    Raises DataError naming the file and line for a bad header, wrong column count, non-integer
    value, class out of range, azimuth out of range, negative distance, or a frame outside
    ``0..num_frames-1``.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: cannot read metadata CSV: {exc}") from exc
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise DataError(f"{p}: empty file, expected the header {','.join(METADATA_HEADER)}")
    header = [h.strip() for h in rows[0]]
    if tuple(header) != METADATA_HEADER:
        raise DataError(f"{p}:1: header is {','.join(header)!r}, expected {','.join(METADATA_HEADER)!r}")
    events: list[Event] = []
    for line_no, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(METADATA_HEADER):
            raise DataError(f"{p}:{line_no}: expected {len(METADATA_HEADER)} columns, got {len(row)}")
        frame, cls, src, az, dist, onscreen = (
            _parse_int(v, c, p, line_no) for v, c in zip(row, METADATA_HEADER)
        )
        if num_frames is not None and not 0 <= frame < num_frames:
            raise DataError(f"{p}:{line_no}: frame {frame} outside 0..{num_frames - 1}")
        limit = PREDICTION_AZIMUTH_LIMIT if predictions else LABEL_AZIMUTH_LIMIT
        if not -limit <= az <= limit:
            what = "prediction" if predictions else "label (DCASE2025 stereo labels are front-folded; nothing is folded)"
            raise DataError(f"{p}:{line_no}: azimuth {az} outside [{-limit:g}, {limit:g}] for a {what}")
        azimuth = fold_azimuth(az) if predictions else float(az)
        try:
            events.append(Event(frame, cls, src, float(azimuth), float(dist), onscreen))
        except ValueError as exc:
            raise DataError(f"{p}:{line_no}: {exc}") from None
    return events


def format_metadata_csv(events: Iterable[Event]) -> str:
    """CSV text for ``events``: sorted by frame, class, source; azimuth folded to [-90, 90], azimuth
    and distance rounded to int."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(METADATA_HEADER)
    for e in sorted(events, key=lambda e: (e.frame, e.class_idx, e.source)):
        writer.writerow(
            [e.frame, e.class_idx, e.source, int(round(fold_azimuth(e.azimuth))), int(round(e.distance_cm)),
             e.onscreen]
        )
    return buf.getvalue()


def write_metadata_csv(path: str | os.PathLike[str], events: Iterable[Event]) -> Path:
    """Write ``events`` as a DCASE2025 CSV (atomically); returns the path."""
    p = Path(path)
    atomic_write_text(p, format_metadata_csv(events))
    return p
