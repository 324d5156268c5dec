"""Tests of seld.decoding: thresholds, the 15-degree merge, target round trips and CSV output."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seld.accdoa import flatten_output, unflatten_output
from seld.constants import NUM_CLASSES
from seld.data.metadata import Event, read_metadata_csv, write_metadata_csv
from seld.data.targets import build_adpit_target
from seld.decoding import (
    decode_batch,
    decode_output,
    flatten_output_np,
    quantize_events,
    target_to_output,
    unflatten_output_np,
    write_prediction_csvs,
)
from seld.metrics import MetricConfig, evaluate_folders


def make_output(tracks: dict[tuple[int, int, int], tuple[float, float, float]], frames: int = 1) -> np.ndarray:
    """Output ``(frames, 117)`` with ``{(frame, track, class): (azimuth deg, length, distance m)}`` set."""
    t = np.zeros((frames, 3, 3, NUM_CLASSES))
    for (f, k, c), (az, length, dist) in tracks.items():
        t[f, k, :, c] = (length * np.cos(np.deg2rad(az)), length * np.sin(np.deg2rad(az)), dist)
    return flatten_output_np(t)


def test_numpy_layout_matches_accdoa():
    x = np.random.default_rng(0).normal(size=(4, 50, 117)).astype(np.float32)
    np.testing.assert_array_equal(unflatten_output_np(x), unflatten_output(torch.from_numpy(x)).numpy())
    tracks = unflatten_output_np(x)
    np.testing.assert_array_equal(flatten_output_np(tracks), flatten_output(torch.from_numpy(tracks)).numpy())


def test_single_track_decoded_with_azimuth_and_distance():
    events = decode_output(make_output({(0, 1, 4): (-35.0, 0.9, 2.345)}))
    assert len(events) == 1
    e = events[0]
    assert (e.frame, e.class_idx, e.source) == (0, 4, 1)
    assert e.azimuth == pytest.approx(-35.0)
    assert e.distance_cm == pytest.approx(234.5)


def test_activity_threshold():
    out = make_output({(0, 0, 0): (10.0, 0.49, 1.0), (0, 0, 1): (10.0, 0.51, 1.0)})
    assert [e.class_idx for e in decode_output(out)] == [1]
    assert [e.class_idx for e in decode_output(out, threshold=0.4)] == [0, 1]


def test_negative_distance_clamped_to_zero():
    (e,) = decode_output(make_output({(0, 0, 2): (0.0, 1.0, -0.7)}))
    assert e.distance_cm == 0.0


def test_distant_tracks_of_one_class_kept_apart():
    out = make_output({(0, 0, 3): (-20.0, 1.0, 1.0), (0, 1, 3): (20.0, 1.0, 3.0)})
    events = decode_output(out)
    assert [(e.source, round(e.azimuth)) for e in events] == [(0, -20), (1, 20)]


def test_two_similar_tracks_merged_third_kept():
    out = make_output({(0, 0, 5): (10.0, 1.0, 1.0), (0, 1, 5): (20.0, 1.0, 3.0), (0, 2, 5): (-60.0, 0.8, 2.0)})
    events = decode_output(out)
    assert len(events) == 2
    merged, third = events
    assert merged.source == 0 and merged.azimuth == pytest.approx(15.0) and merged.distance_cm == pytest.approx(200.0)
    assert third.source == 2 and third.azimuth == pytest.approx(-60.0)


def test_similar_pair_two_and_zero_merged_into_source_zero():
    out = make_output({(0, 0, 5): (40.0, 1.0, 1.0), (0, 1, 5): (-40.0, 1.0, 3.0), (0, 2, 5): (50.0, 1.0, 2.0)})
    events = decode_output(out)
    assert [(e.source, round(e.azimuth)) for e in events] == [(0, 45), (1, -40)]
    assert events[0].distance_cm == pytest.approx(150.0)


def test_three_similar_tracks_merged_into_their_mean():
    out = make_output({(0, 0, 8): (0.0, 1.0, 1.0), (0, 1, 8): (10.0, 1.0, 2.0), (0, 2, 8): (20.0, 1.0, 3.0)})
    (e,) = decode_output(out)
    assert e.azimuth == pytest.approx(10.0) and e.distance_cm == pytest.approx(200.0)


def test_merge_threshold_configurable():
    out = make_output({(0, 0, 1): (0.0, 1.0, 1.0), (0, 1, 1): (20.0, 1.0, 1.0)})
    assert len(decode_output(out)) == 2
    assert len(decode_output(out, merge_deg=25.0)) == 1


def test_torch_and_batch_inputs_agree_with_numpy():
    rng = np.random.default_rng(1)
    out = rng.uniform(-1, 1, size=(2, 50, 117)).astype(np.float32)
    batch = decode_batch(torch.from_numpy(out))
    assert batch == [decode_output(out[0]), decode_output(out[1])]
    assert len(batch[0]) > 100


def test_shape_and_value_errors():
    with pytest.raises(ValueError, match=r"\(frames, 117\).*\(50, 116\)"):
        decode_output(np.zeros((50, 116)))
    with pytest.raises(ValueError, match=r"\(batch, frames, 117\)"):
        decode_batch(np.zeros((50, 117)))
    bad = np.zeros((50, 117))
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        decode_output(bad)
    with pytest.raises(ValueError, match=r"\(frames, 6, 4, 13\)"):
        target_to_output(np.zeros((50, 6, 3, 13)))


def random_events(rng: np.random.Generator, frames: int = 50) -> list[Event]:
    """Events of 6 classes, each in consecutive segments of 1-3 sources at azimuths >= 40 degrees apart.

    Same-class sources never come closer than the 15-degree merge, so decoding keeps them apart.
    """
    events = []
    for cls in range(6):
        f = int(rng.integers(0, 10))
        while f < frames:
            stop = min(frames, f + int(rng.integers(1, 15)))
            if rng.random() < 0.7:
                n_src = int(rng.integers(1, 4))
                azimuths = rng.choice(np.arange(-80, 81, 40), size=n_src, replace=False)
                for s, az in enumerate(azimuths):
                    dist = int(rng.integers(30, 600))
                    events += [Event(k, cls, s, float(az), float(dist)) for k in range(f, stop)]
            f = stop
    return events


def test_target_round_trip_recovers_events():
    rng = np.random.default_rng(2)
    events = random_events(rng)
    out = target_to_output(build_adpit_target(events))
    decoded = quantize_events(decode_output(out))

    def key(evts):
        groups = {}
        for e in evts:
            groups.setdefault((e.frame, e.class_idx), []).append((e.azimuth, e.distance_cm))
        return {k: sorted(v) for k, v in groups.items()}

    # two or three same-class events share a (frame, class); compare them as sorted lists per cell
    assert key(decoded) == key(events)
    assert len(decoded) == len(events) > 100
    assert max(len(v) for v in key(events).values()) == 3
    # the source id is the track id: A0 -> 0; B0, B1 -> 0, 1; C0..C2 -> 0..2, as the target orders them
    as_tuples = lambda evts: sorted((e.frame, e.class_idx, e.source, e.azimuth, e.distance_cm) for e in evts)  # noqa: E731
    assert as_tuples(decoded) == as_tuples(events)


def test_decode_csv_metrics_on_target_gives_perfect_scores(tmp_path):
    rng = np.random.default_rng(3)
    refs = {f"fold4_clip{i}": random_events(rng) for i in range(4)}
    for name, events in refs.items():
        write_metadata_csv(tmp_path / "ref" / "dev-test-synth" / f"{name}.csv", events)
    outputs = np.stack([target_to_output(build_adpit_target(e)) for e in refs.values()])
    paths = write_prediction_csvs(tmp_path / "pred", list(refs), torch.from_numpy(outputs))
    assert [p.name for p in paths] == [f"{n}.csv" for n in refs]
    assert "frame,class,source,azimuth,distance,onscreen" in paths[0].read_text()
    read_back = read_metadata_csv(paths[0])
    assert all(float(e.azimuth).is_integer() and float(e.distance_cm).is_integer() for e in read_back)
    for mode in ("dcase2025", "strict"):
        s = evaluate_folders(tmp_path / "pred", tmp_path / "ref", MetricConfig(mode=mode))
        scored = s.n_ref > 0
        assert scored.sum() >= 4
        np.testing.assert_allclose(s.classwise_F[scored], 1.0)
        np.testing.assert_array_equal(s.classwise_F[~scored], 0.0)
        assert s.F == pytest.approx(scored.sum() / NUM_CLASSES)
        assert s.DOAE == pytest.approx(0.0, abs=1e-9) and s.RDE == pytest.approx(0.0, abs=1e-9)
        assert int(s.FP.sum() + s.FN.sum() + s.FP_spatial.sum()) == 0


def test_write_prediction_csvs_checks_lengths(tmp_path):
    with pytest.raises(ValueError, match="2 clip ids but 1 outputs"):
        write_prediction_csvs(tmp_path, ["a", "b"], np.zeros((1, 50, 117)))
