"""Spatial feature channels: exact values for an ideal panned source, physics on simulated rooms."""
from __future__ import annotations

import numpy as np
import pytest

from seld.errors import ConfigError
from seld.features.channels import CHANNELS, resolve_channels
from seld.features.config import FeatureConfig
from seld.features.extract import compute_batch_features, compute_clip_features
from seld.sim.scenes import render_single_source
from tests.features.simdata import panned_clip

SPATIAL = ["logmel_l", "logmel_r", "logmel_mid", "ild", "ivy", "ipd_cos", "ipd_sin"]


@pytest.mark.parametrize("azimuth", [70.0, 25.0, 0.0, -40.0])
def test_ideal_coincident_pair_gives_closed_form_ild_and_ivy(azimuth: float) -> None:
    # L = (1 + s) x, R = (1 - s) x with s = sin(az): ILD = 20 log10((1+s)/(1-s)), IVy = 2s/(1+s^2).
    audio = panned_clip(azimuth, np.random.default_rng(0))
    f = compute_clip_features(audio, SPATIAL, FeatureConfig())
    s = np.sin(np.deg2rad(azimuth))
    active = f["logmel_mid"] > f["logmel_mid"].max() - 60
    assert active.mean() > 0.5
    np.testing.assert_allclose(f["ild"][active], 20 * np.log10((1 + s) / (1 - s)), atol=1e-3)
    np.testing.assert_allclose(f["ivy"][active], 2 * s / (1 + s**2), atol=1e-5)
    # Same phase in both channels: the mel-averaged phase difference is 0.
    np.testing.assert_allclose(f["ipd_cos"], 1.0, atol=1e-4)  # float32 rounding of L, R
    np.testing.assert_allclose(f["ipd_sin"], 0.0, atol=1e-4)
    # ILD is exactly the difference of the two log-mel channels.
    np.testing.assert_allclose(f["ild"], f["logmel_l"] - f["logmel_r"], atol=1e-4)


def test_ivy_is_bounded_and_odd_under_channel_swap() -> None:
    rng = np.random.default_rng(5)
    audio = rng.standard_normal((2, 24000)).astype(np.float32)  # independent channels: random phase
    f = compute_clip_features(audio, ["ivy", "ild", "ipd_sin"], FeatureConfig())
    g = compute_clip_features(audio[::-1].copy(), ["ivy", "ild", "ipd_sin"], FeatureConfig())
    assert np.all(np.abs(f["ivy"]) <= 1.0)
    for name in ("ivy", "ild", "ipd_sin"):
        np.testing.assert_allclose(g[name], -f[name], atol=1e-4, err_msg=name)


def _mean_cues(azimuth: float) -> tuple[float, float]:
    """Mean ILD (dB) and IVy over the bands and frames holding energy, for one simulated source."""
    audio = render_single_source(azimuth, 2.0, rt60=0.4, seed=0, class_idx=2)
    f = compute_clip_features(audio, ["logmel_mid", "ild", "ivy"], FeatureConfig())
    active = f["logmel_mid"] > f["logmel_mid"].max() - 40
    assert active.mean() > 0.2
    return float(f["ild"][active].mean()), float(f["ivy"][active].mean())


def test_simulated_source_left_right_front() -> None:
    ild_left, ivy_left = _mean_cues(60.0)
    ild_right, ivy_right = _mean_cues(-60.0)
    ild_front, ivy_front = _mean_cues(0.0)
    assert ild_left > 1.0 and ivy_left > 0.1
    assert ild_right < -1.0 and ivy_right < -0.1
    assert abs(ild_front) < 0.5 and abs(ivy_front) < 0.05


def test_silent_clip_gives_finite_floor_values() -> None:
    names = list(CHANNELS)
    cfg = FeatureConfig()
    cfg.wpe.iterations = 1
    with pytest.warns(UserWarning, match="under-determined"):  # 25 frames: see the test below
        f = compute_clip_features(np.zeros((2, 12000), np.float32), names, cfg)
    for name in names:
        assert np.all(np.isfinite(f[name])), name
    # 10 log10(amin); the DRR too: 1e-100 / (1e-100 + 1e-8) per bin, the authors' floor and eps
    for name in ("logmel_l", "logmel_mid", "direct_logmel", "reverb_logmel", "drr_logmel"):
        np.testing.assert_allclose(f[name], -100.0)
    for name in ("ild", "ivy", "ipd_sin"):
        np.testing.assert_allclose(f[name], 0.0)


def test_batch_of_clips_equals_clip_by_clip() -> None:
    rng = np.random.default_rng(2)
    audio = np.stack([panned_clip(a, rng, rt60=0.3, num_samples=24000) for a in (30.0, -50.0, 10.0)])
    batch = compute_batch_features(audio, SPATIAL, FeatureConfig())
    for i in range(3):
        single = compute_clip_features(audio[i], SPATIAL, FeatureConfig())
        for name in SPATIAL:
            np.testing.assert_allclose(batch[name][i], single[name], atol=1e-5, err_msg=name)


def test_channel_names_resolve_groups_and_reject_unknown() -> None:
    assert resolve_channels(["ild", "ipd", "ild"]) == ["ild", "ipd_cos", "ipd_sin"]
    with pytest.raises(ConfigError, match=r"unknown feature channel 'ilds'.*logmel_mid.*ipd"):
        resolve_channels(["ilds"])
    assert FeatureConfig(channels=["ipd"]).channels == ["ipd_cos", "ipd_sin"]


def test_wpe_on_clips_shorter_than_its_filter_is_warned_and_on_longer_ones_not(recwarn) -> None:
    # taps 60 + delay 5 = 65 frames of 20 ms: 1.3 s. Below, R = sum_t lam ytil ytil^H has rank < K.
    cfg = FeatureConfig()
    cfg.wpe.iterations = 1
    rng = np.random.default_rng(0)
    compute_clip_features(rng.standard_normal((2, 31200)).astype(np.float32), ["direct_logmel"], cfg)  # 1.3 s: 65
    compute_clip_features(rng.standard_normal((2, 24000)).astype(np.float32), ["ild", "ivy"], cfg)  # no WPE
    assert not [w for w in recwarn if "wpe" in str(w.message).lower()]
    with pytest.warns(UserWarning, match=r"28800 samples \(60 frames of 480\).*taps \+ wpe.delay = 65"):
        f = compute_clip_features(rng.standard_normal((2, 28800)).astype(np.float32), ["direct_logmel"], cfg)
    assert np.all(np.isfinite(f["direct_logmel"]))
