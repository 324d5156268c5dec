"""Tests of seld.metrics.jackknife and SeldScorer.jackknife: official formulas, rescoring parity,
intervals that stay inside the metric's range."""
from __future__ import annotations

import numpy as np
import pytest

from seld.data.metadata import Event
from seld.metrics import MetricConfig, SeldScorer, jackknife_ci
from tests.metrics.clips import random_clip


def test_jackknife_ci_of_a_mean_gives_standard_error_of_the_mean():
    x = np.random.default_rng(2).normal(size=30)
    partial = (x.sum() - x) / (x.size - 1)  # leave-one-out means
    j = jackknife_ci(x.mean(), partial)
    assert j.bias == pytest.approx(0.0, abs=1e-12)
    assert j.std_err == pytest.approx(x.std(ddof=1) / np.sqrt(x.size))
    from scipy import stats

    t = stats.t.ppf(0.975, x.size - 1)
    assert (j.ci_low, j.ci_high) == pytest.approx((x.mean() - t * j.std_err, x.mean() + t * j.std_err))


def test_scorer_jackknife_equals_rescoring_without_each_clip():
    rng = np.random.default_rng(3)
    clips = [random_clip(rng) for _ in range(12)]
    scorer = SeldScorer()
    for pred, ref in clips:
        scorer.add_clip(pred, ref)
    partial_f = []
    for i in range(len(clips)):
        s = SeldScorer()
        for k, (pred, ref) in enumerate(clips):
            if k != i:
                s.add_clip(pred, ref)
        partial_f.append(s.result().F)
    want = jackknife_ci(scorer.result().F, np.array(partial_f), transform="logit", upper=1.0)
    got = scorer.jackknife()["F"]
    assert got.ci_low == pytest.approx(want.ci_low) and got.ci_high == pytest.approx(want.ci_high)
    assert got.ci_low < got.value < got.ci_high


def _outlier_clips() -> list[tuple[list[Event], list[Event]]]:
    """Six clips of one class-0 event in frames 0 and 1; clip 0's prediction is 160 deg off."""
    clips = []
    for i in range(6):
        ref = [Event(f, 0, 0, 80.0, 200.0) for f in (0, 1)]
        err = 160.0 if i == 0 else 1.0
        pred = [Event(f, 0, 0, 80.0 - err, 200.0 + 10 * i) for f in (0, 1)]
        clips.append((pred, ref))
    return clips


def test_jackknife_intervals_of_non_negative_metrics_stay_at_or_above_zero():
    # issue 13.7: one outlier clip gave DOAE intervals like [-9.80, 48.42]
    scorer = SeldScorer(MetricConfig(mode="strict"))
    for pred, ref in _outlier_clips():
        scorer.add_clip(pred, ref)
    raw = scorer.jackknife(transforms={name: ("none", 0.0) for name in ("F", "DOAE", "RDE")})
    assert raw["DOAE"].ci_low < 0  # the official raw-scale interval reproduces the problem
    got = scorer.jackknife()
    doae = got["DOAE"]
    assert doae.value == pytest.approx((160.0 + 5 * 1.0) / 6)
    assert 0 < doae.ci_low < doae.estimate < doae.ci_high
    assert doae.ci_high < 180  # DOAE of folded azimuths cannot exceed 180 deg
    # the interval is the t interval of logit(DOAE / 180), mapped back
    partial = np.array([1.0] + [(160.0 + 4.0) / 5] * 5)
    logit = lambda y: np.log(y / (180.0 - y))  # noqa: E731
    j = jackknife_ci(logit(doae.value), logit(partial))
    back = lambda x: 180.0 / (1 + np.exp(-x))  # noqa: E731
    assert (doae.ci_low, doae.ci_high) == pytest.approx((back(j.ci_low), back(j.ci_high)))
    for name in ("F", "RDE"):
        assert 0 <= got[name].ci_low <= got[name].ci_high
    assert got["F"].ci_high <= 1


def test_jackknife_transforms_keep_range_and_fall_back_on_the_edge():
    partial = np.array([0.0, 3.0, 3.0, 3.0])  # a leave-one-out value of 0: log is infinite there
    raw = jackknife_ci(2.25, partial)
    edge = jackknife_ci(2.25, partial, transform="log")
    assert raw.ci_low < 0 and edge.ci_low == 0.0 and edge.ci_high == pytest.approx(raw.ci_high)
    f = jackknife_ci(0.97, np.array([0.99, 0.99, 0.9, 0.99, 0.99]), transform="logit")
    assert 0 < f.ci_low < f.estimate < f.ci_high < 1
    d = jackknife_ci(97.0, np.array([99.0, 99.0, 90.0, 99.0, 99.0]), transform="logit", upper=100.0)
    assert (d.ci_low, d.ci_high) == pytest.approx((100 * f.ci_low, 100 * f.ci_high))
    assert jackknife_ci(0.97, np.array([0.99, 0.99, 0.9, 0.99, 0.99])).ci_high > 1
    nan = jackknife_ci(float("nan"), np.array([1.0, 2.0]), transform="log")
    assert np.isnan(nan.ci_low) and np.isnan(nan.estimate)
    with pytest.raises(ValueError, match="transform"):
        jackknife_ci(1.0, np.array([1.0, 2.0]), transform="sqrt")
