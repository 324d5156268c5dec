"""The simulator's scenes: labels that match the geometry, polyphony, and the checked config."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from seld.data.metadata import fold_azimuth
from seld.errors import ConfigError
from seld.sim.rooms import sample_room
from seld.sim.scenes import SynthConfig, clip_rng, load_synth_config, sample_scene


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
