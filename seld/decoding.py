"""Multi-ACCDOA decoding (spec section 2): model outputs -> per-frame events -> DCASE2025 CSVs.

A track of one class is active when the length of its (x, y) vector exceeds ``threshold``
(default 0.5). Active tracks of one class whose directions are closer than ``merge_deg``
(default 15 degrees, full-circle angle between the (x, y) vectors, as in the official baseline)
are merged: two similar tracks become their mean (plus the third track if it is active); when
two or more pairs are similar, all three are averaged into one. The mean is taken over the
(x, y) vectors and distances; azimuth = atan2(y, x) in degrees; distance is clamped >= 0 and
stored in centimetres. ``source`` is the track id (the lowest id of a merged group).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from seld.constants import (
    NUM_CLASSES,
    NUM_DUMMY_TRACKS,
    NUM_TARGET_VALUES,
    NUM_TRACKS,
    OUTPUT_DIM,
    OUTPUT_VALUES,
)
from seld.data.metadata import Event, write_metadata_csv

DEFAULT_THRESHOLD: float = 0.5
DEFAULT_MERGE_DEG: float = 15.0

# Each (mean of tracks, emitted source id). The pair (2, 0) reports source 0: the lowest track id.
_PAIRS: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (2, 0))
_THIRD: dict[tuple[int, int], int] = {(0, 1): 2, (1, 2): 0, (2, 0): 1}


def _to_numpy(output: Any) -> np.ndarray:
    """A float64 numpy copy of a numpy array or torch tensor (detached, on CPU)."""
    if hasattr(output, "detach"):
        output = output.detach().cpu().numpy()
    return np.asarray(output, dtype=np.float64)


def unflatten_output_np(output: np.ndarray) -> np.ndarray:
    """``(..., 117)`` -> ``(..., 3 tracks, 3 values, 13 classes)``: :func:`seld.accdoa.unflatten_output` for numpy.

    Kept here so that decoding and scoring do not import torch (tests check both agree).
    """
    return output.reshape(*output.shape[:-1], NUM_TRACKS, OUTPUT_VALUES, NUM_CLASSES)


def flatten_output_np(tracks: np.ndarray) -> np.ndarray:
    """``(..., 3, 3, 13)`` -> ``(..., 117)``: :func:`seld.accdoa.flatten_output` for numpy."""
    return tracks.reshape(*tracks.shape[:-3], OUTPUT_DIM)


def _angle_deg(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray) -> np.ndarray:
    """Angle in degrees between the 2-D vectors (x1, y1) and (x2, y2), elementwise."""
    n1 = np.sqrt(x1**2 + y1**2 + 1e-10)
    n2 = np.sqrt(x2**2 + y2**2 + 1e-10)
    cos = np.clip((x1 * x2 + y1 * y2) / (n1 * n2), -1.0, 1.0)
    return np.rad2deg(np.arccos(cos))


def decode_output(
    output: Any, threshold: float = DEFAULT_THRESHOLD, merge_deg: float = DEFAULT_MERGE_DEG
) -> list[Event]:
    """Return the events of one clip's activated output ``(T, 117)`` sorted by (frame, class, source).

    ``output`` is a numpy array or torch tensor with tanh-activated x, y and ReLU distance in
    metres (see :mod:`seld.accdoa`). Raises ValueError on a wrong shape or non-finite values.
    """
    out = _to_numpy(output)
    if out.ndim != 2 or out.shape[1] != OUTPUT_DIM:
        raise ValueError(f"decode_output expects one clip's output (frames, {OUTPUT_DIM}), got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"decode_output: output of shape {out.shape} holds NaN or infinite values")
    tracks = unflatten_output_np(out)  # (T, 3 tracks, 3 values, 13 classes)
    x, y = tracks[:, :, 0, :], tracks[:, :, 1, :]  # (T, 3, 13)
    dist = np.maximum(tracks[:, :, 2, :], 0.0)
    active = np.sqrt(x**2 + y**2) > threshold

    similar = {
        (i, j): active[:, i] & active[:, j]
        & (_angle_deg(x[:, i], y[:, i], x[:, j], y[:, j]) < merge_deg)
        for i, j in _PAIRS
    }
    n_similar = sum(s.astype(np.int64) for s in similar.values())  # (T, 13)

    # Candidates: (mask (T, 13), tracks averaged, source id)
    candidates: list[tuple[np.ndarray, tuple[int, ...], int]] = []
    for k in range(NUM_TRACKS):
        # a track is reported alone if nothing is merged, or if the one merged pair excludes it
        pair_without_k = next(p for p, third in _THIRD.items() if third == k)
        alone = active[:, k] & ((n_similar == 0) | ((n_similar == 1) & similar[pair_without_k]))
        candidates.append((alone, (k,), k))
    for pair in _PAIRS:
        candidates.append(((n_similar == 1) & similar[pair], pair, min(pair)))
    candidates.append((n_similar >= 2, (0, 1, 2), 0))

    rows: list[tuple[int, int, int, float, float]] = []
    for mask, group, source in candidates:
        frames, classes = np.nonzero(mask)
        if frames.size == 0:
            continue
        idx = list(group)
        mx = x[frames, :, classes][:, idx].mean(axis=1)
        my = y[frames, :, classes][:, idx].mean(axis=1)
        md = dist[frames, :, classes][:, idx].mean(axis=1)
        az = np.rad2deg(np.arctan2(my, mx))
        for f, c, a, d in zip(frames.tolist(), classes.tolist(), az.tolist(), md.tolist()):
            rows.append((f, c, source, a, d * 100.0))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return [Event(f, c, s, a, d) for f, c, s, a, d in rows]


def decode_batch(
    output: Any, threshold: float = DEFAULT_THRESHOLD, merge_deg: float = DEFAULT_MERGE_DEG
) -> list[list[Event]]:
    """Return per-clip event lists for a batch of activated outputs ``(B, T, 117)``."""
    out = _to_numpy(output)
    if out.ndim != 3 or out.shape[2] != OUTPUT_DIM:
        raise ValueError(f"decode_batch expects (batch, frames, {OUTPUT_DIM}), got shape {out.shape}")
    return [decode_output(o, threshold, merge_deg) for o in out]


def target_to_output(target: Any) -> np.ndarray:
    """Return a perfect activated output ``(T, 117)`` float32 for an ADPIT target ``(T, 6, 4, 13)``.

    The tracks follow one of the ADPIT permutations, so :func:`seld.losses.adpit_loss` of the
    result is zero: one source -> A0 A0 A0; two -> B0 B1 B0; three -> C0 C1 C2 (inactive classes
    are zeros). Decoding merges the duplicated tracks back into one event per source.
    """
    t = _to_numpy(target)
    expected = (NUM_DUMMY_TRACKS, NUM_TARGET_VALUES, NUM_CLASSES)
    if t.ndim != 4 or t.shape[1:] != expected:
        raise ValueError(f"target_to_output expects (frames, {', '.join(map(str, expected))}), got shape {t.shape}")
    values = t[:, :, 0:1, :] * t[:, :, 1:4, :]  # (T, 6 dummy tracks, [x, y, dist], 13), zero when inactive
    a0, b0, b1, c0, c1, c2 = (values[:, i] for i in range(NUM_DUMMY_TRACKS))
    # a valid target fills one group per (frame, class), so the sums pick that group's tracks
    tracks = np.stack([a0 + b0 + c0, a0 + b1 + c1, a0 + b0 + c2], axis=1)  # (T, 3, 3, 13)
    return flatten_output_np(tracks).astype(np.float32)


def quantize_events(events: Sequence[Event]) -> list[Event]:
    """Return ``events`` rounded exactly as a DCASE2025 CSV stores them (integer degrees and cm).

    Scoring these gives the same numbers as writing the CSV and reading it back.
    """
    return [
        Event(e.frame, e.class_idx, e.source, float(int(round(e.azimuth))), float(int(round(e.distance_cm))), e.onscreen)
        for e in events
    ]


def write_prediction_csvs(
    out_dir: str | os.PathLike[str],
    clip_ids: Sequence[str],
    outputs: Any,
    threshold: float = DEFAULT_THRESHOLD,
    merge_deg: float = DEFAULT_MERGE_DEG,
    progress: bool = False,
) -> list[Path]:
    """Decode each clip's output ``(T, 117)`` and write ``out_dir/<clip_id>.csv``; returns the paths.

    ``outputs`` is a ``(B, T, 117)`` array/tensor or a sequence of ``(T, 117)`` arrays aligned
    with ``clip_ids``. Files are written atomically with integer azimuth and distance in cm.
    """
    if len(clip_ids) != len(outputs):
        raise ValueError(f"write_prediction_csvs: {len(clip_ids)} clip ids but {len(outputs)} outputs")
    out_path = Path(out_dir)
    out_path.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for clip_id, output in tqdm(
        zip(clip_ids, outputs), total=len(clip_ids), desc="write CSVs", disable=not progress
    ):
        name = Path(str(clip_id)).stem
        events = decode_output(output, threshold, merge_deg)
        paths.append(write_metadata_csv(out_path / f"{name}.csv", events))
    return paths
