"""Tests of seld.metrics: hand-computed cases, official quirks, parity with a plain loop implementation."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from seld.constants import NUM_CLASSES
from seld.data.metadata import Event, fold_azimuth, read_metadata_csv, write_metadata_csv
from seld.errors import ConfigError, DataError
from seld.metrics import (
    MetricConfig,
    SeldScorer,
    evaluate_folders,
    format_table,
    jackknife_ci,
    score_outputs,
)


def ev(frame: int, cls: int, az: float, dist_cm: float = 200.0, source: int = 0) -> Event:
    return Event(frame, cls, source, az, dist_cm)


def score(pred, ref, **cfg):
    """Score one clip in strict mode over one frame unless told otherwise."""
    cfg.setdefault("mode", "strict")
    cfg.setdefault("num_frames", 1 + max([e.frame for e in list(ref) + list(pred or [])], default=0))
    scorer = SeldScorer(MetricConfig(**cfg))
    scorer.add_clip(pred, ref)
    return scorer.result()


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


# --- parity with a plain loop implementation -------------------------------------------------


def loop_reference(clips, cfg: MetricConfig):
    """Frame-by-frame, class-by-class scoring with scipy's Hungarian solver (as the spec states)."""
    eps = np.finfo(float).eps
    tp, fp, fps, fn, n, ang_sum, rel_sum = (np.zeros(NUM_CLASSES) for _ in range(7))
    for pred, ref in clips:
        if pred is None and cfg.mode == "dcase2025":
            continue
        pred = pred or []
        n_frames = max((e.frame for e in ref), default=0) if cfg.mode == "dcase2025" else cfg.num_frames
        cells_r, cells_p = defaultdict(list), defaultdict(list)
        for e in ref:
            cells_r[e.frame, e.class_idx].append(e)
        for e in pred:
            cells_p[e.frame, e.class_idx].append(e)
        for f in range(n_frames):
            for c in range(NUM_CLASSES):
                r, p = cells_r.get((f, c), []), cells_p.get((f, c), [])
                if r and p:
                    cost = np.abs(
                        np.array([fold_azimuth(e.azimuth) for e in r])[:, None]
                        - np.array([fold_azimuth(e.azimuth) for e in p])[None, :]
                    )
                    rows, cols = linear_sum_assignment(cost)
                    for i, j in zip(rows, cols):
                        a = cost[i, j]
                        rel = abs(r[i].distance_cm - p[j].distance_cm) / (r[i].distance_cm + eps)
                        bad = a > cfg.doa_threshold_deg or rel > cfg.rel_dist_threshold
                        fps[c] += bad
                        tp[c] += not bad
                        n[c] += 1
                        ang_sum[c] += a
                        rel_sum[c] += rel
                    fp[c] += max(0, len(p) - len(r))
                    fn[c] += max(0, len(r) - len(p))
                else:
                    fp[c] += len(p)
                    fn[c] += len(r)
    f_c = tp / (eps + tp + fps + 0.5 * (fp + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        doae = np.where(n > 0, ang_sum / (n + eps), np.nan)
        rde = np.where(n > 0, rel_sum / (n + eps), np.nan)
    return dict(TP=tp, FP=fp, FP_spatial=fps, FN=fn, F=f_c.mean(), DOAE=np.nanmean(doae), RDE=np.nanmean(rde))


def random_clip(rng: np.random.Generator, max_tracks: int = 3, az_step: int = 1):
    """A random reference and a perturbed prediction (drops, false alarms, many same-class tracks)."""
    ref, pred = [], []
    for _ in range(rng.integers(0, 6)):
        cls = int(rng.integers(0, 4))  # few classes, so same-class overlaps are frequent
        start, length = int(rng.integers(0, 50)), int(rng.integers(1, 20))
        n_src = int(rng.integers(1, max_tracks + 1))
        for s in range(n_src):
            az = float(rng.integers(-90 // az_step, 90 // az_step + 1) * az_step)
            dist = float(rng.integers(50, 500))
            for f in range(start, min(50, start + length)):
                ref.append(Event(f, cls, s, az, dist))
                if rng.random() < 0.8:
                    pred.append(Event(f, cls, s, float(az + rng.integers(-30, 31) + 180 * rng.integers(0, 2)),
                                      float(max(0, dist + rng.integers(-300, 300)))))
    for _ in range(rng.integers(0, 10)):
        pred.append(Event(int(rng.integers(0, 55)), int(rng.integers(0, 13)), 5, float(rng.integers(-180, 180)),
                          float(rng.integers(0, 600))))
    rng.shuffle(pred)  # order inside a cell must not matter except for ties
    return pred, ref


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
    import seld.metrics as metrics

    rng = np.random.default_rng(1)
    clips = [random_clip(rng) for _ in range(25)]
    whole = SeldScorer()
    for pred, ref in clips:
        whole.add_clip(pred, ref)
    monkeypatch.setattr(metrics, "_FLUSH_CLIPS", 4)
    batched = SeldScorer()
    for pred, ref in clips:
        batched.add_clip(pred, ref)
    np.testing.assert_allclose(batched.clip_stats(), whole.clip_stats(), rtol=0, atol=1e-9)


# --- jackknife ---------------------------------------------------------------------------------


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


# --- folders and model outputs -------------------------------------------------------------


def _write_dataset(tmp_path: Path, rng: np.random.Generator, n: int = 6):
    ref_root, pred_dir = tmp_path / "metadata_dev", tmp_path / "pred"
    clips = {}
    for i in range(n):
        pred, ref = random_clip(rng)
        name = f"fold4_room1_mix{i:03d}.csv"
        split = "dev-test-sony" if i % 2 else "dev-test-tau"
        ref = read_metadata_csv(write_metadata_csv(ref_root / split / name, ref))
        if i != 0:  # clip 0 has no prediction; CSVs sort rows, which sets the Hungarian tie order
            pred = read_metadata_csv(write_metadata_csv(pred_dir / name, pred))
        clips[name] = (pred if i != 0 else None, ref)
    write_metadata_csv(ref_root / "dev-test-tau" / "fold4_room1_empty.csv", [])
    write_metadata_csv(pred_dir / "fold4_room1_empty.csv", [ev(2, 0, 0)])
    clips["fold4_room1_empty.csv"] = ([ev(2, 0, 0)], [])
    return ref_root, pred_dir, clips


@pytest.mark.parametrize("mode", ["dcase2025", "strict"])
def test_evaluate_folders_matches_in_memory_scoring(tmp_path, mode):
    ref_root, pred_dir, clips = _write_dataset(tmp_path, np.random.default_rng(4))
    cfg = MetricConfig(mode=mode)
    got = evaluate_folders(pred_dir, ref_root, cfg)
    want = loop_reference(list(clips.values()), cfg)
    for key in ("TP", "FP", "FP_spatial", "FN"):
        np.testing.assert_array_equal(getattr(got, key), want[key], err_msg=key)
    assert got.F == pytest.approx(want["F"])
    assert got.n_missing_prediction == 1
    assert got.n_clips == (len(clips) - 1 if mode == "dcase2025" else len(clips))
    payload = json.loads(json.dumps(got.to_dict(), allow_nan=False))
    assert payload["mode"] == mode and payload["F"] == pytest.approx(got.F)
    assert set(payload["classwise"]) >= {"Clapping", "Knock"}
    table = format_table(got)
    assert f"{mode} mode" in table and "Knock" in table


def test_evaluate_folders_errors(tmp_path):
    ref_root, pred_dir, _ = _write_dataset(tmp_path, np.random.default_rng(5), n=2)
    with pytest.raises(DataError, match="does not exist"):
        evaluate_folders(tmp_path / "nope", ref_root)
    write_metadata_csv(pred_dir / "fold4_unknown.csv", [])
    with pytest.raises(DataError, match="fold4_unknown.csv"):
        evaluate_folders(pred_dir, ref_root)
    write_metadata_csv(ref_root / "dev-test-sony" / "fold4_room1_empty.csv", [])
    with pytest.raises(DataError, match="appears twice"):
        evaluate_folders(pred_dir, ref_root)


def test_score_outputs_equals_decode_write_evaluate(tmp_path):
    from seld.decoding import write_prediction_csvs

    rng = np.random.default_rng(6)
    outputs, refs = {}, {}
    for i in range(5):
        out = rng.uniform(-1, 1, size=(50, 117)).astype(np.float32)
        out.reshape(50, 3, 3, 13)[:, :, 2] = rng.uniform(-0.5, 4, size=(50, 3, 13))  # distances (m)
        name = f"clip{i}"
        outputs[name] = out
        refs[name] = random_clip(rng)[1]
        write_metadata_csv(tmp_path / "ref" / f"{name}.csv", refs[name])
    write_prediction_csvs(tmp_path / "pred", list(outputs), list(outputs.values()))
    for mode in ("dcase2025", "strict"):
        cfg = MetricConfig(mode=mode)
        a = score_outputs(outputs, refs, cfg)
        b = evaluate_folders(tmp_path / "pred", tmp_path / "ref", cfg)
        assert a.n_pairs.sum() > 50
        for key in ("TP", "FP", "FP_spatial", "FN"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
        for key in ("F", "DOAE", "RDE"):
            assert getattr(a, key) == pytest.approx(getattr(b, key), rel=1e-12)


# --- the `seld evaluate` command -------------------------------------------------------------


def run_evaluate(argv: list[str]) -> int:
    import argparse

    from seld.commands import evaluate

    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    return evaluate.run(parser.parse_args(argv))


@pytest.mark.parametrize("strict", [False, True])
def test_evaluate_command_prints_table_and_writes_json(tmp_path, capsys, strict):
    ref_root, pred_dir, clips = _write_dataset(tmp_path, np.random.default_rng(7))
    out_json = tmp_path / "out" / "scores.json"
    argv = ["--pred", str(pred_dir), "--ref", str(ref_root), "--json", str(out_json), "--jackknife"]
    assert run_evaluate(argv + (["--strict"] if strict else [])) == 0
    printed = capsys.readouterr().out
    mode = "strict" if strict else "dcase2025"
    assert f"({mode} mode, macro average" in printed and "Water tap, faucet" in printed
    payload = json.loads(out_json.read_text())
    want = evaluate_folders(pred_dir, ref_root, MetricConfig(mode=mode))
    assert payload["mode"] == mode
    assert payload["F"] == pytest.approx(want.F) and 0 < payload["F"] < 1
    assert payload["DOAE"] == pytest.approx(want.DOAE) and payload["RDE"] == pytest.approx(want.RDE)
    assert f"{100 * want.F:6.2f} %" in printed
    assert payload["classwise"]["Female speech, woman speaking"]["TP"] == int(want.TP[0])
    low, high = payload["jackknife"]["F"]["ci"]
    assert low < high


def test_evaluate_command_missing_folder_is_data_error(tmp_path):
    with pytest.raises(DataError, match="reference folder .* does not exist"):
        run_evaluate(["--pred", str(tmp_path), "--ref", str(tmp_path / "missing")])


# --- what was not scored is said (issue 31) -----------------------------------------------------


def test_missing_predictions_are_counted_in_the_summary_and_a_warning(tmp_path, capsys):
    # _write_dataset leaves clip 0 without a prediction: 7 references, 6 predictions
    ref_root, pred_dir, _ = _write_dataset(tmp_path, np.random.default_rng(7))
    assert run_evaluate(["--pred", str(pred_dir), "--ref", str(ref_root)]) == 0  # exit status as before
    captured = capsys.readouterr()
    assert "clips scored: 6 of 7 references (1 without a prediction: not scored, as the official code does)" \
           in captured.out
    assert captured.err.splitlines()[0] == (f"warning: 1 of 7 reference clip(s) have no prediction CSV in {pred_dir} and were "
                                    "not scored (the official dcase2025 behaviour); --strict counts them as misses")
    assert run_evaluate(["--pred", str(pred_dir), "--ref", str(ref_root), "--strict"]) == 0
    captured = capsys.readouterr()
    assert "references without prediction: 1 (counted as misses)" in captured.out
    assert "no prediction CSV" not in captured.err


def test_predicted_frames_past_the_clips_end_are_counted_and_not_scored(tmp_path, capsys):
    # the official code scores frames 0 .. F-1 of the reference and ignores the rest: same scores
    # with and without the rows past the end, now counted and warned about (before: silent)
    ref = [ev(f, 3, 20.0) for f in range(0, 40, 2)]
    pred = [ev(f, 3, 22.0) for f in range(0, 40, 2)]
    late = [ev(50, 3, 22.0), ev(57, 1, -10.0), ev(49, 3, 22.0)]  # 49 is the clip's last frame: not past the end
    write_metadata_csv(tmp_path / "ref" / "a.csv", ref)
    write_metadata_csv(tmp_path / "clean" / "a.csv", pred)
    write_metadata_csv(tmp_path / "late" / "a.csv", pred + late)
    for mode in ("dcase2025", "strict"):
        clean = evaluate_folders(tmp_path / "clean", tmp_path / "ref", MetricConfig(mode=mode))
        with_late = evaluate_folders(tmp_path / "late", tmp_path / "ref", MetricConfig(mode=mode))
        assert (clean.n_pred_past_end, with_late.n_pred_past_end) == (0, 2)
        assert with_late.to_dict()["n_pred_past_end"] == 2
        if mode == "dcase2025":  # frame 49 lies after the last scored frame (38) in this mode only
            assert with_late.F == clean.F and with_late.DOAE == clean.DOAE
    long_ref = ref + [ev(60, 3, 20.0)]  # a longer recording: its frames 50..60 are inside it
    assert score(pred + late, long_ref, mode="dcase2025", num_frames=50).n_pred_past_end == 0
    assert run_evaluate(["--pred", str(tmp_path / "late"), "--ref", str(tmp_path / "ref")]) == 0
    captured = capsys.readouterr()
    assert "predicted events past their clip's end: 2 (not scored)" in captured.out
    assert f"warning: 2 predicted event(s) in {tmp_path / 'late'} lie past their clip's end (frame >= 50" in captured.err
