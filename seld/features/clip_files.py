"""The per-clip feature file of a :class:`~seld.features.config.FeatureConfig`: where it lives, the
settings it records, when it is complete, how it is written.

Per-clip file ``<output_dir>/clips/<split>/<clip_id>.h5``, laid out as :mod:`seld.data.h5schema`
defines (one float32 ``(T, n_mels)`` dataset per channel, the ADPIT target, the clip's attributes).
A file is "complete and valid" when it opens, is of this format version, has every configured
channel with the expected shape and dtype, the target, matching ``feature_params`` and
``complete``; the extraction (:mod:`seld.features.extract`) skips such clips and recomputes all
others, and the merge (:mod:`seld.features.merge`) takes only those. Files are written to a
temporary name and renamed, so a crash never leaves a half-written file under the final name.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from seld.config import to_dict
from seld.data import h5schema
from seld.data.layout import Clip
from seld.errors import ConfigError
from seld.features.channels import needs_wpe
from seld.features.config import FeatureConfig, num_label_frames
from seld.features.stft import num_feature_frames
from seld.io_utils import atomic_path

CLIPS_DIR = "clips"


def clip_file(output_dir: str | os.PathLike[str], split: str, clip_id: str) -> Path:
    """Path of a clip's feature file: ``<output_dir>/clips/<split>/<clip_id>.h5``."""
    return Path(output_dir) / CLIPS_DIR / split / f"{clip_id}.h5"


def feature_params(cfg: FeatureConfig) -> str:
    """JSON of every setting the stored numbers depend on (compared when resuming)."""
    params = {
        "stft": to_dict(cfg.stft),
        "mel": to_dict(cfg.mel),
        "peak_normalize": cfg.peak_normalize,
        "sample_rate": cfg.audio.sample_rate,
    }
    if needs_wpe(cfg.channels):
        params["wpe"] = to_dict(cfg.wpe)
    return json.dumps(params, sort_keys=True)


def expected_frames(cfg: FeatureConfig) -> tuple[int, int]:
    """(feature frames, label frames) of one clip of ``cfg.audio.clip_samples`` samples."""
    if cfg.audio.clip_samples <= 0:
        raise ConfigError(
            "audio.clip_samples must be > 0 for extraction to HDF5 (every clip needs the same length); "
            "use audio.pad_or_trim to fix clips of other lengths"
        )
    sr = cfg.audio.sample_rate
    return num_feature_frames(cfg.audio.clip_samples, cfg.stft.hop_length, sr), num_label_frames(
        cfg.audio.clip_samples, sr
    )


def clip_file_problem(path: str | os.PathLike[str], cfg: FeatureConfig) -> str | None:
    """Why ``path`` is not a complete, valid clip file for ``cfg`` (see :func:`seld.data.h5schema.clip_problem`:
    another format version, incomplete, other feature settings, a channel missing), or None."""
    frames, label_frames = expected_frames(cfg)
    return h5schema.clip_problem(path, cfg.channels, (frames, cfg.mel.n_mels), label_frames, feature_params(cfg))


def is_complete(path: str | os.PathLike[str], cfg: FeatureConfig) -> bool:
    """Whether ``path`` is a complete, valid clip file for ``cfg`` (a rerun skips it, else recomputes it)."""
    return clip_file_problem(path, cfg) is None


def write_clip_file(
    path: str | os.PathLike[str],
    clip: Clip,
    features: dict[str, np.ndarray],
    target: np.ndarray,
    cfg: FeatureConfig,
) -> Path:
    """Write one clip's features and target atomically (:func:`seld.data.h5schema.write_clip`)."""
    p = Path(path)
    with atomic_path(p) as tmp:
        h5schema.write_clip(tmp, cfg.channels, features, target, clip_id=clip.clip_id, split=clip.split,
                            audio_path=str(clip.wav_path), has_labels=clip.csv_path is not None,
                            feature_params=feature_params(cfg))
    return p
