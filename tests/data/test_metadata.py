from pathlib import Path

import numpy as np
import pytest

from seld.data.metadata import Event, fold_azimuth, format_metadata_csv, read_metadata_csv, write_metadata_csv
from seld.errors import DataError

HEADER = "frame,class,source,azimuth,distance,onscreen\n"


def test_fold_azimuth_maps_back_to_front():
    assert fold_azimuth(120.0) == pytest.approx(60.0)
    assert fold_azimuth(-150.0) == pytest.approx(-30.0)
    assert fold_azimuth(90.0) == pytest.approx(90.0)
    assert fold_azimuth(-90.0) == pytest.approx(-90.0)
    assert fold_azimuth(180.0) == pytest.approx(0.0)
    assert fold_azimuth(270.0) == pytest.approx(-90.0)
    arr = fold_azimuth(np.array([0.0, 45.0, 135.0, -135.0, 400.0]))
    np.testing.assert_allclose(arr, [0.0, 45.0, 45.0, -45.0, 40.0])


def test_csv_round_trip_is_exact(tmp_path: Path):
    text = HEADER + "0,1,0,30,350,0\n0,1,1,-60,120,0\n3,12,0,90,1000,0\n49,0,2,-90,55,0\n"
    src = tmp_path / "a.csv"
    src.write_text(text)
    events = read_metadata_csv(src, num_frames=50)
    out = write_metadata_csv(tmp_path / "b.csv", events)
    assert out.read_text() == text
    assert read_metadata_csv(out) == events


@pytest.mark.parametrize("az", [200, 91, -91, -150, 120])
def test_label_azimuth_outside_front_half_plane_names_file_and_line(tmp_path: Path, az: int):
    # issue 13.2: 200 used to be folded silently to -20
    p = tmp_path / "f.csv"
    p.write_text(HEADER + "0,2,0,10,200,0\n" + f"1,2,0,{az},200,0\n")
    with pytest.raises(DataError) as exc:
        read_metadata_csv(p)
    assert f"{p}:3" in str(exc.value) and f"azimuth {az} outside [-90, 90]" in str(exc.value)


def test_label_azimuth_limits_are_kept_unchanged(tmp_path: Path):
    p = tmp_path / "f.csv"
    p.write_text(HEADER + "0,2,0,90,200,0\n1,2,0,-90,200,0\n2,2,0,0,200,0\n")
    assert [e.azimuth for e in read_metadata_csv(p)] == [90.0, -90.0, 0.0]


def test_prediction_azimuths_are_folded_and_limited_to_the_circle(tmp_path: Path):
    p = tmp_path / "f.csv"
    p.write_text(HEADER + "0,2,0,120,200,0\n1,2,0,-150,200,0\n2,2,0,180,200,0\n")
    assert [e.azimuth for e in read_metadata_csv(p, predictions=True)] == [60.0, -30.0, 0.0]
    p.write_text(HEADER + "0,2,0,181,200,0\n")
    with pytest.raises(DataError, match=rf"{p.name}:2: azimuth 181 outside \[-180, 180\]"):
        read_metadata_csv(p, predictions=True)


def test_writer_folds_so_written_csvs_read_back_as_labels(tmp_path: Path):
    out = write_metadata_csv(tmp_path / "p.csv", [Event(0, 1, 0, 120.4, 100.0), Event(1, 1, 0, -170.0, 100.0)])
    assert [e.azimuth for e in read_metadata_csv(out)] == [60.0, -10.0]


def test_header_only_csv_is_valid(tmp_path: Path):
    p = tmp_path / "silent.csv"
    p.write_text(HEADER)
    assert read_metadata_csv(p) == []
    assert format_metadata_csv([]) == HEADER


@pytest.mark.parametrize(
    "body, needle",
    [
        ("0,1,0,30\n", "expected 6 columns"),
        ("0,1,0,thirty,350,0\n", "'azimuth' is not an integer"),
        ("0,13,0,30,350,0\n", "class must be in 0..12"),
        ("0,1,0,30,-5,0\n", "distance must be >= 0"),
        ("50,1,0,30,100,0\n", "frame 50 outside 0..49"),
        ("0,1,0,30.5,350,0\n", "not an integer"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, body: str, needle: str):
    p = tmp_path / "bad.csv"
    p.write_text(HEADER + "0,1,0,30,350,0\n" + body)
    with pytest.raises(DataError) as exc:
        read_metadata_csv(p, num_frames=50)
    assert f"{p}:3" in str(exc.value)
    assert needle in str(exc.value)


def test_bad_header_and_missing_file(tmp_path: Path):
    p = tmp_path / "h.csv"
    p.write_text("frame,class,azimuth\n0,1,3\n")
    with pytest.raises(DataError, match="header"):
        read_metadata_csv(p)
    with pytest.raises(DataError, match="cannot read"):
        read_metadata_csv(tmp_path / "nope.csv")


def test_event_validation():
    with pytest.raises(ValueError):
        Event(0, 13, 0, 0.0, 100.0)
    assert Event(0, 3, 0, 10.0, 250.0).distance_m == 2.5
