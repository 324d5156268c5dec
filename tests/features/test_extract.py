"""Per-clip extraction: file contents, resume, broken inputs and the CLI exit code."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from seld.cli import main as seld_main
from seld.data import h5schema
from seld.data.audio import load_stereo
from seld.data.metadata import read_metadata_csv
from seld.data.targets import build_adpit_target
from seld.features.clip_files import clip_file, clip_file_problem, is_complete
from seld.features.config import FeatureConfig
from seld.features.extract import compute_clip_features, extract_features
from tests.features.simdata import write_dataset
from tests.train.conftest import torch_threads

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
        assert f[h5schema.CLIP_TARGET].shape == (50, 6, 4, 13)
        np.testing.assert_array_equal(f[h5schema.CLIP_TARGET][()], target)
        assert f.attrs[h5schema.ATTR_CLIP_ID] == "fold3_room1_mix001"
        assert f.attrs[h5schema.ATTR_SPLIT] == SPLIT
        assert f.attrs[h5schema.ATTR_AUDIO_PATH] == str(wav)
        assert list(f.attrs[h5schema.ATTR_CHANNELS]) == cfg.channels
        assert f.attrs[h5schema.ATTR_FORMAT_VERSION] == h5schema.FORMAT_VERSION
        assert bool(f.attrs[h5schema.ATTR_COMPLETE])
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
        del f.attrs[h5schema.ATTR_COMPLETE]
    report = extract_features(cfg, progress=False)
    assert (report.done, report.skipped) == (1, 3)
    with h5py.File(path, "a") as f:  # a layout this version does not read
        f.attrs[h5schema.ATTR_FORMAT_VERSION] = h5schema.FORMAT_VERSION + 1
    assert "format version 2, this textseld reads version 1" in clip_file_problem(path, cfg)
    report = extract_features(cfg, progress=False)
    assert (report.done, report.skipped) == (1, 3)
    assert is_complete(path, cfg)
    cfg.mel.fmax = 8000.0  # the stored numbers no longer match the config
    assert clip_file_problem(path, cfg) == "computed with other feature settings"
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


def cli_args(dataset: Path) -> list[str]:
    """``seld features --no-progress --config <tiny config>`` for the test dataset."""
    config = dataset / "features.yml"
    config.write_text(
        f"dataset_root: {dataset / 'data'}\noutput_dir: {dataset / 'feat'}\nsplits: [{SPLIT}]\n"
        f"train_splits: [{SPLIT}]\nchannels: [{', '.join(FAST)}]\nworkers: 1\n"
    )
    return ["features", "--no-progress", "--config", str(config)]


def test_cli_exits_non_zero_and_lists_failed_clips(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = dataset / "data" / "stereo_dev" / SPLIT / "fold3_room2_mix002.wav"
    bad.write_bytes(b"garbage")
    args = cli_args(dataset)
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


# --- failures reported before the merge (issue 13.1) -------------------------------------------


@pytest.mark.parametrize("action", [[], ["extract"]])
def test_every_failed_clip_is_listed_before_the_merge(dataset, capsys, action) -> None:
    wavs = sorted((dataset / "data" / "stereo_dev" / SPLIT).glob("*.wav"))
    for wav in wavs:
        wav.write_bytes(b"garbage")  # every clip of the split fails: the merge then stops
    rc = seld_main([cli_args(dataset)[0], *action, *cli_args(dataset)[1:]])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "features: 0 clips computed, 0 already done, 4 failed" in out
    assert "4 clip(s) failed:" in err
    for wav in wavs:
        assert f"  {wav.stem}: {wav}: unreadable" in err
    if not action:  # the merge error comes after the list of failures
        assert err.index("4 clip(s) failed:") < err.index("no complete per-clip feature files")


# --- silent audio (issue 13.3) ---------------------------------------------------------------


def test_silent_wav_with_events_and_silent_channel_are_warned_and_counted(dataset, capsys) -> None:
    from seld.data.audio import write_stereo

    root = dataset / "data"
    silent = root / "stereo_dev" / SPLIT / "fold3_room0_mix000.wav"
    write_stereo(silent, np.zeros((2, 120000), np.float32))
    one_side = root / "stereo_dev" / SPLIT / "fold3_room1_mix001.wav"
    audio = load_stereo(one_side)
    audio[1] = 0.0
    write_stereo(one_side, audio)
    quiet = root / "stereo_dev" / SPLIT / "fold3_room2_mix002.wav"  # silent and labelled silent: fine
    write_stereo(quiet, np.zeros((2, 120000), np.float32))
    (root / "metadata_dev" / SPLIT / "fold3_room2_mix002.csv").write_text("frame,class,source,azimuth,distance,onscreen\n")

    assert seld_main(cli_args(dataset)) == 0
    out, err = capsys.readouterr()
    assert "4 clips computed, 0 already done, 0 failed, 2 with silent audio" in out
    csv = root / "metadata_dev" / SPLIT / "fold3_room0_mix000.csv"
    assert f"warning: {silent}: audio is digital silence but {csv} lists 40 event row(s)" in err
    assert f"warning: {one_side}: the right (channel 1) channel is digital silence" in err
    assert str(quiet) not in err
    report = extract_features(make_cfg(dataset), progress=False)  # all done already: nothing to warn
    assert (report.skipped, report.warnings) == (4, [])


# --- config.yml only after a successful start (issue 13.14) ------------------------------------


def test_failed_run_leaves_no_config_file(dataset: Path) -> None:
    from seld.errors import DataError

    cfg = make_cfg(dataset)
    cfg.dataset_root = str(dataset / "missing")
    with pytest.raises(DataError, match="dataset root not found"):
        extract_features(cfg, progress=False)
    assert not Path(cfg.output_dir).exists()

    cfg = make_cfg(dataset)
    for wav in (dataset / "data" / "stereo_dev" / SPLIT).glob("*.wav"):
        wav.write_bytes(b"garbage")
    report = extract_features(cfg, progress=False)
    assert len(report.failed) == 4
    assert not (Path(cfg.output_dir) / "config.yml").exists()


# --- one writer per output folder; a dying worker stops the run (issue 13.13) --------------------

_HOLD_LOCK = """
import sys, time
from seld.features.extract import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_second_extraction_on_a_locked_folder_stops_naming_the_holder(dataset, capsys) -> None:
    import socket
    import subprocess
    import sys

    from seld.features.extract import FolderLockedError

    cfg = make_cfg(dataset)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, cfg.output_dir], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderLockedError) as exc:
            extract_features(cfg, progress=False)
        assert f"pid {holder.pid} on host {socket.gethostname()}" in str(exc.value)
        assert not list(Path(cfg.output_dir).glob("clips/*/*.h5"))  # no work was duplicated
        assert seld_main(cli_args(dataset)) == 1
        assert f"pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert extract_features(cfg, progress=False).done == 4  # the lock went with its holder


