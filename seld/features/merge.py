"""Merge the per-clip feature files of each split into one HDF5 file per split.

``<output_dir>/<split>.h5`` holds

* ``features``: float32 ``(N, C, T, n_mels)``, chunked ``(1, C, T, n_mels)`` and uncompressed,
  so reading one clip is one contiguous read;
* ``targets``: float32 ``(N, 50, 6, 4, 13)``, chunked per clip;
* ``clip_ids`` and ``audio_paths``: variable-length strings ``(N,)`` (the index, sorted by id);
* attributes ``channels`` (names in the order of axis 1), ``split``, ``feature_params``.

:func:`merge_splits` then writes ``<output_dir>/normalization.json`` from the merged files of
``cfg.train_splits`` (see :mod:`seld.features.normalization`).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from seld.errors import DataError
from seld.features.config import FeatureConfig
from seld.features.extract import CLIPS_DIR, expected_frames, feature_params, is_complete
from seld.features.normalization import NORMALIZATION_FILE, compute_normalization, save_normalization
from seld.io_utils import atomic_path


def merged_file(output_dir: str | Path, split: str) -> Path:
    """Path of a split's merged file: ``<output_dir>/<split>.h5``."""
    return Path(output_dir) / f"{split}.h5"


def merge_split(cfg: FeatureConfig, split: str, progress: bool = False) -> Path:
    """Merge the complete per-clip files of ``split`` into ``<output_dir>/<split>.h5``.

    Incomplete or stale per-clip files are left out with a warning on stderr; DataError when
    the split has no complete clip file at all.
    """
    import h5py
    from tqdm import tqdm

    clip_dir = Path(cfg.output_dir) / CLIPS_DIR / split
    files = sorted(clip_dir.glob("*.h5")) if clip_dir.is_dir() else []
    good = [p for p in files if is_complete(p, cfg)]
    for p in sorted(set(files) - set(good)):
        print(f"warning: {p}: incomplete or stale feature file left out of the merge", file=sys.stderr)
    if not good:
        raise DataError(f"{clip_dir}: no complete per-clip feature files for split '{split}'")
    frames, label_frames = expected_frames(cfg)
    channels = list(cfg.channels)
    n, c, m = len(good), len(channels), cfg.mel.n_mels
    out = merged_file(cfg.output_dir, split)
    string = h5py.string_dtype(encoding="utf-8")
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as f:
            feats = f.create_dataset("features", (n, c, frames, m), dtype=np.float32, chunks=(1, c, frames, m))
            with h5py.File(good[0], "r") as first:
                tshape = first["target"].shape
            targets = f.create_dataset("targets", (n, *tshape), dtype=np.float32, chunks=(1, *tshape))
            ids: list[str] = []
            paths: list[str] = []
            for i, p in enumerate(tqdm(good, desc=f"merge {split}", unit="clip", disable=not progress, file=sys.stderr)):
                with h5py.File(p, "r") as src:
                    feats[i] = np.stack([src[name][()] for name in channels])
                    targets[i] = src["target"][()]
                    ids.append(str(src.attrs["clip_id"]))
                    paths.append(str(src.attrs.get("audio_path", "")))
            f.create_dataset("clip_ids", data=np.array(ids, dtype=object), dtype=string)
            f.create_dataset("audio_paths", data=np.array(paths, dtype=object), dtype=string)
            f.attrs["channels"] = channels
            f.attrs["split"] = split
            f.attrs["feature_params"] = feature_params(cfg)
            f.attrs["label_frames"] = label_frames
    return out


def merge_splits(cfg: FeatureConfig, progress: bool = False) -> list[Path]:
    """Merge every split of ``cfg.splits`` and write the normalisation JSON of ``cfg.train_splits``.

    Returns the merged file paths in the order of ``cfg.splits``.
    """
    paths = [merge_split(cfg, split, progress=progress) for split in cfg.splits]
    train = [merged_file(cfg.output_dir, s) for s in cfg.train_splits]
    if train:
        stats = compute_normalization(train, list(cfg.channels), progress=progress)
        import h5py

        num_clips = 0
        for p in train:
            with h5py.File(p, "r") as f:
                num_clips += int(f["features"].shape[0])
        save_normalization(
            stats,
            Path(cfg.output_dir) / NORMALIZATION_FILE,
            splits=list(cfg.train_splits),
            files=[p.name for p in train],
            num_clips=num_clips,
        )
    return paths
