"""Paired differences over seeds: the Student-t interval on cases worked by hand (t from tables)."""
from __future__ import annotations

import math

import pytest

from seld.stats import paired_difference


def test_three_seeds_by_hand():
    # d = [1, 2, 3]: mean 2, sd 1, se 1/sqrt(3); t(0.975, 2 dof) = 4.3027 -> half width 2.4841
    got = paired_difference([31.0, 32.0, 33.5], [30.0, 30.0, 30.5])
    assert (got.mean, got.n, got.confidence) == (2.0, 3, 0.95)
    assert got.low == pytest.approx(2 - 2.48414, abs=1e-4) and got.high == pytest.approx(2 + 2.48414, abs=1e-4)
    assert not got.excludes_zero


def test_five_seeds_at_90_percent_by_hand():
    # d = [0.5, 1.5, 1.0, 2.0, 1.0]: mean 1.2, sd sqrt(1.3 / 4) = 0.570088, se 0.254951;
    # t(0.95, 4 dof) = 2.1318 -> half width 0.543517
    got = paired_difference([1.5, 2.5, 2.0, 3.0, 2.0], [1.0] * 5, confidence=0.90)
    assert got.mean == pytest.approx(1.2)
    assert (got.low, got.high) == (pytest.approx(0.656483, abs=1e-5), pytest.approx(1.743517, abs=1e-5))
    assert got.excludes_zero and paired_difference([0.0] * 5, [1.5, 2.5, 2.0, 3.0, 2.0]).excludes_zero


def test_one_seed_has_no_interval_and_bad_inputs_are_errors():
    one = paired_difference([36.0], [34.5])
    assert one.mean == 1.5 and one.n == 1 and math.isnan(one.low) and math.isnan(one.high)
    assert not one.excludes_zero
    with pytest.raises(ValueError, match="equally long"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="equally long"):
        paired_difference([], [])
    with pytest.raises(ValueError, match="non-finite"):
        paired_difference([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="confidence"):
        paired_difference([1.0, 2.0], [0.0, 0.0], confidence=95)
