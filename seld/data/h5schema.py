"""The HDF5 layout of the feature files: names, dtypes and format version, with their readers and writers.

Per-clip file ``<features>/clips/<split>/<clip_id>.h5`` (:mod:`seld.features.extract` computes it):

* one float32 dataset ``(T, n_mels)`` per feature channel, named after it (T = 250 for 5 s);
* ``target``: the float32 ADPIT target ``(50, 6, 4, 13)`` (all zeros for an unlabelled clip);
* attributes ``clip_id``, ``split``, ``audio_path``, ``channels`` (names in order), ``has_labels``,
  ``feature_params`` (JSON of the settings the numbers depend on), ``format_version`` and, written
  last, ``complete = True``.

Merged file ``<features>/<split>.h5`` (:mod:`seld.features.merge`; read by
:class:`seld.data.dataset.SeldDataset` and the normalisation statistics):

* ``features``: float32 ``(N, C, T, n_mels)``, chunked ``(1, C, T, n_mels)`` and uncompressed, so
  reading one clip is one contiguous read;
* ``targets``: float32 ``(N, 50, 6, 4, 13)``, chunked per clip;
* ``clip_ids`` and ``audio_paths``: variable-length UTF-8 strings ``(N,)`` (the index, sorted by id);
* attributes ``channels`` (names in the order of axis 1), ``split``, ``feature_params``,
  ``label_frames``, ``format_version``.

``format_version`` names this layout (names, dtypes, axes): a reader refuses a file of another
version with a message to re-extract, and ``seld features`` recomputes a per-clip file of another
version. Files written before the attribute existed have the layout of version 1 and read as
:data:`UNVERSIONED`. What the numbers mean is recorded apart: ``feature_params`` (a per-clip file
computed with other settings is recomputed) and
:func:`seld.features.config.outdated_feature_definition` (a definition older versions computed).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from seld.constants import NUM_CLASSES, NUM_DUMMY_TRACKS, NUM_TARGET_VALUES
from seld.errors import DataError

FORMAT_VERSION = 1
"""The layout this code writes and reads; raise it when a name, dtype or axis changes."""
UNVERSIONED = 1
"""The version of a file without the attribute (written before it existed: the layout of version 1)."""

FEATURE_DTYPE = np.float32
TARGET_DTYPE = np.float32

# attributes (per-clip and merged files)
ATTR_FORMAT_VERSION = "format_version"
ATTR_CHANNELS = "channels"
ATTR_SPLIT = "split"
ATTR_FEATURE_PARAMS = "feature_params"
ATTR_CLIP_ID = "clip_id"
ATTR_AUDIO_PATH = "audio_path"
ATTR_HAS_LABELS = "has_labels"
ATTR_COMPLETE = "complete"
ATTR_LABEL_FRAMES = "label_frames"

# datasets
CLIP_TARGET = "target"
"""A per-clip file's target; its features are one dataset per channel, named after the channel."""
FEATURES = "features"
TARGETS = "targets"
CLIP_IDS = "clip_ids"
AUDIO_PATHS = "audio_paths"
MERGED_DATASETS: tuple[str, ...] = (FEATURES, TARGETS, CLIP_IDS)
"""What a merged file must hold to be read."""

REEXTRACT = "re-extract the features with `seld features --config <feature config>` (it rewrites them)"


def target_shape(label_frames: int) -> tuple[int, int, int, int]:
    """The ADPIT target of one clip: ``(label_frames, 6, 4, 13)``."""
    return (label_frames, NUM_DUMMY_TRACKS, NUM_TARGET_VALUES, NUM_CLASSES)


def format_version(attrs: Mapping[str, Any]) -> Any:
    """The ``format_version`` of a file's attributes (:data:`UNVERSIONED` when it has none)."""
    found = attrs.get(ATTR_FORMAT_VERSION, UNVERSIONED)
    return found.item() if isinstance(found, np.generic) else found


def version_mismatch(attrs: Mapping[str, Any]) -> str | None:
    """What differs when a file's attributes ``attrs`` are not of this format version, or None."""
    found = format_version(attrs)
    if found == FORMAT_VERSION:
        return None
    return f"feature file format version {found!r}, this textseld reads version {FORMAT_VERSION}; {REEXTRACT}"


def write_format_version(attrs: Any) -> None:
    """Mark a file being written (its ``attrs``) with :data:`FORMAT_VERSION`."""
    attrs[ATTR_FORMAT_VERSION] = FORMAT_VERSION


# ----------------------------------------------------------------------------- per-clip files


def write_clip(path: str | os.PathLike[str], channels: Iterable[str], features: Mapping[str, np.ndarray],
               target: np.ndarray, *, clip_id: str, split: str, audio_path: str, has_labels: bool,
               feature_params: str) -> None:
    """Write one clip's file at ``path`` (the caller renames it into place); ``complete`` is set last,
    after a flush, so a file cut short reads as incomplete."""
    import h5py

    channels = list(channels)
    with h5py.File(path, "w") as f:
        for name in channels:
            f.create_dataset(name, data=np.asarray(features[name], dtype=FEATURE_DTYPE))
        f.create_dataset(CLIP_TARGET, data=np.asarray(target, dtype=TARGET_DTYPE))
        f.attrs[ATTR_CLIP_ID] = clip_id
        f.attrs[ATTR_SPLIT] = split
        f.attrs[ATTR_AUDIO_PATH] = audio_path
        f.attrs[ATTR_CHANNELS] = channels
        f.attrs[ATTR_HAS_LABELS] = has_labels
        f.attrs[ATTR_FEATURE_PARAMS] = feature_params
        write_format_version(f.attrs)
        f.flush()
        f.attrs[ATTR_COMPLETE] = True


