"""DCASE2025 metadata CSVs: typed event records, azimuth folding, a validating reader and a writer.

CSV format (spec section 1): header ``frame,class,source,azimuth,distance,onscreen``, all integers,
one row per active event per 100 ms frame; azimuth in degrees (0 front, positive left), distance
in centimetres. Header-only files (silent clips) are valid.
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


def read_metadata_csv(
    path: str | os.PathLike[str], *, num_frames: int | None = None, fold: bool = True
) -> list[Event]:
    """Read a DCASE2025 metadata CSV into events (azimuth folded to the front when ``fold``).

    Raises DataError naming the file and line for a bad header, wrong column count, non-integer
    value, class out of range, negative distance, or a frame outside ``0..num_frames-1``.
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
        azimuth = fold_azimuth(az) if fold else float(az)
        try:
            events.append(Event(frame, cls, src, float(azimuth), float(dist), onscreen))
        except ValueError as exc:
            raise DataError(f"{p}:{line_no}: {exc}") from None
    return events


def format_metadata_csv(events: Iterable[Event]) -> str:
    """CSV text for ``events``: sorted by frame, class, source; azimuth and distance rounded to int."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(METADATA_HEADER)
    for e in sorted(events, key=lambda e: (e.frame, e.class_idx, e.source)):
        writer.writerow(
            [e.frame, e.class_idx, e.source, int(round(e.azimuth)), int(round(e.distance_cm)), e.onscreen]
        )
    return buf.getvalue()


def write_metadata_csv(path: str | os.PathLike[str], events: Iterable[Event]) -> Path:
    """Write ``events`` as a DCASE2025 CSV (atomically); returns the path."""
    p = Path(path)
    atomic_write_text(p, format_metadata_csv(events))
    return p