_DYING_WORKER = """
import os, resource, signal, sys
from seld.features import extract

if __name__ != "__main__":  # a spawned worker imports this script as __mp_main__ before its first task
    computed = extract._process_clips

    def dies_on_mix002(cfg, clips):
        if any(c.clip_id.endswith("mix002") for c in clips):
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            os.kill(os.getpid(), signal.SIGBUS)  # as loading a truncated library did
        return computed(cfg, clips)

    extract._process_clips = dies_on_mix002

if __name__ == "__main__":
    from seld.cli import main
    sys.exit(main(sys.argv[1:]))
"""


def test_a_worker_that_dies_stops_extraction_with_the_reason(dataset: Path) -> None:
    # a pool that replaces dead workers lost their clips and waited forever, without a message
    import subprocess

    from tests.scripts import child_pythonpath

    script = dataset / "dying.py"
    script.write_text(_DYING_WORKER)
    args = [*cli_args(dataset), "workers=2", "batch_size=1"]
    env = dict(os.environ, PYTHONPATH=child_pythonpath(), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 1, done.stderr
    err = done.stderr.strip().splitlines()[-1]
    assert err.startswith("seld features: error: a feature worker process was killed by SIGBUS; "), done.stderr
    assert "fold3_room2_mix002" in err and "rerun skips them" in err
    assert not clip_file(dataset / "feat", SPLIT, "fold3_room2_mix002").exists()


def test_cli_device_cuda_without_a_gpu_stops_with_the_setting_named(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    assert seld_main([*cli_args(dataset), "device=cuda"]) != 0
    err = capsys.readouterr().err
    assert "device 'cuda'" in err and "device: cpu" in err
    assert not list((dataset / "feat").glob("clips/*/*.h5"))  # nothing computed


@pytest.mark.parametrize("threads", [1, 2])
def test_batches_of_clips_write_the_same_files_as_clip_by_clip(dataset: Path, threads: int) -> None:
    """One torch thread: bit-identical. Two: a batch runs one clip per thread (one-thread products)
    while a lone clip runs on the 2-thread matmul, whose blocking rounds differently: measured up to
    9.5e-7 dB apart (22 of 16000 values of one channel), a float32 rounding step, hence the tolerance."""
    with torch_threads(threads):
        _batches_match_clip_by_clip(dataset, exact=threads == 1)


def _batches_match_clip_by_clip(dataset: Path, exact: bool) -> None:
    one = make_cfg(dataset, channels=FAST + ["direct_logmel", "reverb_logmel"])
    one.batch_size, one.output_dir = 1, str(dataset / "feat1")
    many = make_cfg(dataset, channels=FAST + ["direct_logmel", "reverb_logmel"])
    many.batch_size, many.output_dir = 4, str(dataset / "feat4")
    assert extract_features(one, progress=False).done == extract_features(many, progress=False).done == 4
    for path in sorted((dataset / "feat1" / "clips" / SPLIT).glob("*.h5")):
        with h5py.File(path, "r") as a, h5py.File(dataset / "feat4" / "clips" / SPLIT / path.name, "r") as b:
            for name in one.channels:
                if exact:
                    np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=f"{path.name} {name}")
                else:
                    np.testing.assert_allclose(a[name][()], b[name][()], rtol=0, atol=1e-5, err_msg=f"{path.name} {name}")


def test_a_script_from_stdin_computes_in_process_instead_of_hanging(dataset: Path, monkeypatch, capsys) -> None:
    """`python - < script.py`: spawned workers cannot re-import a '<stdin>' main and would restart forever."""
    monkeypatch.setattr(sys.modules["__main__"], "__file__", "<stdin>", raising=False)
    cfg = make_cfg(dataset, workers=2)
    report = extract_features(cfg, progress=False)
    assert (report.done, report.failed) == (4, [])
    assert "not 2 workers: the main script '<stdin>' is not a file" in capsys.readouterr().err
