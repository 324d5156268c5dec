"""The simulated dataset generator: physics of the coincident pair, scenes, layout, determinism, resume."""
from __future__ import annotations

import argparse
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from seld.constants import CLIP_SAMPLES, LABEL_FRAMES, SAMPLE_RATE, SYNTH_TEST_SPLIT, SYNTH_TRAIN_SPLIT
from seld.data import synth
from seld.data.audio import load_stereo
from seld.data.layout import discover_clips
from seld.data.metadata import fold_azimuth, read_metadata_csv
from seld.data.synth import (
    SPEED_OF_SOUND,
    SynthConfig,
    clip_rng,
    coincident_rirs,
    diffuse_noise,
    generate_dataset,
    load_synth_config,
    num_test_clips,
    render_clip,
    render_single_source,
    sample_room,
    sample_scene,
    summarize_dataset,
)
from seld.errors import ConfigError

FDL_HALF = 40  # pyroomacoustics' fractional-delay filter (81 taps) delays every arrival by 40 samples


def _ild_db(stereo: np.ndarray) -> float:
    power = np.sum(stereo.astype(np.float64) ** 2, axis=1)
    return 10.0 * math.log10(float(power[0] / power[1]))


# ---------------------------------------------------------------- physics
@pytest.mark.parametrize("azimuth", [60.0, -30.0, 120.0])
def test_anechoic_level_difference_follows_the_figure_of_eight(azimuth: float):
    """L = W + Y, R = W - Y with Y = sin(az) W: power ratio (1 + sin az)^2 / (1 - sin az)^2."""
    stereo = render_single_source(azimuth, 2.0, rt60=None, seed=0, class_idx=2, peak=None)
    assert stereo.shape == (2, CLIP_SAMPLES) and stereo.dtype == np.float32
    s = math.sin(math.radians(azimuth))
    expected = 10.0 * math.log10((1 + s) ** 2 / (1 - s) ** 2)
    assert abs(_ild_db(stereo) - expected) < 0.5
    if azimuth == 60.0:
        assert expected == pytest.approx(22.88, abs=0.01)  # L (left, positive azimuth) is louder


def test_source_in_front_gives_equal_channels():
    stereo = render_single_source(0.0, 2.5, rt60=None, seed=1, class_idx=8, peak=None)
    assert abs(_ild_db(stereo)) < 0.01
    np.testing.assert_allclose(stereo[0], stereo[1], atol=1e-4 * np.abs(stereo).max())


def test_direct_path_delay_and_level_match_the_distance():
    """The omni part W = (L + R) / 2 arrives d / c late (+ the 40-sample filter delay) with 1/d spreading."""
    click = np.zeros(4800)
    click[100] = 1.0
    delays, amps = [], []
    for distance in (1.0, 3.0):
        stereo = render_single_source(30.0, distance, rt60=None, signal=click, peak=None, num_samples=4800)
        w = 0.5 * (stereo[0] + stereo[1])
        delays.append(int(np.argmax(np.abs(w))) - 100 - FDL_HALF)
        amps.append(float(np.abs(w).max()))
    for distance, delay in zip((1.0, 3.0), delays):
        assert abs(delay - distance / SPEED_OF_SOUND * SAMPLE_RATE) <= 1.0
    assert amps[0] / amps[1] == pytest.approx(3.0, rel=0.05)


@pytest.mark.parametrize("rt60", [0.3, 0.8])
def test_room_impulse_response_has_the_requested_rt60(rt60: float):
    import pyroomacoustics as pra

    dims = (6.0, 5.0, 3.0)
    mic = np.array([3.0, 2.5, 1.5])
    (rir,) = coincident_rirs(dims, mic, [mic + np.array([1.5, 1.0, 0.2])], rt60, np.random.default_rng(0))
    measured = pra.experimental.measure_rt60(rir[0], SAMPLE_RATE)
    assert measured == pytest.approx(rt60, rel=0.15)
    # Diffuse late field: a figure-of-eight picks up a third of the omni's power.
    late = slice(int(0.1 * SAMPLE_RATE), None)
    ratio_db = 10 * math.log10(float(np.sum(rir[1, late] ** 2) / np.sum(rir[0, late] ** 2)))
    assert ratio_db == pytest.approx(10 * math.log10(1 / 3), abs=1.0)


def test_diffuse_noise_has_the_coincident_pair_statistics():
    wy = diffuse_noise(np.random.default_rng(0), CLIP_SAMPLES, slope=1.0)
    assert np.var(wy[1]) / np.var(wy[0]) == pytest.approx(1 / 3, rel=0.01)
    left, right = wy[0] + wy[1], wy[0] - wy[1]
    # (1 - 1/3) / (1 + 1/3) = 0.5 correlation between L and R for a diffuse field.
    assert np.corrcoef(left, right)[0, 1] == pytest.approx(0.5, abs=0.03)


