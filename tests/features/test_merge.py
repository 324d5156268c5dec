"""Merged split files and the training-split normalisation statistics."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from seld.data import h5schema
from seld.errors import DataError
from seld.features.clip_files import clip_file, feature_params
from seld.features.config import FeatureConfig
from seld.features.extract import extract_features
from seld.features.merge import merge_splits
from seld.features.normalization import compute_normalization, load_normalization
from tests.features.simdata import write_dataset

TRAIN, TEST = "dev-train-synth", "dev-test-synth"
CHANNELS = ["logmel_l", "logmel_r", "ild", "ivy", "ipd"]


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> FeatureConfig:
    root = tmp_path_factory.mktemp("merge")
    write_dataset(root / "data", {TRAIN: 4, TEST: 2}, seed=3)
    cfg = FeatureConfig(
        dataset_root=str(root / "data"), output_dir=str(root / "feat"), splits=[TRAIN, TEST],
        train_splits=[TRAIN], channels=CHANNELS, workers=1,
    )
    assert extract_features(cfg, progress=False).done == 6
    merge_splits(cfg)
    return cfg


def test_merged_file_round_trips_every_clip(merged: FeatureConfig) -> None:
    out = Path(merged.output_dir)
    for split, count in ((TRAIN, 4), (TEST, 2)):
        with h5py.File(out / f"{split}.h5", "r") as f:
            channels = h5schema.merged_channels(f)
            assert channels == ["logmel_l", "logmel_r", "ild", "ivy", "ipd_cos", "ipd_sin"]
            feats, targets = f[h5schema.FEATURES], f[h5schema.TARGETS]
            assert feats.shape == (count, 6, 250, 64) and feats.dtype == np.float32
            assert feats.chunks == (1, 6, 250, 64) and feats.compression is None
            assert targets.shape == (count, 50, 6, 4, 13) and targets.chunks == (1, 50, 6, 4, 13)
            ids = h5schema.merged_clip_ids(f)
            assert ids == sorted(ids) and len(set(ids)) == count
            for i, clip_id in enumerate(ids):
                with h5py.File(clip_file(out, split, clip_id), "r") as c:
                    for k, name in enumerate(channels):
                        np.testing.assert_array_equal(feats[i, k], c[name][()])
                    np.testing.assert_array_equal(targets[i], c[h5schema.CLIP_TARGET][()])
                    assert f[h5schema.AUDIO_PATHS][i].decode() == c.attrs[h5schema.ATTR_AUDIO_PATH]
            assert f.attrs[h5schema.ATTR_FORMAT_VERSION] == h5schema.FORMAT_VERSION
            assert f.attrs[h5schema.ATTR_SPLIT] == split and f.attrs[h5schema.ATTR_LABEL_FRAMES] == 50
            assert f.attrs[h5schema.ATTR_FEATURE_PARAMS] == feature_params(merged)


def test_normalisation_equals_numpy_over_the_training_split(merged: FeatureConfig) -> None:
    out = Path(merged.output_dir)
    stats = load_normalization(out / "normalization.json")
    data = json.loads((out / "normalization.json").read_text())
    assert data["splits"] == [TRAIN] and data["num_clips"] == 4
    with h5py.File(out / f"{TRAIN}.h5", "r") as f:
        feats = f["features"][()].astype(np.float64)
        channels = list(f.attrs["channels"])
    for k, name in enumerate(channels):
        assert stats[name].mean == pytest.approx(feats[:, k].mean(), rel=1e-9, abs=1e-9)
        assert stats[name].std == pytest.approx(feats[:, k].std(), rel=1e-9)
    # Streaming in blocks of one clip gives the same numbers as one block.
    one = compute_normalization([out / f"{TRAIN}.h5"], clips_per_read=1)
    for name in channels:
        assert one[name].mean == pytest.approx(stats[name].mean, rel=1e-9, abs=1e-9)
        assert one[name].std == pytest.approx(stats[name].std, rel=1e-9)


def test_normalisation_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_normalization(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"channels": {"ild": {"mean": 0.0}}}')
    with pytest.raises(DataError, match=r"bad.json.*'ild'"):
        load_normalization(bad)


def test_merge_without_clip_files_names_the_split(tmp_path: Path) -> None:
    cfg = FeatureConfig(output_dir=str(tmp_path), splits=[TRAIN], train_splits=[TRAIN])
    with pytest.raises(DataError, match=TRAIN):
        merge_splits(cfg)


def test_normalisation_refuses_a_merged_file_of_another_format_version(merged: FeatureConfig, tmp_path: Path) -> None:
    old = tmp_path / f"{TRAIN}.h5"
    shutil.copyfile(Path(merged.output_dir) / f"{TRAIN}.h5", old)
    with h5py.File(old, "a") as f:
        f.attrs[h5schema.ATTR_FORMAT_VERSION] = 0
    with pytest.raises(DataError, match=rf"{TRAIN}.h5: feature file format version 0, this textseld reads version 1; "
                                        "re-extract the features with `seld features"):
        compute_normalization([old])


def test_merge_leaves_out_clip_files_of_another_format_version_naming_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dataset(tmp_path / "data", {TRAIN: 2}, seed=5)
    cfg = FeatureConfig(dataset_root=str(tmp_path / "data"), output_dir=str(tmp_path / "feat"), splits=[TRAIN],
                        train_splits=[TRAIN], channels=["logmel_l", "ild"], workers=1)
    assert extract_features(cfg, progress=False).done == 2
    stale = clip_file(cfg.output_dir, TRAIN, "fold3_room1_mix001")
    with h5py.File(stale, "a") as f:
        f.attrs[h5schema.ATTR_FORMAT_VERSION] = 2
    merge_splits(cfg)
    err = capsys.readouterr().err
    assert (f"warning: {stale}: incomplete or stale feature file left out of the merge "
            "(feature file format version 2, this textseld reads version 1") in err
    with h5schema.open_merged(Path(cfg.output_dir) / f"{TRAIN}.h5") as f:
        assert h5schema.merged_clip_ids(f) == ["fold3_room0_mix000"]
    assert extract_features(cfg, progress=False).done == 1  # `seld features` recomputes it
    merge_splits(cfg)
    with h5schema.open_merged(Path(cfg.output_dir) / f"{TRAIN}.h5") as f:
        assert h5schema.merged_clip_ids(f) == ["fold3_room0_mix000", "fold3_room1_mix001"]
