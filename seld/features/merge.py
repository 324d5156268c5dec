"""Merge the per-clip feature files of each split into one HDF5 file per split.

``<output_dir>/<split>.h5`` holds every clip's features ``(N, C, T, n_mels)`` (one chunk per clip),
targets, the index of clip ids and audio paths (sorted by id) and the channel names, laid out as
:mod:`seld.data.h5schema` defines. :func:`merge_splits` then writes
``<output_dir>/normalization.json`` from the merged files of ``cfg.train_splits`` (see
:mod:`seld.features.normalization`).
"""
from __future__ import annotations

import sys
from pathlib import Path

from seld.data import h5schema
from seld.errors import DataError
from seld.features.clip_files import CLIPS_DIR, clip_file_problem, expected_frames, feature_params
from seld.features.config import FeatureConfig
from seld.features.normalization import NORMALIZATION_FILE, compute_normalization, save_normalization
from seld.io_utils import atomic_path


def merged_file(output_dir: str | Path, split: str) -> Path:
    """Path of a split's merged file: ``<output_dir>/<split>.h5``."""
    return Path(output_dir) / f"{split}.h5"


def merge_split(cfg: FeatureConfig, split: str, progress: bool = False) -> Path:
    """Merge the complete per-clip files of ``split`` into ``<output_dir>/<split>.h5``.

    Incomplete or stale per-clip files (another format version, other feature settings) are left
    out with a warning on stderr naming the reason; DataError when the split has no complete clip
    file at all.
    """
    import h5py
    from tqdm import tqdm

    clip_dir = Path(cfg.output_dir) / CLIPS_DIR / split
    files = sorted(clip_dir.glob("*.h5")) if clip_dir.is_dir() else []
    good = []
    for p in files:
        problem = clip_file_problem(p, cfg)
        if problem is None:
            good.append(p)
        else:
            print(f"warning: {p}: incomplete or stale feature file left out of the merge ({problem})",
                  file=sys.stderr)
    if not good:
        raise DataError(f"{clip_dir}: no complete per-clip feature files for split '{split}'")
    frames, label_frames = expected_frames(cfg)
    channels = list(cfg.channels)
    out = merged_file(cfg.output_dir, split)
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as f:
            # clip_file_problem has checked every good file's target against this shape
            feats, targets = h5schema.create_merged(f, len(good), channels, (frames, cfg.mel.n_mels),
                                                    h5schema.target_shape(label_frames))
            ids: list[str] = []
            paths: list[str] = []
            for i, p in enumerate(tqdm(good, desc=f"merge {split}", unit="clip", disable=not progress, file=sys.stderr)):
                clip_feats, target, clip_id, audio_path = h5schema.read_clip(p, channels)
                feats[i], targets[i] = clip_feats, target
                ids.append(clip_id)
                paths.append(audio_path)
            h5schema.finish_merged(f, ids, paths, channels, split, feature_params(cfg), label_frames)
    return out


def merge_splits(cfg: FeatureConfig, progress: bool = False) -> list[Path]:
    """Merge every split of ``cfg.splits`` and write the normalisation JSON of ``cfg.train_splits``.

    Returns the merged file paths in the order of ``cfg.splits``.
    """
    paths = [merge_split(cfg, split, progress=progress) for split in cfg.splits]
    train = [merged_file(cfg.output_dir, s) for s in cfg.train_splits]
    if train:
        stats = compute_normalization(train, list(cfg.channels), progress=progress)
        num_clips = 0
        for p in train:
            with h5schema.open_merged(p) as f:
                num_clips += int(f[h5schema.FEATURES].shape[0])
        save_normalization(
            stats,
            Path(cfg.output_dir) / NORMALIZATION_FILE,
            splits=list(cfg.train_splits),
            files=[p.name for p in train],
            num_clips=num_clips,
        )
    return paths
