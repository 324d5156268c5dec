"""Clips for the metric tests: events, random clips, a plain loop implementation of the metric, and
a DCASE-layout folder of reference and prediction CSVs."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from seld.constants import NUM_CLASSES
from seld.data.metadata import Event, fold_azimuth, read_metadata_csv, write_metadata_csv
from seld.metrics import MetricConfig, SeldScorer


def ev(frame: int, cls: int, az: float, dist_cm: float = 200.0, source: int = 0) -> Event:
    return Event(frame, cls, source, az, dist_cm)


def score(pred, ref, **cfg):
    """Score one clip in strict mode over one frame unless told otherwise."""
    cfg.setdefault("mode", "strict")
    cfg.setdefault("num_frames", 1 + max([e.frame for e in list(ref) + list(pred or [])], default=0))
    scorer = SeldScorer(MetricConfig(**cfg))
    scorer.add_clip(pred, ref)
    return scorer.result()


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


def write_dataset(tmp_path: Path, rng: np.random.Generator, n: int = 6):
    """``(ref_root, pred_dir, clips)``: ``n`` random clips in two split folders (clip 0 without a
    prediction) plus an empty reference with one predicted event; ``clips`` maps file name -> (pred, ref)."""
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
