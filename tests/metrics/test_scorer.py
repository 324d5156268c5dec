"""Tests of seld.metrics.scorer (and the pairing and summary under it): hand-computed cases, official
quirks, parity with a plain loop implementation."""
from __future__ import annotations

import numpy as np
import pytest

from seld.constants import NUM_CLASSES
from seld.errors import ConfigError
from seld.metrics import MetricConfig, SeldScorer
from tests.metrics.clips import ev, loop_reference, random_clip, score


# --- hand-computed cases ----------------------------------------------------------------------


def test_folded_azimuth_120_scored_correct_against_60():
    s = score([ev(0, 0, 120)], [ev(0, 0, 60)])
    assert (s.TP[0], s.FP_spatial[0], s.FP[0], s.FN[0]) == (1, 0, 0, 0)
    assert s.classwise_F[0] == pytest.approx(1.0)
    assert s.DOAE == pytest.approx(0.0)


def test_40_degree_error_is_spatial_false_positive():
    s = score([ev(0, 0, 50)], [ev(0, 0, 10)])
    assert (s.TP[0], s.FP_spatial[0], s.FP[0], s.FN[0]) == (0, 1, 0, 0)
    assert s.classwise_F[0] == 0.0
    assert s.DOAE == pytest.approx(40.0)  # DOAE counts every pair, without thresholds


def test_one_good_one_bad_frame_gives_half():
    # frame 0: 10 deg off (TP); frame 1: 40 deg off (FP_spatial) -> F = 1 / (1 + 1) = 0.5
    s = score([ev(0, 4, 20), ev(1, 4, 50)], [ev(0, 4, 10), ev(1, 4, 10)])
    assert s.classwise_F[4] == pytest.approx(0.5)
    assert s.classwise_DOAE[4] == pytest.approx(25.0)
    assert s.F == pytest.approx(0.5 / NUM_CLASSES)


def test_relative_distance_error_1_5_is_spatial_false_positive():
    s = score([ev(0, 0, 10, dist_cm=500)], [ev(0, 0, 10, dist_cm=200)])
    assert (s.TP[0], s.FP_spatial[0]) == (0, 1)
    assert s.RDE == pytest.approx(1.5)
    assert s.DE_m == pytest.approx(3.0)


def test_relative_distance_error_exactly_at_threshold_is_true_positive():
    s = score([ev(0, 0, 10, dist_cm=400)], [ev(0, 0, 10, dist_cm=200)])
    assert (s.TP[0], s.FP_spatial[0]) == (1, 0)
    assert s.RDE == pytest.approx(1.0)


def test_angular_error_exactly_20_is_true_positive():
    s = score([ev(0, 0, 30)], [ev(0, 0, 10)])
    assert s.TP[0] == 1


def test_absolute_distance_threshold_optional():
    pred, ref = [ev(0, 0, 10, dist_cm=350)], [ev(0, 0, 10, dist_cm=200)]
    assert score(pred, ref).TP[0] == 1
    s = score(pred, ref, abs_dist_threshold_m=1.0)
    assert (s.TP[0], s.FP_spatial[0]) == (0, 1)


def test_two_same_class_sources_paired_by_hungarian():
    # in file order pred[0] would pair with ref[0] (35 deg off); the optimal pairing is 5 + 5 deg
    ref = [ev(0, 2, 10, 100, source=0), ev(0, 2, 50, 300, source=1)]
    pred = [ev(0, 2, 45, 300, source=0), ev(0, 2, 15, 100, source=1)]
    s = score(pred, ref)
    assert (s.TP[2], s.FP_spatial[2], s.FP[2], s.FN[2]) == (2, 0, 0, 0)
    assert s.classwise_DOAE[2] == pytest.approx(5.0)
    assert s.classwise_RDE[2] == pytest.approx(0.0)  # the distances follow the pairing


def test_hungarian_pairs_on_folded_azimuths():
    ref = [ev(0, 2, 30, source=0), ev(0, 2, -60, source=1)]
    pred = [ev(0, 2, -120, source=0), ev(0, 2, 150, source=1)]  # fold to -60 and 30
    s = score(pred, ref)
    assert s.TP[2] == 2 and s.classwise_DOAE[2] == pytest.approx(0.0)


def test_extra_prediction_and_missing_reference_counted():
    ref = [ev(0, 1, 0, source=0), ev(0, 1, 60, source=1)]
    s = score([ev(0, 1, 58)], ref)
    assert (s.TP[1], s.FP_spatial[1], s.FP[1], s.FN[1]) == (1, 0, 0, 1)
    assert s.classwise_F[1] == pytest.approx(1 / (1 + 0.5))
    s = score(ref, [ev(0, 1, 58)])
    assert (s.TP[1], s.FP[1], s.FN[1]) == (1, 1, 0)


def test_false_positive_only_class():
    ref = [ev(0, 0, 10)]
    pred = [ev(0, 0, 10), ev(0, 3, -20)]
    s = score(pred, ref)
    assert (s.TP[3], s.FP[3], s.FN[3], s.n_ref[3]) == (0, 1, 0, 0)
    assert s.classwise_F[3] == 0.0
    assert np.isnan(s.classwise_DOAE[3])
    assert s.F == pytest.approx(1 / NUM_CLASSES)  # only class 0 scores
    micro = score(pred, ref, average="micro")
    assert micro.F == pytest.approx(1 / (1 + 0.5 * 1))


