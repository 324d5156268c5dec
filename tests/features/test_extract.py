"""Per-clip extraction: file contents, resume, broken inputs and the CLI exit code."""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from seld.cli import main as seld_main
from seld.data.audio import load_stereo
from seld.data.metadata import read_metadata_csv
from seld.data.targets import build_adpit_target
from seld.features.config import FeatureConfig
from seld.features.extract import clip_file, compute_clip_features, extract_features, is_complete
from tests.features.simdata import write_dataset

FAST = ["logmel_l", "logmel_r", "logmel_mid", "ild", "ivy"]
SPLIT = "dev-train-synth"


def make_cfg(tmp_path: Path, workers: int = 1, channels: list[str] | None = None) -> FeatureConfig:
    cfg = FeatureConfig(
        dataset_root=str(tmp_path / "data"),
        output_dir=str(tmp_path / "feat"),
        splits=[SPLIT],
        train_splits=[SPLIT],
        channels=channels or FAST,
        workers=workers,
        batch_size=2,
    )
    cfg.wpe.iterations = 1
    return cfg


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    write_dataset(tmp_path / "data", {SPLIT: 4}, seed=7)
    return tmp_path


def mtimes(cfg: FeatureConfig) -> dict[str, int]:
    folder = Path(cfg.output_dir) / "clips" / SPLIT
    return {p.stem: p.stat().st_mtime_ns for p in folder.glob("*.h5")}


def test_clip_file_holds_features_target_and_metadata(dataset: Path) -> None:
    cfg = make_cfg(dataset, channels=FAST + ["direct_logmel", "reverb_logmel"])
    report = extract_features(cfg, progress=False)
    assert (report.done, report.skipped, report.failed) == (4, 0, [])
    wav = dataset / "data" / "stereo_dev" / SPLIT / "fold3_room1_mix001.wav"
    path = clip_file(cfg.output_dir, SPLIT, "fold3_room1_mix001")
    expected = compute_clip_features(load_stereo(wav), cfg.channels, cfg)
    target = build_adpit_target(read_metadata_csv(wav.parents[2] / "metadata_dev" / SPLIT / f"{wav.stem}.csv"))
    with h5py.File(path, "r") as f:
        for name in cfg.channels:
            assert f[name].dtype == np.float32 and f[name].shape == (250, 64)
            np.testing.assert_allclose(f[name][()], expected[name], atol=1e-4, err_msg=name)
        assert f["target"].shape == (50, 6, 4, 13)
        np.testing.assert_array_equal(f["target"][()], target)
        assert f.attrs["clip_id"] == "fold3_room1_mix001"
        assert f.attrs["split"] == SPLIT
        assert f.attrs["audio_path"] == str(wav)
        assert list(f.attrs["channels"]) == cfg.channels
        assert bool(f.attrs["complete"])
    assert (Path(cfg.output_dir) / "config.yml").is_file()


def test_rerun_recomputes_only_deleted_and_truncated_files(dataset: Path) -> None:
    cfg = make_cfg(dataset, workers=2)
    assert extract_features(cfg, progress=False).done == 4
    before = mtimes(cfg)
    deleted = clip_file(cfg.output_dir, SPLIT, "fold3_room0_mix000")
    truncated = clip_file(cfg.output_dir, SPLIT, "fold3_room2_mix002")
    with h5py.File(truncated, "r") as f:
        original = f["ild"][()]
    deleted.unlink()
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    assert not is_complete(truncated, cfg)

    report = extract_features(cfg, progress=False)
    assert (report.done, report.skipped, report.failed) == (2, 2, [])
    after = mtimes(cfg)
    for stem in ("fold3_room1_mix001", "fold3_room0_mix003"):
        assert after[stem] == before[stem]  # untouched
    assert is_complete(deleted, cfg) and is_complete(truncated, cfg)
    with h5py.File(truncated, "r") as f:
        np.testing.assert_array_equal(f["ild"][()], original)
    assert not list((Path(cfg.output_dir) / "clips" / SPLIT).glob(".*tmp"))


def test_file_without_complete_flag_or_with_other_settings_is_recomputed(dataset: Path) -> None:
    cfg = make_cfg(dataset)
    extract_features(cfg, progress=False)
    path = clip_file(cfg.output_dir, SPLIT, "fold3_room1_mix001")
    with h5py.File(path, "a") as f:
        del f.attrs["complete"]
    report = extract_features(cfg, progress=False)
    assert (report.done, report.skipped) == (1, 3)
    cfg.mel.fmax = 8000.0  # the stored numbers no longer match the config
    assert extract_features(cfg, progress=False).done == 4


def test_corrupt_wav_is_reported_by_name_and_leaves_no_output(dataset: Path) -> None:
    cfg = make_cfg(dataset)
    bad = dataset / "data" / "stereo_dev" / SPLIT / "fold3_room2_mix002.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00not really a wave file")
    short = dataset / "data" / "stereo_dev" / SPLIT / "fold3_room0_mix003.wav"
    from seld.data.audio import write_stereo

    write_stereo(short, np.zeros((2, 1000), np.float32))  # wrong length
    report = extract_features(cfg, progress=False)
    assert report.done == 2
    failed = dict(report.failed)
    assert set(failed) == {"fold3_room2_mix002", "fold3_room0_mix003"}
    assert str(bad) in failed["fold3_room2_mix002"] and "unreadable" in failed["fold3_room2_mix002"]
    assert "1000 samples" in failed["fold3_room0_mix003"]
    folder = Path(cfg.output_dir) / "clips" / SPLIT
    assert sorted(p.name for p in folder.iterdir()) == ["fold3_room0_mix000.h5", "fold3_room1_mix001.h5"]


def test_missing_label_file_fails_that_clip(dataset: Path) -> None:
    cfg = make_cfg(dataset)
    os.remove(dataset / "data" / "metadata_dev" / SPLIT / "fold3_room1_mix001.csv")
    report = extract_features(cfg, progress=False)
    assert report.done == 3
    assert [c for c, _ in report.failed] == ["fold3_room1_mix001"]
    assert "no label file" in report.failed[0][1]


def test_cli_exits_non_zero_and_lists_failed_clips(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = dataset / "data" / "stereo_dev" / SPLIT / "fold3_room2_mix002.wav"
    bad.write_bytes(b"garbage")
    args = [
        "features", "--no-progress",
        f"dataset_root={dataset / 'data'}", f"output_dir={dataset / 'feat'}",
        f"splits=[{SPLIT}]", f"train_splits=[{SPLIT}]", f"channels=[{', '.join(FAST)}]", "workers=1",
    ]
    assert seld_main(args) == 1
    err = capsys.readouterr().err
    assert "fold3_room2_mix002" in err and str(bad) in err
    assert (dataset / "feat" / f"{SPLIT}.h5").is_file()  # good clips are still merged
    with h5py.File(dataset / "feat" / f"{SPLIT}.h5", "r") as f:
        assert f["features"].shape == (3, 5, 250, 64)
    bad.unlink()
    (dataset / "data" / "metadata_dev" / SPLIT / "fold3_room2_mix002.csv").unlink()
    assert seld_main(args) == 0
    assert seld_main(["features", "merge", *args[1:]]) == 0
    assert seld_main(["features", "bogus"]) == 1
