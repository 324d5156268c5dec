"""The simulated set on disk: layout, determinism, parallel and resumed runs, ``seld synth``."""
from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from seld.constants import CLIP_SAMPLES, LABEL_FRAMES, SYNTH_TEST_SPLIT, SYNTH_TRAIN_SPLIT
from seld.data.audio import load_stereo
from seld.data.layout import discover_clips
from seld.data.metadata import read_metadata_csv
from seld.errors import ConfigError
from seld.sim import generate
from seld.sim.generate import SynthReport, generate_dataset, num_test_clips, summarize_dataset
from seld.sim.scenes import SynthConfig, load_synth_config, render_clip


def test_test_split_size():
    assert [num_test_clips(n, 0.25) for n in (1, 2, 3, 4, 10, 200)] == [0, 1, 1, 1, 2, 50]
    assert num_test_clips(10, 0.0) == 0


# ---------------------------------------------------------------- the dataset on disk
def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".wav", ".csv")
    }


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> tuple[Path, SynthReport]:
    root = tmp_path_factory.mktemp("synth") / "set"
    report = generate_dataset(root, 5, seed=11, workers=1, progress=False)
    return root, report


def test_layout_and_metadata_read_back(small_set):
    root, report = small_set
    assert (report.generated, report.skipped, report.num_train, report.num_test) == (5, 0, 4, 1)
    train = discover_clips(root, [SYNTH_TRAIN_SPLIT])
    test = discover_clips(root, [SYNTH_TEST_SPLIT])
    assert len(train) == 4 and len(test) == 1
    assert {c.fold for c in train} == {3} and {c.fold for c in test} == {4}
    cfg = SynthConfig()
    for clip in train + test:
        assert clip.clip_id.startswith(f"fold{clip.fold}_room")
        audio = load_stereo(clip.wav_path)  # validates 2 channels, 24 kHz, 120000 samples
        assert audio.shape == (2, CLIP_SAMPLES)
        assert 0.2 < np.abs(audio).max() < 0.9999
        events = read_metadata_csv(clip.csv_path, num_frames=LABEL_FRAMES)
        index = int(clip.clip_id.rsplit("mix", 1)[1]) - 1
        _, expected, scene = render_clip(11, index, cfg)
        assert events == expected  # the CSV holds exactly the scene's labels
        assert f"room{scene.room.index + 1}_" in clip.clip_id
        assert all(-90 <= e.azimuth <= 90 for e in events)
        assert max(Counter(e.frame for e in events).values(), default=0) <= cfg.events.max_polyphony
    summary = summarize_dataset(root)
    assert re.search(rf"{SYNTH_TRAIN_SPLIT}\s+4 clips", summary) and re.search(rf"{SYNTH_TEST_SPLIT}\s+1 clips", summary)
    assert "polyphony" in summary and "knock" in summary


def test_events_are_audible_where_labelled():
    """Frames with events carry clearly more energy than silent frames of the same clip."""
    cfg = load_synth_config(None, ["mix.snr_db=[30,30]", "room.rt60_s=[0.2,0.3]"])
    for index in range(3):
        audio, events, _ = render_clip(2, index, cfg)
        frame_power = (audio.astype(np.float64) ** 2).sum(axis=0).reshape(LABEL_FRAMES, -1).mean(axis=1)
        active = np.zeros(LABEL_FRAMES, dtype=bool)
        active[[e.frame for e in events]] = True
        if active.all() or not active.any():
            continue
        assert np.median(frame_power[active]) > 10 * np.median(frame_power[~active])


def test_same_seed_same_files_different_seed_different_files(small_set, tmp_path):
    root, _ = small_set
    again = tmp_path / "again"
    generate_dataset(again, 5, seed=11, workers=1, progress=False)
    assert _files(again) == _files(root)
    other = tmp_path / "other"
    generate_dataset(other, 5, seed=12, workers=1, progress=False)
    a, b = _files(root), _files(other)
    assert len(a) == len(b) == 10
    wavs_a = sorted(v for k, v in a.items() if k.endswith(".wav"))
    wavs_b = sorted(v for k, v in b.items() if k.endswith(".wav"))
    assert not set(wavs_a) & set(wavs_b)


def test_parallel_run_writes_the_same_files(small_set, tmp_path):
    root, _ = small_set
    par = tmp_path / "parallel"
    report = generate_dataset(par, 5, seed=11, workers=2, progress=False)
    assert report.generated == 5
    assert _files(par) == _files(root)


def test_interrupted_run_resumes_without_rewriting_finished_clips(tmp_path, monkeypatch):
    root = tmp_path / "resume"
    real_render = generate.render_clip
    calls = {"n": 0}

    def crash_on_third(seed, index, cfg):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated Ctrl-C")
        return real_render(seed, index, cfg)

    monkeypatch.setattr(generate, "render_clip", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(root, 4, seed=7, workers=1, progress=False)
    monkeypatch.setattr(generate, "render_clip", real_render)
    finished = sorted(root.rglob("*.csv"))
    assert len(finished) == 2
    # A killed writer may leave a temporary file behind: the rerun removes it.
    stale = finished[0].parent / f".{finished[0].stem}.wav.abc123.tmp"
    stale.write_bytes(b"junk")
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*") if p.suffix in (".wav", ".csv")}
    assert len(before) == 4

    report = generate_dataset(root, 4, seed=7, workers=1, progress=False)
    assert (report.generated, report.skipped) == (2, 2)
    for p, stamp in before.items():
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == stamp, f"{p} was rewritten"
    assert not stale.exists()
    fresh = tmp_path / "fresh"
    generate_dataset(fresh, 4, seed=7, workers=1, progress=False)
    assert _files(root) == _files(fresh)

    # A WAV without its CSV counts as unfinished and is redone; a third run has nothing to do.
    next(root.rglob("*.csv")).unlink()
    assert generate_dataset(root, 4, seed=7, workers=1, progress=False).generated == 1
    report = generate_dataset(root, 4, seed=7, workers=1, progress=False)
    assert (report.generated, report.skipped) == (0, 4)
    assert _files(root) == _files(fresh)


def test_rerun_with_other_settings_is_refused(small_set):
    root, _ = small_set
    with pytest.raises(ConfigError, match="another seed, clip count or config"):
        generate_dataset(root, 5, seed=99, workers=1, progress=False)
    with pytest.raises(ConfigError, match="synth_config.yml"):
        generate_dataset(root, 5, seed=11, cfg=load_synth_config(None, ["events.max_polyphony=2"]), workers=1, progress=False)


def test_cli_writes_the_set_and_prints_the_summary(tmp_path, capsys):
    from seld.commands import synth as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(
        ["--out", str(tmp_path / "cli"), "--clips", "2", "--seed", "4", "--workers", "1", "--no-progress",
         "mix.snr_db=[20,20]"]
    )
    assert command.run(args) == 0
    out = capsys.readouterr().out
    assert "2 clips generated" in out and "polyphony" in out
    assert len(list((tmp_path / "cli").rglob("*.wav"))) == 2
    with pytest.raises(ConfigError, match="--clips"):
        command.run(parser.parse_args(["--out", str(tmp_path / "x"), "--clips", "0"]))
