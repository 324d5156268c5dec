"""The procedural sound classes: valid signals, randomised per event, and acoustically distinct."""
from __future__ import annotations

import numpy as np
import pytest

from seld.constants import NUM_CLASSES, SAMPLE_RATE
from seld.sim.sounds import SOUND_GENERATORS, active_level, synthesize_event


def _band_features(x: np.ndarray, n_fft: int = 1024, hop: int = 480, bands: int = 32) -> np.ndarray:
    """Mean and std over time of log power in log-spaced bands (50 Hz .. 12 kHz), level-invariant."""
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    edges = np.geomspace(50.0, SAMPLE_RATE / 2, bands + 1)
    idx = np.clip(np.digitize(freqs, edges) - 1, 0, bands - 1)
    band_power = np.stack([power[:, idx == b].sum(axis=1) for b in range(bands)], axis=1)
    logp = np.log(band_power + 1e-10)
    logp -= logp.mean()
    return np.concatenate([logp.mean(axis=0), logp.std(axis=0)])


def test_every_class_has_a_generator():
    assert sorted(SOUND_GENERATORS) == list(range(NUM_CLASSES))


@pytest.mark.parametrize("class_idx", range(NUM_CLASSES))
def test_event_is_valid_and_level_normalised(class_idx: int):
    n = 36_000  # 1.5 s
    x = synthesize_event(class_idx, n, np.random.default_rng(class_idx))
    assert x.shape == (n,) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    assert active_level(x) == pytest.approx(1.0, rel=1e-4)
    # 5 ms fades: the first and last samples are (nearly) silent.
    assert abs(x[0]) < 1e-6 and abs(x[-1]) < 1e-2 * np.abs(x).max()


def test_events_are_randomised_and_reproducible():
    for c in range(NUM_CLASSES):
        a = synthesize_event(c, 24_000, np.random.default_rng(1))
        b = synthesize_event(c, 24_000, np.random.default_rng(1))
        d = synthesize_event(c, 24_000, np.random.default_rng(2))
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, d), f"class {c}: two seeds gave the same event"


def test_unknown_class_is_rejected_with_the_valid_names():
    with pytest.raises(ValueError, match="valid classes: 0 .Female speech"):
        synthesize_event(13, 100, np.random.default_rng(0))
    with pytest.raises(ValueError, match="num_samples"):
        synthesize_event(0, 0, np.random.default_rng(0))


def _median_f0(x: np.ndarray) -> float:
    """Median autocorrelation pitch (60-400 Hz) of the loudest 40 ms frames."""
    win = int(0.04 * SAMPLE_RATE)
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::win]
    loud = frames[np.argsort((frames**2).sum(axis=1))[-15:]]
    f0s = []
    lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 60
    for f in loud:
        f = f - f.mean()
        ac = np.correlate(f, f, mode="full")[win - 1 :]
        f0s.append(SAMPLE_RATE / (lo + np.argmax(ac[lo:hi])))
    return float(np.median(f0s))


def test_female_and_male_speech_pitch_ranges():
    female = [_median_f0(synthesize_event(0, 48_000, np.random.default_rng(s))) for s in range(4)]
    male = [_median_f0(synthesize_event(1, 48_000, np.random.default_rng(s))) for s in range(4)]
    assert min(female) > 140.0, female
    assert max(male) < 165.0, male
    assert np.median(female) > 1.5 * np.median(male)


def test_classes_are_separable_by_a_nearest_centroid_on_band_energies():
    """A cheap spectral nearest-centroid classifier tells held-out events of the 13 classes apart."""
    feats, labels = [], []
    per_class = 8
    for c in range(NUM_CLASSES):
        for k in range(per_class):
            rng = np.random.default_rng([c, k, 99])
            n = int(rng.integers(8, 26)) * 2400  # 0.8-2.5 s, on the 100 ms grid
            feats.append(_band_features(synthesize_event(c, n, rng).astype(np.float64)))
            labels.append(c)
    X, y = np.array(feats), np.array(labels)
    train = np.arange(len(y)) % per_class < 5
    centroids = np.stack([X[train & (y == c)].mean(axis=0) for c in range(NUM_CLASSES)])
    scale = X[train].std(axis=0) + 1e-6
    dist = (((X[~train, None, :] - centroids[None]) / scale) ** 2).sum(axis=-1)
    accuracy = float((dist.argmin(axis=1) == y[~train]).mean())
    assert accuracy >= 0.85, f"nearest-centroid accuracy {accuracy:.2f} on held-out events"