def test_perfect_prediction_on_subset_scores_classes_over_13_in_macro():
    classes = (0, 2, 5, 9)
    ref = [ev(f, c, 10 * c - 40, 100 + 20 * f) for f in range(5) for c in classes]
    s = score(list(ref), ref)
    assert s.F == pytest.approx(len(classes) / NUM_CLASSES)
    np.testing.assert_allclose(s.classwise_F[list(classes)], 1.0)
    assert score(list(ref), ref, average="micro").F == pytest.approx(1.0)
    assert s.DOAE == pytest.approx(0.0) and s.RDE == pytest.approx(0.0)


def test_empty_scores_are_zero_and_nan():
    s = SeldScorer().result()
    assert s.F == 0.0 and np.isnan(s.DOAE) and np.isnan(s.RDE) and s.n_clips == 0


# --- official quirks ------------------------------------------------------------------------


def _clip_frames_0_to_9():
    ref = [ev(f, 0, 20, 150) for f in range(10)]
    pred = [ev(f, 0, 20, 150) for f in range(9)] + [ev(9, 0, -60, 150)]  # frame 9 is wrong
    pred += [ev(30, 1, 0, 100)]  # a false alarm after the annotated part
    return pred, ref


def test_dcase2025_mode_does_not_score_last_annotated_frame():
    pred, ref = _clip_frames_0_to_9()
    scorer = SeldScorer(MetricConfig(mode="dcase2025"))
    scorer.add_clip(pred, ref)
    s = scorer.result()
    assert s.n_frames == 9  # largest annotated frame index
    assert (s.TP[0], s.FP_spatial[0], s.FN[0], s.n_ref[0]) == (9, 0, 0, 9)
    assert s.FP[1] == 0


def test_strict_mode_scores_all_frames():
    pred, ref = _clip_frames_0_to_9()
    scorer = SeldScorer(MetricConfig(mode="strict"))
    scorer.add_clip(pred, ref)
    s = scorer.result()
    assert s.n_frames == 50
    assert (s.TP[0], s.FP_spatial[0], s.FN[0], s.n_ref[0]) == (9, 1, 0, 10)
    assert s.FP[1] == 1
    assert s.classwise_F[0] == pytest.approx(9 / 10)


def test_dcase2025_mode_skips_empty_reference_strict_does_not():
    pred = [ev(3, 5, 0), ev(4, 5, 0)]
    lax = SeldScorer(MetricConfig(mode="dcase2025"))
    assert lax.add_clip(pred, []) is True  # counted as a clip (for the jackknife) but scores nothing
    s = lax.result()
    assert (s.n_clips, s.n_frames, s.n_empty_reference, int(s.FP.sum())) == (1, 0, 1, 0)
    strict = SeldScorer(MetricConfig(mode="strict"))
    strict.add_clip(pred, [])
    assert strict.result().FP[5] == 2


def test_missing_prediction_skipped_in_dcase2025_all_misses_in_strict():
    ref = [ev(f, 7, 10) for f in range(6)]
    lax = SeldScorer(MetricConfig(mode="dcase2025"))
    assert lax.add_clip(None, ref) is False
    s = lax.result()
    assert (s.n_clips, s.n_missing_prediction, int(s.FN.sum())) == (0, 1, 0)
    strict = SeldScorer(MetricConfig(mode="strict"))
    strict.add_clip(None, ref)
    s = strict.result()
    assert (s.n_clips, s.n_missing_prediction, s.FN[7]) == (1, 1, 6)


def test_strict_mode_rejects_reference_beyond_num_frames():
    with pytest.raises(ValueError, match="frame 50"):
        SeldScorer(MetricConfig(mode="strict")).add_clip([], [ev(50, 0, 0)], clip_id="x")


def test_invalid_config_lists_valid_names():
    with pytest.raises(ConfigError, match="dcase2025, strict"):
        MetricConfig(mode="official")
    with pytest.raises(ConfigError, match="macro, micro"):
        MetricConfig(average="weighted")


# --- parity with a plain loop implementation (tests.metrics.clips.loop_reference) ---------------


@pytest.mark.parametrize("mode", ["dcase2025", "strict"])
def test_matches_loop_reference_on_random_clips(mode):
    rng = np.random.default_rng(0)
    clips = [random_clip(rng, max_tracks=6, az_step=30) for _ in range(60)]  # ties and >4-track cells
    clips += [(None, clips[0][1]), ([], [])]
    cfg = MetricConfig(mode=mode)
    scorer = SeldScorer(cfg)
    for pred, ref in clips:
        scorer.add_clip(pred, ref)
    got, want = scorer.result(), loop_reference(clips, cfg)
    assert got.n_pairs.sum() > 500
    for key in ("TP", "FP", "FP_spatial", "FN"):
        np.testing.assert_array_equal(getattr(got, key), want[key], err_msg=key)
    for key in ("F", "DOAE", "RDE"):
        assert getattr(got, key) == pytest.approx(want[key], rel=1e-12), key


def test_flushing_in_batches_gives_same_numbers(monkeypatch):
    import seld.metrics.scorer as scorer_module

    rng = np.random.default_rng(1)
    clips = [random_clip(rng) for _ in range(25)]
    whole = SeldScorer()
    for pred, ref in clips:
        whole.add_clip(pred, ref)
    monkeypatch.setattr(scorer_module, "_FLUSH_CLIPS", 4)
    batched = SeldScorer()
    for pred, ref in clips:
        batched.add_clip(pred, ref)
    np.testing.assert_allclose(batched.clip_stats(), whole.clip_stats(), rtol=0, atol=1e-9)
