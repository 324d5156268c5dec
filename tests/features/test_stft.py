"""The STFT / log-mel front end against librosa, and the frame-count convention."""
from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from seld.features.config import FeatureConfig, MelConfig, StftConfig
from seld.features.extract import compute_clip_features
from seld.features.stft import istft, log_mel, num_feature_frames, stft
from seld.sim.scenes import render_single_source


def librosa_logmel(x: np.ndarray, win_length: int = 960) -> np.ndarray:
    """librosa reference with the spec's parameters (960-sample Hann zero-padded to 1024) -> (frames, 64)."""
    mel = librosa.feature.melspectrogram(
        y=x, sr=24000, n_fft=1024, hop_length=480, win_length=win_length, window="hann", center=True,
        pad_mode="constant", power=2.0, n_mels=64, fmin=0.0, fmax=12000.0, htk=False, norm="slaney",
    )
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).T


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    # A real (simulated-room) recording: a telephone ring at 40 deg with reverberation.
    return render_single_source(40.0, 2.0, rt60=0.5, seed=3, class_idx=3)


def test_logmel_matches_librosa_within_1e_3_db(clip: np.ndarray) -> None:
    ref = librosa_logmel(clip[0])
    assert ref.shape == (251, 64)  # librosa's centred STFT has one frame more
    ours = log_mel(torch.from_numpy(clip[0]), StftConfig(), MelConfig()).numpy()
    assert ours.shape == (250, 64)
    assert ref[:250].min() < -60  # the comparison covers quiet bins too
    np.testing.assert_allclose(ours, ref[:250], atol=1e-3, rtol=0)


def test_channel_logmels_match_librosa(clip: np.ndarray) -> None:
    cfg = FeatureConfig(peak_normalize=False)
    feats = compute_clip_features(clip, ["logmel_l", "logmel_r", "logmel_mid"], cfg)
    for name, signal in (("logmel_l", clip[0]), ("logmel_r", clip[1]), ("logmel_mid", 0.5 * (clip[0] + clip[1]))):
        assert feats[name].dtype == np.float32 and feats[name].shape == (250, 64)
        np.testing.assert_allclose(feats[name], librosa_logmel(signal)[:250], atol=1e-3, rtol=0, err_msg=name)


def test_peak_normalisation_shifts_logmel_by_the_peak_gain(clip: np.ndarray) -> None:
    raw = compute_clip_features(clip, ["logmel_l"], FeatureConfig(peak_normalize=False))["logmel_l"]
    norm = compute_clip_features(clip, ["logmel_l"], FeatureConfig(peak_normalize=True))["logmel_l"]
    gain_db = -20 * np.log10(np.abs(clip).max())
    loud = raw > -80  # away from the amin floor
    np.testing.assert_allclose(norm[loud] - raw[loud], gain_db, atol=1e-3)


@pytest.mark.parametrize(
    "samples, frames", [(120000, 250), (120001, 255), (2400, 5), (1, 5), (24000 * 7 + 1200, 355)]
)
def test_frames_are_five_per_label_frame(samples: int, frames: int) -> None:
    assert num_feature_frames(samples, 480) == frames
    feats = compute_clip_features(np.zeros((2, samples), np.float32), ["logmel_mid"], FeatureConfig())
    assert feats["logmel_mid"].shape == (frames, 64)


def test_long_audio_equals_librosa_on_zero_padded_signal() -> None:
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(24000 * 7 + 1200)).astype(np.float32)  # 7.05 s -> 71 label frames, 355 frames
    ours = compute_clip_features(np.stack([x, x]), ["logmel_l"], FeatureConfig(peak_normalize=False))["logmel_l"]
    padded = np.pad(x, (0, 71 * 2400 - x.size))
    np.testing.assert_allclose(ours, librosa_logmel(padded)[:355], atol=1e-3, rtol=0)


@pytest.mark.parametrize("win_length", [960, 1024])
def test_istft_inverts_stft(win_length: int) -> None:
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((3, 12000)))
    spec = stft(x, 1024, 480, win_length)
    assert spec.shape == (3, 513, 12000 // 480 + 1)
    np.testing.assert_allclose(istft(spec, 1024, 480, 12000, win_length).numpy(), x.numpy(), atol=1e-10)


def test_stft_equals_librosa_with_the_window_zero_padded_to_n_fft(clip: np.ndarray) -> None:
    ours = stft(torch.from_numpy(clip[0].astype(np.float64)), 1024, 480, 960).numpy()
    ref = librosa.stft(clip[0].astype(np.float64), n_fft=1024, hop_length=480, win_length=960,
                       window="hann", center=True, pad_mode="constant")
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    # the window length is a real setting: a 1024-sample window gives other log-mels
    w1024 = log_mel(torch.from_numpy(clip[0]), StftConfig(win_length=1024), MelConfig()).numpy()
    np.testing.assert_allclose(w1024, librosa_logmel(clip[0], win_length=1024)[:250], atol=1e-3, rtol=0)
    assert np.abs(w1024 - librosa_logmel(clip[0])[:250]).max() > 0.1


def test_bad_window_length_is_a_config_error() -> None:
    from seld.config import from_dict
    from seld.errors import ConfigError

    with pytest.raises(ConfigError, match="win_length"):
        from_dict(FeatureConfig, {"stft": {"win_length": 2048}})


def test_hop_that_does_not_divide_the_label_hop_is_a_config_error() -> None:
    from seld.config import from_dict
    from seld.errors import ConfigError

    with pytest.raises(ConfigError, match="hop_length 500"):
        from_dict(FeatureConfig, {"stft": {"hop_length": 500}})