def clip_problem(path: str | os.PathLike[str], channels: Iterable[str], feature_shape: tuple[int, int],
                 label_frames: int, feature_params: str) -> str | None:
    """Why the per-clip file at ``path`` is not complete and valid for these settings, or None when it
    is: it opens, is of this format version, is ``complete``, has the same ``feature_params``, every
    channel ``(T, n_mels)`` = ``feature_shape`` and the target, all float32."""
    import h5py

    p = Path(path)
    if not p.is_file():
        return "no file"
    try:
        with h5py.File(p, "r") as f:
            problem = version_mismatch(f.attrs)
            if problem:
                return problem
            if not bool(f.attrs.get(ATTR_COMPLETE, False)):
                return "incomplete (not marked complete)"
            if f.attrs.get(ATTR_FEATURE_PARAMS) != feature_params:
                return "computed with other feature settings"
            for name in channels:
                d = f.get(name)
                if d is None or d.shape != feature_shape or d.dtype != FEATURE_DTYPE:
                    return f"channel {name!r} missing or not {FEATURE_DTYPE.__name__} {feature_shape}"
            t = f.get(CLIP_TARGET)
            if t is None or t.shape != target_shape(label_frames) or t.dtype != TARGET_DTYPE:
                return f"{CLIP_TARGET!r} missing or not {TARGET_DTYPE.__name__} {target_shape(label_frames)}"
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        return f"unreadable ({exc})"
    return None


def read_clip(path: str | os.PathLike[str], channels: Iterable[str]) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(features ``(C, T, n_mels)`` in the order of ``channels``, target, clip id, audio path) of a
    per-clip file."""
    import h5py

    with h5py.File(path, "r") as f:
        feats = np.stack([f[name][()] for name in channels])
        return feats, f[CLIP_TARGET][()], str(f.attrs[ATTR_CLIP_ID]), str(f.attrs.get(ATTR_AUDIO_PATH, ""))


# ----------------------------------------------------------------------------- merged files


def create_merged(f: Any, num_clips: int, channels: list[str], feature_shape: tuple[int, int],
                  target: tuple[int, ...]) -> tuple[Any, Any]:
    """The ``features`` and ``targets`` datasets of a merged file ``f`` open for writing, one chunk
    per clip; the caller fills them and then calls :func:`finish_merged`."""
    frames, mels = feature_shape
    c = len(channels)
    feats = f.create_dataset(FEATURES, (num_clips, c, frames, mels), dtype=FEATURE_DTYPE, chunks=(1, c, frames, mels))
    targets = f.create_dataset(TARGETS, (num_clips, *target), dtype=TARGET_DTYPE, chunks=(1, *target))
    return feats, targets


def finish_merged(f: Any, clip_ids: list[str], audio_paths: list[str], channels: list[str], split: str,
                  feature_params: str, label_frames: int) -> None:
    """Write a merged file's index (clip ids, audio paths, in the order of its rows) and attributes."""
    import h5py

    string = h5py.string_dtype(encoding="utf-8")
    f.create_dataset(CLIP_IDS, data=np.array(clip_ids, dtype=object), dtype=string)
    f.create_dataset(AUDIO_PATHS, data=np.array(audio_paths, dtype=object), dtype=string)
    f.attrs[ATTR_CHANNELS] = channels
    f.attrs[ATTR_SPLIT] = split
    f.attrs[ATTR_FEATURE_PARAMS] = feature_params
    f.attrs[ATTR_LABEL_FRAMES] = label_frames
    write_format_version(f.attrs)


def open_merged(path: str | os.PathLike[str]) -> Any:
    """The merged file at ``path`` open for reading (an ``h5py.File``; close it). DataError naming the
    file when it cannot be opened, is of another format version or lacks a dataset of the layout."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: cannot open merged feature file ({exc})") from exc
    try:
        mismatch = version_mismatch(f.attrs)
        if mismatch:
            raise DataError(f"{path}: {mismatch}")
        for key in MERGED_DATASETS:
            if key not in f:
                raise DataError(f"{path}: missing dataset '{key}' (not a merged feature file)")
    except BaseException:
        f.close()
        raise
    return f


def merged_channels(f: Any) -> list[str]:
    """The channel names of a merged file, in the order of its ``features`` axis 1."""
    return [str(c) for c in f.attrs.get(ATTR_CHANNELS, [])]


def merged_clip_ids(f: Any) -> list[str]:
    """The clip ids of a merged file, in the order of its rows."""
    return [c.decode() if isinstance(c, bytes) else str(c) for c in f[CLIP_IDS][()]]
