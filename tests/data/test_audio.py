from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seld.data.audio import AudioConfig, load_stereo, write_stereo
from seld.data.layout import discover_clips, parse_fold
from seld.errors import DataError


def _wav(path: Path, channels: int = 2, rate: int = 24000, samples: int = 120000) -> Path:
    rng = np.random.default_rng(0)
    sf.write(str(path), 0.1 * rng.standard_normal((samples, channels)), rate, subtype="PCM_16")
    return path


def test_valid_stereo_loads(tmp_path):
    audio = load_stereo(_wav(tmp_path / "ok.wav"))
    assert audio.shape == (2, 120000) and audio.dtype == np.float32


def test_mono_rejected_or_duplicated(tmp_path):
    p = _wav(tmp_path / "mono.wav", channels=1)
    with pytest.raises(DataError, match=r"mono\.wav: expected 2 channels"):
        load_stereo(p)
    a = load_stereo(p, AudioConfig(mono_to_stereo=True))
    np.testing.assert_array_equal(a[0], a[1])


def test_wrong_rate_rejected_or_resampled(tmp_path):
    p = _wav(tmp_path / "r48.wav", rate=48000, samples=240000)
    with pytest.raises(DataError, match=r"r48\.wav: sample rate 48000 Hz, expected 24000"):
        load_stereo(p)
    assert load_stereo(p, AudioConfig(resample=True)).shape == (2, 120000)


def test_truncated_rejected_or_padded(tmp_path):
    p = _wav(tmp_path / "short.wav", samples=100000)
    with pytest.raises(DataError, match=r"short\.wav: truncated: 100000 samples, expected 120000"):
        load_stereo(p)
    a = load_stereo(p, AudioConfig(pad_or_trim=True))
    assert a.shape == (2, 120000) and not a[:, 100000:].any()
    assert load_stereo(p, AudioConfig(clip_samples=0)).shape == (2, 100000)


def test_unreadable_file_named(tmp_path):
    p = tmp_path / "broken.wav"
    p.write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(DataError, match=r"broken\.wav: unreadable audio file"):
        load_stereo(p)
    with pytest.raises(DataError, match="unreadable"):
        load_stereo(tmp_path / "missing.wav")


def test_write_stereo_round_trip(tmp_path):
    x = (0.5 * np.sin(np.linspace(0, 100, 2 * 120000))).reshape(2, -1).astype(np.float32)
    back = load_stereo(write_stereo(tmp_path / "o.wav", x))
    np.testing.assert_allclose(back, x, atol=1 / 32768 + 1e-6)


def test_discover_clips_by_split_and_fold(tmp_path):
    for split, stem in [("dev-train-sony", "fold3_room1_mix001"), ("dev-test-sony", "fold4_room2_mix002")]:
        (tmp_path / "stereo_dev" / split).mkdir(parents=True)
        (tmp_path / "metadata_dev" / split).mkdir(parents=True)
        _wav(tmp_path / "stereo_dev" / split / f"{stem}.wav", samples=10)
        (tmp_path / "metadata_dev" / split / f"{stem}.csv").write_text("frame,class,source,azimuth,distance,onscreen\n")
    clips = discover_clips(tmp_path)
    assert [(c.split, c.clip_id, c.fold) for c in clips] == [
        ("dev-test-sony", "fold4_room2_mix002", 4),
        ("dev-train-sony", "fold3_room1_mix001", 3),
    ]
    assert [c.clip_id for c in discover_clips(tmp_path, folds=[3])] == ["fold3_room1_mix001"]
    with pytest.raises(DataError, match="split 'dev-train-tau' not found"):
        discover_clips(tmp_path, splits=["dev-train-tau"])
    (tmp_path / "metadata_dev" / "dev-test-sony" / "fold4_room2_mix002.csv").unlink()
    with pytest.raises(DataError, match="no label file"):
        discover_clips(tmp_path)
    assert parse_fold("fold12_x") == 12 and parse_fold("room1") is None


def test_empty_file_named(tmp_path):
    p = _wav(tmp_path / "empty.wav", samples=0)
    with pytest.raises(DataError, match=r"empty\.wav: empty recording \(0 samples\)"):
        load_stereo(p, AudioConfig(clip_samples=0))
