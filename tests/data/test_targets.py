import numpy as np
import pytest

from seld.data.metadata import Event
from seld.data.targets import build_adpit_target, target_to_events


def _xyzd(target, frame, track, cls):
    return target[frame, track, :, cls]


def test_empty_events_give_all_zero_target():
    t = build_adpit_target([])
    assert t.shape == (50, 6, 4, 13) and t.dtype == np.float32
    assert not t.any()


def test_single_event_goes_to_a0():
    t = build_adpit_target([Event(7, 3, 0, 30.0, 250.0)])
    np.testing.assert_allclose(_xyzd(t, 7, 0, 3), [1, np.cos(np.pi / 6), 0.5, 2.5], rtol=1e-6)
    assert np.count_nonzero(t[:, :, 0, :]) == 1


def test_two_same_class_events_keep_their_own_values():
    t = build_adpit_target([Event(2, 1, 0, -60.0, 300.0), Event(2, 1, 1, 80.0, 500.0)])
    np.testing.assert_allclose(_xyzd(t, 2, 1, 1), [1, np.cos(np.deg2rad(-60)), np.sin(np.deg2rad(-60)), 3.0], rtol=1e-6)
    np.testing.assert_allclose(_xyzd(t, 2, 2, 1), [1, np.cos(np.deg2rad(80)), np.sin(np.deg2rad(80)), 5.0], rtol=1e-6)
    assert not t[2, 0].any() and not t[2, 3:].any()


def test_three_same_class_events_fill_c_tracks_and_fourth_is_dropped():
    ev = [Event(0, 6, s, az, d) for s, az, d in [(0, 40, 300), (1, -80, 400), (2, 10, 500), (3, 70, 600)]]
    t = build_adpit_target(ev)
    for slot, (az, d) in zip((3, 4, 5), [(40, 3.0), (-80, 4.0), (10, 5.0)]):
        np.testing.assert_allclose(
            _xyzd(t, 0, slot, 6), [1, np.cos(np.deg2rad(az)), np.sin(np.deg2rad(az)), d], rtol=1e-6
        )
    assert not t[0, :3].any()
    assert np.count_nonzero(t[0, :, 0, 6]) == 3


def test_different_classes_same_frame_each_in_a0():
    t = build_adpit_target([Event(5, 0, 0, 10.0, 100.0), Event(5, 1, 0, -10.0, 200.0)])
    assert t[5, 0, 0, 0] == 1 and t[5, 0, 0, 1] == 1
    assert not t[5, 1:].any()


def test_events_outside_frames_ignored_and_inverse():
    ev = [Event(1, 2, 0, 20.0, 150.0), Event(1, 2, 1, -45.0, 250.0), Event(60, 2, 0, 0.0, 100.0)]
    t = build_adpit_target(ev)
    back = sorted((e.frame, e.class_idx, e.source, round(e.azimuth), e.distance_cm) for e in target_to_events(t))
    assert back == [(1, 2, 0, 20, 150.0), (1, 2, 1, -45, 250.0)]
    with pytest.raises(ValueError, match="target must be"):
        target_to_events(np.zeros((50, 6, 4)))


def test_four_same_class_events_keep_the_first_three_rows_in_file_order(tmp_path):
    """As the official DCASE2025 baseline's label code: rows of one (frame, class) fill the tracks in
    file order and the fourth row is dropped, whatever the source ids say."""
    from seld.data.metadata import read_metadata_csv

    csv = tmp_path / "fold4_room1_mix001.csv"
    csv.write_text(
        "frame,class,source,azimuth,distance,onscreen\n"
        "3,6,3,70,600,0\n"  # source ids deliberately out of order
        "3,6,0,40,300,0\n"
        "3,6,2,10,500,0\n"
        "3,6,1,-80,400,0\n"  # fourth row: dropped, although its source id is 1
        "3,2,0,0,100,0\n"
    )
    t = build_adpit_target(read_metadata_csv(csv))
    for slot, (az, d) in zip((3, 4, 5), [(70, 6.0), (40, 3.0), (10, 5.0)]):
        np.testing.assert_allclose(_xyzd(t, 3, slot, 6), [1, np.cos(np.deg2rad(az)), np.sin(np.deg2rad(az)), d], rtol=1e-6)
    assert np.count_nonzero(t[3, :, 0, 6]) == 3 and not t[3, :3, :, 6].any()
    assert t[3, 0, 0, 2] == 1  # the other class is unaffected
    kept_azimuths = sorted(round(e.azimuth) for e in target_to_events(t) if e.class_idx == 6)
    assert kept_azimuths == [10, 40, 70]  # -80 (4th row) is gone
