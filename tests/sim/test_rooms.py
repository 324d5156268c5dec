"""The simulator's rooms: physics of the coincident W/Y pair (levels, delays, RT60, diffuse field)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from seld.constants import CLIP_SAMPLES, SAMPLE_RATE
from seld.sim.rooms import SPEED_OF_SOUND, coincident_rirs, diffuse_noise
from seld.sim.scenes import render_single_source

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