def test_source_outside_the_room_is_rejected():
    with pytest.raises(ValueError, match="outside the room"):
        render_single_source(0.0, 5.0, room_dim=(6.0, 5.0, 3.0))


# ---------------------------------------------------------------- scenes
def _scenes(cfg: SynthConfig, count: int, seed: int = 0):
    for i in range(count):
        rng = clip_rng(seed, i)
        room = sample_room(seed, int(rng.integers(cfg.room.num_rooms)), cfg.room)
        yield sample_scene(rng, room, cfg.events, cfg.room)


def test_scene_labels_match_the_geometry():
    cfg = SynthConfig()
    unfolded_back = 0
    for scene in _scenes(cfg, 40):
        dims, mic = np.array(scene.room.dims_m), np.array(scene.mic_m)
        margin = cfg.room.source_wall_margin_m
        rows = scene.label_events()
        for ev in scene.events:
            pos = np.array(ev.position_m)
            assert np.all(pos >= margin - 1e-9) and np.all(pos <= dims - margin + 1e-9)
            true_distance = float(np.linalg.norm(pos - mic))
            true_azimuth = math.degrees(math.atan2(pos[1] - mic[1], pos[0] - mic[0]))
            unfolded_back += abs(true_azimuth) > 90
            mine = [r for r in rows if r.class_idx == ev.class_idx and r.source == ev.source
                    and ev.onset_frame <= r.frame < ev.offset_frame]
            assert len(mine) == len(ev.label_frames()) > 0
            for r in mine:
                assert abs(r.distance_cm - 100.0 * true_distance) <= 0.5  # to the centimetre
                assert r.azimuth == round(fold_azimuth(true_azimuth))
                assert -90 <= r.azimuth <= 90
            assert cfg.events.distance_m[0] - 1e-9 <= true_distance <= cfg.events.distance_m[1] + 1e-9
    assert unfolded_back > 10  # sources are placed all around the circle, then folded


@pytest.mark.parametrize("max_polyphony", [3, 2])
def test_polyphony_limit_and_same_class_overlaps(max_polyphony: int):
    cfg = load_synth_config(None, [f"events.max_polyphony={max_polyphony}", "events.events_per_clip=[4,8]"])
    peak_polyphony, same_class = 0, 0
    for scene in _scenes(cfg, 40, seed=5):
        rows = scene.label_events()
        per_frame = Counter(r.frame for r in rows)
        peak_polyphony = max([peak_polyphony, *per_frame.values()])
        assert all(v <= max_polyphony for v in per_frame.values())
        by_frame_class = Counter((r.frame, r.class_idx) for r in rows)
        for (frame, cls), n in by_frame_class.items():
            if n > 1:
                same_class += 1
                ids = [r.source for r in rows if r.frame == frame and r.class_idx == cls]
                assert len(set(ids)) == len(ids), "simultaneous events of one class need distinct source ids"
                azs = [r.azimuth for r in rows if r.frame == frame and r.class_idx == cls]
                assert len(set(azs)) == len(azs)
    assert peak_polyphony == max_polyphony
    assert same_class > 0


def test_bad_config_values_name_the_key():
    with pytest.raises(ConfigError, match="max_polyphony"):
        load_synth_config(None, ["events.max_polyphony=0"])
    with pytest.raises(ConfigError, match="peak"):
        load_synth_config(None, ["mix.peak=[0.5,1.2]"])
    with pytest.raises(ConfigError, match="rt60"):
        load_synth_config(None, ["room.rt60_s=[0.9,0.2]"])
    with pytest.raises(ConfigError, match="'room.reverb'"):
        load_synth_config(None, ["room.reverb=1"])


def test_yaml_documents_the_defaults():
    from seld.config import to_dict

    path = Path(__file__).resolve().parents[2] / "configs" / "synth.yml"
    assert to_dict(load_synth_config(path)) == to_dict(SynthConfig())


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
def small_set(tmp_path_factory) -> tuple[Path, synth.SynthReport]:
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
    real_render = synth.render_clip
    calls = {"n": 0}

    def crash_on_third(seed, index, cfg):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated Ctrl-C")
        return real_render(seed, index, cfg)

    monkeypatch.setattr(synth, "render_clip", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(root, 4, seed=7, workers=1, progress=False)
    monkeypatch.setattr(synth, "render_clip", real_render)
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
