"""Location-aware SELD scoring: the official DCASE2025 stereo metric (spec section 3).

Per 100 ms frame and class, reference and predicted tracks are paired by the Hungarian algorithm
on the absolute difference of their folded azimuths. A pair is a true positive when its angular
error is <= ``doa_threshold_deg`` (20) and its relative distance error |d_p - d_r| / d_r is
<= ``rel_dist_threshold`` (1.0) (and, optionally, the absolute distance error is within
``abs_dist_threshold_m``); otherwise it is a spatial false positive. Unpaired predictions are
false positives, unpaired references false negatives.

``F_c = TP / (TP + FP_spatial + 0.5 (FP + FN))``. Macro F is the mean over all 13 classes: as in
the official code a class with no TP (including a class with neither references nor predictions)
scores 0. DOAE and RDE of a class are the mean angular / relative distance errors over all paired
tracks (no thresholds), NaN for a class without pairs; the macro value is the NaN-mean over
classes. Micro averaging pools the counts and errors over classes.

Modes:

- ``"dcase2025"`` (default) reproduces the official code exactly, quirks included: a clip's
  scored frames are ``0 .. F-1`` where ``F`` is the largest annotated frame index of its
  reference (so the last annotated frame and everything after it are not scored, and a clip with
  an empty reference scores nothing); references without a prediction are skipped; predictions
  are matched to references by file name.
- ``"strict"`` scores all ``num_frames`` (50) frames of every reference clip; a missing
  prediction counts every reference event as a miss.

Scoring is vectorised over clips: :class:`SeldScorer` buffers clips and pairs tracks by exhaustive
search over assignments for small cells (identical to Hungarian when the optimum is unique), and
falls back to ``scipy.optimize.linear_sum_assignment`` for ties and large cells, so tie-breaking
matches the official code too.
"""
from __future__ import annotations

import functools
import itertools
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from seld.constants import CLASS_NAMES, LABEL_FRAMES, NUM_CLASSES
from seld.data.metadata import Event, fold_azimuth, read_metadata_csv
from seld.errors import ConfigError, DataError

MODES: tuple[str, ...] = ("dcase2025", "strict")
AVERAGES: tuple[str, ...] = ("macro", "micro")
_EPS: float = float(np.finfo(float).eps)  # the official code's eps in every denominator

# Per (clip, class) statistics accumulated by the scorer
_TP, _FP, _FP_SPATIAL, _FN, _N_PAIRS, _SUM_ANG, _SUM_REL, _SUM_DIST_CM, _N_REF, _N_PRED = range(10)
_N_STATS = 10
_MAX_ENUM_TRACKS = 4  # cells with more tracks than this go to scipy's Hungarian solver
_TIE_TOL = 1e-9
_FLUSH_CLIPS = 2048


@dataclass
class MetricConfig:
    """Settings of the location-aware detection metric (defaults: the DCASE2025 challenge)."""

    mode: Literal["dcase2025", "strict"] = "dcase2025"
    doa_threshold_deg: float = 20.0
    rel_dist_threshold: float = 1.0
    abs_dist_threshold_m: float | None = None
    """Optional absolute distance threshold in metres (None: not used, as in DCASE2025)."""
    average: Literal["macro", "micro"] = "macro"
    num_frames: int = LABEL_FRAMES
    """Frames scored per clip in strict mode."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"metric mode {self.mode!r} is unknown; valid modes: {', '.join(MODES)}")
        if self.average not in AVERAGES:
            raise ConfigError(f"metric average {self.average!r} is unknown; valid: {', '.join(AVERAGES)}")
        if not self.doa_threshold_deg >= 0:
            raise ConfigError(f"doa_threshold_deg must be >= 0, got {self.doa_threshold_deg}")
        if not self.rel_dist_threshold >= 0:
            raise ConfigError(f"rel_dist_threshold must be >= 0, got {self.rel_dist_threshold}")
        if self.abs_dist_threshold_m is not None and not self.abs_dist_threshold_m >= 0:
            raise ConfigError(f"abs_dist_threshold_m must be >= 0 or None, got {self.abs_dist_threshold_m}")
        if self.num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {self.num_frames}")


@dataclass
class SeldScores:
    """Overall and class-wise SELD scores; class-wise arrays have shape ``(13,)``."""

    F: float
    """Location-aware F-score as a fraction (0..1)."""
    DOAE: float
    """Direction-of-arrival error in degrees (NaN when nothing was paired)."""
    RDE: float
    """Relative distance error as a fraction (NaN when nothing was paired)."""
    DE_m: float
    """Absolute distance error in metres (reported, not part of the DCASE2025 ranking)."""
    classwise_F: np.ndarray
    classwise_DOAE: np.ndarray
    classwise_RDE: np.ndarray
    classwise_DE_m: np.ndarray
    TP: np.ndarray
    FP: np.ndarray
    """Unpaired predictions."""
    FP_spatial: np.ndarray
    """Paired predictions outside the thresholds."""
    FN: np.ndarray
    n_pairs: np.ndarray
    n_ref: np.ndarray
    n_pred: np.ndarray
    n_clips: int
    """Clips scored (in dcase2025 mode: clips with a prediction, empty references included)."""
    n_frames: int
    """Frames scored over all clips."""
    n_missing_prediction: int
    """References without a prediction (skipped in dcase2025 mode, all misses in strict mode)."""
    n_empty_reference: int
    """Scored clips whose reference has no event."""
    mode: str
    average: str
    config: MetricConfig = field(default_factory=MetricConfig)
    n_pred_past_end: int = 0
    """Predicted events at frames past their clip's end (frame >= ``num_frames``, or past the last
    reference frame of a longer clip): not scored, as the official code ignores them."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``F``/``RDE`` as fractions, ``DOAE`` in degrees, NaN written as None."""

        def num(v: Any) -> float | None:
            v = float(v)
            return None if not np.isfinite(v) else v

        classwise = {}
        for c, name in enumerate(CLASS_NAMES):
            classwise[name] = {
                "index": c,
                "F": num(self.classwise_F[c]),
                "DOAE": num(self.classwise_DOAE[c]),
                "RDE": num(self.classwise_RDE[c]),
                "DE_m": num(self.classwise_DE_m[c]),
                "TP": int(self.TP[c]),
                "FP": int(self.FP[c]),
                "FP_spatial": int(self.FP_spatial[c]),
                "FN": int(self.FN[c]),
                "n_ref": int(self.n_ref[c]),
                "n_pred": int(self.n_pred[c]),
            }
        return {
            "F": num(self.F),
            "DOAE": num(self.DOAE),
            "RDE": num(self.RDE),
            "DE_m": num(self.DE_m),
            "classwise": classwise,
            "mode": self.mode,
            "average": self.average,
            "n_clips": self.n_clips,
            "n_frames": self.n_frames,
            "n_missing_prediction": self.n_missing_prediction,
            "n_empty_reference": self.n_empty_reference,
            "n_pred_past_end": self.n_pred_past_end,
            "config": asdict(self.config),
        }


@dataclass(frozen=True)
class JackknifeEstimate:
    """Leave-one-clip-out jackknife statistics of one metric."""

    value: float
    """The metric on all clips."""
    estimate: float
    """Bias-corrected jackknife estimate."""
    bias: float
    std_err: float
    ci_low: float
    ci_high: float


JackknifeTransform = Literal["none", "log", "logit"]
"""Scale of a jackknife interval: raw (official), log (quantities >= 0) or logit (quantities in [0, upper])."""

# The interval scale of each metric, (transform, upper bound): F is in [0, 1], DOAE in [0, 180] deg
# (folded azimuths), RDE in [0, inf). Intervals are built on the logit / log scale and mapped back,
# so they never leave the metric's range.
JACKKNIFE_TRANSFORMS: dict[str, tuple[JackknifeTransform, float]] = {
    "F": ("logit", 1.0),
    "DOAE": ("logit", 180.0),
    "RDE": ("log", float("inf")),
}


def _jackknife_raw(global_value: float, partial: np.ndarray, t_value: float) -> tuple[float, float, float]:
    """(estimate, bias, std_err) on the raw scale: the official formulas."""
    n = partial.size
    mean = float(np.mean(partial))
    bias = (n - 1) * (mean - float(global_value))
    std_err = float(np.sqrt((n - 1) * np.mean((partial - mean) ** 2)))
    return float(global_value) - bias, bias, std_err


def jackknife_ci(
    global_value: float,
    partial_estimates: np.ndarray,
    significance_level: float = 0.05,
    transform: JackknifeTransform = "none",
    upper: float = 1.0,
) -> JackknifeEstimate:
    """Return jackknife bias, standard error and confidence interval from leave-one-out values ``(n,)``.

    ``transform="none"``: the official DCASE code's formulas (after Nicolas Turpault):
    bias = (n-1)(mean - global), std_err = sqrt((n-1) mean((x - mean)^2)),
    interval = (global - bias) -+ t_{1-a/2, n-1} std_err. For a quantity that cannot be negative
    this interval can reach below 0 (e.g. DOAE [-9.8, 48.4] deg with one outlier clip).

    ``transform="log"`` (quantities >= 0, e.g. RDE) or ``"logit"`` (quantities in [0, upper], e.g.
    F with upper 1, DOAE with upper 180): the same formulas on g(value) = log(value) or
    log(value / (upper - value)); the estimate and the
    interval are mapped back with g^-1, so they stay inside the quantity's range; ``bias`` is
    ``value - estimate`` and ``std_err`` the delta-method standard error (g^-1)'(est) * std_err_g.
    When the full or a leave-one-out value lies on the range's edge (0, or 1 for logit), g is
    infinite there: the raw-scale formulas are used and the estimate and interval are clipped to
    the range [0, upper] (log: [0, inf)).
    """
    partial = np.asarray(partial_estimates, dtype=np.float64).reshape(-1)
    n = partial.size
    if n < 2:
        raise ValueError(f"jackknife needs at least 2 partial estimates, got {n}")
    if not 0 < significance_level < 1:
        raise ValueError(f"significance_level must be in (0, 1), got {significance_level}")
    if transform not in ("none", "log", "logit"):
        raise ValueError(f"transform must be none, log or logit, got {transform!r}")
    t_value = float(scipy_stats.t.ppf(1 - significance_level / 2, n - 1))
    value = float(global_value)
    values = np.append(partial, value)
    if transform == "logit" and not upper > 0:
        raise ValueError(f"upper must be > 0 for the logit transform, got {upper}")
    upper = float(upper) if transform == "logit" else np.inf
    inside = bool(np.all(np.isfinite(values)) and np.all(values > 0) and np.all(values < upper))
    if transform == "none" or not inside:
        estimate, bias, std_err = _jackknife_raw(value, partial, t_value)
        low, high = estimate - t_value * std_err, estimate + t_value * std_err
        if transform != "none":
            estimate, low, high = (float(np.clip(v, 0.0, upper)) for v in (estimate, low, high))
        return JackknifeEstimate(value=value, estimate=estimate, bias=bias, std_err=std_err, ci_low=low, ci_high=high)
    if transform == "log":
        forward, back = np.log, np.exp
        slope = lambda y: y  # noqa: E731 - d exp(x)/dx at y = exp(x)
    else:
        forward = lambda y: np.log(y) - np.log(upper - y)  # noqa: E731
        back = lambda x: upper / (1.0 + np.exp(-x))  # noqa: E731
        slope = lambda y: y * (upper - y) / upper  # noqa: E731
    est_g, _, se_g = _jackknife_raw(float(forward(value)), forward(partial), t_value)
    estimate = float(back(est_g))
    return JackknifeEstimate(
        value=value,
        estimate=estimate,
        bias=value - estimate,
        std_err=float(slope(estimate) * se_g),
        ci_low=float(back(est_g - t_value * se_g)),
        ci_high=float(back(est_g + t_value * se_g)),
    )


# ---------------------------------------------------------------------------------------------
# Pairing and accumulation


@functools.lru_cache(maxsize=None)
def _assignments(n_ref: int, n_pred: int) -> tuple[np.ndarray, np.ndarray]:
    """All maximal one-to-one pairings of ``n_ref`` rows and ``n_pred`` columns: (rows, cols) ``(A, K)``."""
    k = min(n_ref, n_pred)
    if n_ref <= n_pred:
        cols = np.array(list(itertools.permutations(range(n_pred), k)), dtype=np.int64)
        rows = np.broadcast_to(np.arange(k), cols.shape).copy()
    else:
        rows = np.array(list(itertools.permutations(range(n_ref), k)), dtype=np.int64)
        cols = np.broadcast_to(np.arange(k), rows.shape).copy()
    return rows, cols


@dataclass
class _EventArrays:
    """Events of many clips as flat arrays (azimuth folded, distance in cm)."""

    clip: np.ndarray
    frame: np.ndarray
    cls: np.ndarray
    az: np.ndarray
    dist_cm: np.ndarray

    @staticmethod
    def concat(parts: Sequence[tuple[int, np.ndarray]]) -> "_EventArrays":
        """Join ``(clip index, (N, 4) [frame, class, azimuth, distance])`` blocks."""
        if not parts:
            empty = np.zeros(0)
            return _EventArrays(empty.astype(np.int64), empty.astype(np.int64), empty.astype(np.int64), empty, empty)
        clip = np.concatenate([np.full(len(a), i, dtype=np.int64) for i, a in parts])
        data = np.concatenate([a for _, a in parts], axis=0)
        return _EventArrays(
            clip, data[:, 0].astype(np.int64), data[:, 1].astype(np.int64),
            np.asarray(fold_azimuth(data[:, 2]), dtype=np.float64), data[:, 3],
        )


def _score_batch(ref: _EventArrays, pred: _EventArrays, n_clips: int, cfg: MetricConfig) -> np.ndarray:
    """Return per (clip, class) statistics ``(n_clips, 13, 10)`` for already frame-filtered events.

    Events of one (clip, frame, class) cell keep their input order (the CSV row order), which is
    the row/column order handed to the Hungarian solver, as in the official code.
    """
    out = np.zeros((n_clips * NUM_CLASSES, _N_STATS), dtype=np.float64)
    n_slots = n_clips * NUM_CLASSES
    if ref.clip.size == 0 and pred.clip.size == 0:
        return out.reshape(n_clips, NUM_CLASSES, _N_STATS)
    n_frame_keys = int(max(ref.frame.max(initial=0), pred.frame.max(initial=0))) + 1

    def cell_key(e: _EventArrays) -> np.ndarray:
        return (e.clip * n_frame_keys + e.frame) * NUM_CLASSES + e.cls

    def slot_of(key: np.ndarray) -> np.ndarray:  # clip * 13 + class
        return (key // (n_frame_keys * NUM_CLASSES)) * NUM_CLASSES + key % NUM_CLASSES

    def add(col: int, slots: np.ndarray, weights: np.ndarray | None = None) -> None:
        if slots.size:
            out[:, col] += np.bincount(slots, weights=weights, minlength=n_slots)

    key_r, key_p = cell_key(ref), cell_key(pred)
    order_r, order_p = np.argsort(key_r, kind="stable"), np.argsort(key_p, kind="stable")
    key_r, az_r, d_r = key_r[order_r], ref.az[order_r], ref.dist_cm[order_r]
    key_p, az_p, d_p = key_p[order_p], pred.az[order_p], pred.dist_cm[order_p]
    cells_r, start_r, count_r = np.unique(key_r, return_index=True, return_counts=True)
    cells_p, start_p, count_p = np.unique(key_p, return_index=True, return_counts=True)
    add(_N_REF, slot_of(key_r))
    add(_N_PRED, slot_of(key_p))

    common, ir, ip = np.intersect1d(cells_r, cells_p, assume_unique=True, return_indices=True)
    only_r = np.ones(cells_r.size, dtype=bool)
    only_r[ir] = False
    only_p = np.ones(cells_p.size, dtype=bool)
    only_p[ip] = False
    add(_FN, slot_of(cells_r[only_r]), count_r[only_r].astype(np.float64))
    add(_FP, slot_of(cells_p[only_p]), count_p[only_p].astype(np.float64))
    if common.size == 0:
        return out.reshape(n_clips, NUM_CLASSES, _N_STATS)

    n_r, n_p = count_r[ir], count_p[ip]
    common_slot = slot_of(common)
    add(_FN, common_slot, np.maximum(n_r - n_p, 0).astype(np.float64))
    add(_FP, common_slot, np.maximum(n_p - n_r, 0).astype(np.float64))

    # Pair the tracks of every cell that has both references and predictions, grouped by shape.
    pair_slot, pair_ang, pair_dr, pair_dp = [], [], [], []
    shape_code = n_r * 1_000_003 + n_p
    for code in np.unique(shape_code):
        g = np.nonzero(shape_code == code)[0]
        nr, npred = int(n_r[g[0]]), int(n_p[g[0]])
        ri = start_r[ir[g]][:, None] + np.arange(nr)  # (G, nr) indices into the sorted refs
        pi = start_p[ip[g]][:, None] + np.arange(npred)  # (G, np)
        cost = np.abs(az_r[ri][:, :, None] - az_p[pi][:, None, :])  # (G, nr, np)
        k = min(nr, npred)
        if nr == 1 and npred == 1:
            rows = np.zeros((g.size, 1), dtype=np.int64)
            cols = rows.copy()
            solve = np.zeros(g.size, dtype=bool)
        elif max(nr, npred) <= _MAX_ENUM_TRACKS:
            cand_rows, cand_cols = _assignments(nr, npred)
            totals = cost[:, cand_rows, cand_cols].sum(axis=-1)  # (G, A)
            best = totals.argmin(axis=1)
            rows, cols = cand_rows[best], cand_cols[best]
            # several optimal pairings: let scipy choose, as the official code does
            solve = (totals <= totals.min(axis=1, keepdims=True) + _TIE_TOL).sum(axis=1) > 1
        else:
            rows = np.zeros((g.size, k), dtype=np.int64)
            cols = rows.copy()
            solve = np.ones(g.size, dtype=bool)
        for j in np.nonzero(solve)[0]:
            r, c = linear_sum_assignment(cost[j])
            rows[j], cols[j] = r, c
        gi = np.arange(g.size)[:, None]
        pair_slot.append(np.repeat(common_slot[g], k))
        pair_ang.append(cost[gi, rows, cols].reshape(-1))
        pair_dr.append(d_r[ri[gi, rows]].reshape(-1))
        pair_dp.append(d_p[pi[gi, cols]].reshape(-1))

    slots = np.concatenate(pair_slot)
    ang = np.concatenate(pair_ang)
    dist_err = np.abs(np.concatenate(pair_dr) - np.concatenate(pair_dp))
    rel_err = dist_err / (np.concatenate(pair_dr) + _EPS)
    spatial_fp = (ang > cfg.doa_threshold_deg) | (rel_err > cfg.rel_dist_threshold)
    if cfg.abs_dist_threshold_m is not None:
        spatial_fp |= dist_err > cfg.abs_dist_threshold_m * 100.0
    add(_N_PAIRS, slots)
    add(_FP_SPATIAL, slots, spatial_fp.astype(np.float64))
    add(_TP, slots, (~spatial_fp).astype(np.float64))
    add(_SUM_ANG, slots, ang)
    add(_SUM_REL, slots, rel_err)
    add(_SUM_DIST_CM, slots, dist_err)
    return out.reshape(n_clips, NUM_CLASSES, _N_STATS)


def _nanmean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """NaN-mean along ``axis`` that returns NaN (without a warning) where every value is NaN."""
    finite = ~np.isnan(x)
    count = finite.sum(axis=axis)
    total = np.where(finite, x, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _summarise(stats: np.ndarray, average: str) -> dict[str, np.ndarray]:
    """Metrics from statistics ``(..., 13, 10)``: overall values ``(...)`` and class-wise ``(..., 13)``."""
    tp, fp, fps, fn = stats[..., _TP], stats[..., _FP], stats[..., _FP_SPATIAL], stats[..., _FN]
    n_pairs = stats[..., _N_PAIRS]
    f_c = tp / (_EPS + tp + fps + 0.5 * (fp + fn))
    has_pairs = n_pairs > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        doae_c = np.where(has_pairs, stats[..., _SUM_ANG] / (n_pairs + _EPS), np.nan)
        rde_c = np.where(has_pairs, stats[..., _SUM_REL] / (n_pairs + _EPS), np.nan)
        de_c = np.where(has_pairs, stats[..., _SUM_DIST_CM] / 100.0 / (n_pairs + _EPS), np.nan)
    result = {"classwise_F": f_c, "classwise_DOAE": doae_c, "classwise_RDE": rde_c, "classwise_DE_m": de_c}
    if average == "macro":
        result.update(F=f_c.mean(axis=-1), DOAE=_nanmean(doae_c), RDE=_nanmean(rde_c), DE_m=_nanmean(de_c))
    else:
        s = stats.sum(axis=-2)
        n = s[..., _N_PAIRS]
        result["F"] = s[..., _TP] / (
            _EPS + s[..., _TP] + s[..., _FP_SPATIAL] + 0.5 * (s[..., _FP] + s[..., _FN])
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            result["DOAE"] = np.where(n > 0, s[..., _SUM_ANG] / (n + _EPS), np.nan)
            result["RDE"] = np.where(n > 0, s[..., _SUM_REL] / (n + _EPS), np.nan)
            result["DE_m"] = np.where(n > 0, s[..., _SUM_DIST_CM] / 100.0 / (n + _EPS), np.nan)
    return result


def _events_to_array(events: Iterable[Event]) -> np.ndarray:
    """``(N, 4)`` float64 rows [frame, class, azimuth, distance_cm] in input order."""
    rows = [(e.frame, e.class_idx, e.azimuth, e.distance_cm) for e in events]
    if not rows:
        return np.zeros((0, 4), dtype=np.float64)
    return np.asarray(rows, dtype=np.float64)


class SeldScorer:
    """Accumulates clips one by one and scores them together (see the module docstring).

    ``scorer.add_clip(pred_events, ref_events)`` per clip (``pred_events=None`` when the clip has
    no prediction), then ``scorer.result()``; ``scorer.jackknife()`` gives confidence intervals.
    """

    def __init__(self, cfg: MetricConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else MetricConfig()
        self.clip_ids: list[str | None] = []
        self._clip_stats: list[np.ndarray] = []  # blocks (n, 13, 10)
        self._pending_ref: list[tuple[int, np.ndarray]] = []
        self._pending_pred: list[tuple[int, np.ndarray]] = []
        self._pending_start = 0
        self.n_frames = 0
        self.n_missing_prediction = 0
        self.n_empty_reference = 0
        self.n_pred_past_end = 0
        """Predicted events past their clip's end (see :attr:`SeldScores.n_pred_past_end`)."""

    @property
    def n_clips(self) -> int:
        """Clips scored so far."""
        return len(self.clip_ids)

    def add_clip(
        self, pred_events: Sequence[Event] | None, ref_events: Sequence[Event], clip_id: str | None = None
    ) -> bool:
        """Add one clip; returns False when the mode skips it (dcase2025: no prediction).

        In strict mode a reference event at frame >= ``num_frames`` raises ValueError; predicted
        events outside the scored frames are ignored in both modes, and those past the clip's end
        (frame >= ``num_frames`` and past the last reference frame) are counted in
        :attr:`n_pred_past_end`.
        """
        cfg = self.cfg
        if pred_events is None:
            self.n_missing_prediction += 1
            if cfg.mode == "dcase2025":
                return False
            pred_events = []
        ref = _events_to_array(ref_events)
        pred = _events_to_array(pred_events)
        if cfg.mode == "dcase2025":
            # official quirk: frames 0 .. (largest annotated frame index - 1) are scored
            n_frames = int(ref[:, 0].max()) if len(ref) else 0
        else:
            n_frames = cfg.num_frames
            if len(ref) and ref[:, 0].max() >= n_frames:
                where = f" of clip {clip_id}" if clip_id is not None else ""
                raise ValueError(
                    f"reference{where} has an event at frame {int(ref[:, 0].max())}, "
                    f"outside the {n_frames} frames scored in strict mode"
                )
        if len(ref) == 0:
            self.n_empty_reference += 1
        clip_end = max(cfg.num_frames, int(ref[:, 0].max()) + 1 if len(ref) else 0)
        self.n_pred_past_end += int(np.count_nonzero(pred[:, 0] >= clip_end))
        self.n_frames += n_frames
        index = self.n_clips - self._pending_start
        self._pending_ref.append((index, ref[ref[:, 0] < n_frames]))
        self._pending_pred.append((index, pred[pred[:, 0] < n_frames]))
        self.clip_ids.append(clip_id)
        if self.n_clips - self._pending_start >= _FLUSH_CLIPS:
            self._flush()
        return True

    def _flush(self) -> None:
        n = self.n_clips - self._pending_start
        if n == 0:
            return
        ref = _EventArrays.concat(self._pending_ref)
        pred = _EventArrays.concat(self._pending_pred)
        self._clip_stats.append(_score_batch(ref, pred, n, self.cfg))
        self._pending_ref, self._pending_pred = [], []
        self._pending_start = self.n_clips

    def clip_stats(self) -> np.ndarray:
        """Per-clip statistics ``(n_clips, 13, 10)`` (TP, FP, FP_spatial, FN, pairs, error sums, counts)."""
        self._flush()
        if not self._clip_stats:
            return np.zeros((0, NUM_CLASSES, _N_STATS))
        return np.concatenate(self._clip_stats, axis=0)

    def result(self) -> SeldScores:
        """Return the scores of every clip added so far."""
        per_clip = self.clip_stats()
        total = per_clip.sum(axis=0)  # (13, 10)
        m = _summarise(total, self.cfg.average)
        as_int = lambda col: np.rint(total[:, col]).astype(np.int64)  # noqa: E731
        return SeldScores(
            F=float(m["F"]), DOAE=float(m["DOAE"]), RDE=float(m["RDE"]), DE_m=float(m["DE_m"]),
            classwise_F=m["classwise_F"], classwise_DOAE=m["classwise_DOAE"],
            classwise_RDE=m["classwise_RDE"], classwise_DE_m=m["classwise_DE_m"],
            TP=as_int(_TP), FP=as_int(_FP), FP_spatial=as_int(_FP_SPATIAL), FN=as_int(_FN),
            n_pairs=as_int(_N_PAIRS), n_ref=as_int(_N_REF), n_pred=as_int(_N_PRED),
            n_clips=self.n_clips, n_frames=self.n_frames,
            n_missing_prediction=self.n_missing_prediction, n_empty_reference=self.n_empty_reference,
            mode=self.cfg.mode, average=self.cfg.average, config=self.cfg, n_pred_past_end=self.n_pred_past_end,
        )

    def jackknife(
        self,
        significance_level: float = 0.05,
        transforms: Mapping[str, tuple[JackknifeTransform, float]] | None = None,
    ) -> dict[str, JackknifeEstimate]:
        """Return leave-one-clip-out jackknife estimates of ``F``, ``DOAE`` and ``RDE``.

        The partial estimates come from subtracting each clip's statistics from the totals, which
        equals re-scoring without that clip (the official code re-scores n times). Intervals are
        built on the scale of ``transforms`` (default :data:`JACKKNIFE_TRANSFORMS`: logit for F in
        [0, 1] and DOAE in [0, 180], log for RDE, so no interval leaves the metric's range); pass
        ``{"DOAE": ("none", 0), ...}`` for the official raw-scale t interval.
        """
        transforms = {**JACKKNIFE_TRANSFORMS, **(transforms or {})}
        per_clip = self.clip_stats()
        if per_clip.shape[0] < 2:
            raise ValueError(f"jackknife needs at least 2 scored clips, got {per_clip.shape[0]}")
        total = per_clip.sum(axis=0)
        full = _summarise(total, self.cfg.average)
        partial = _summarise(total[None] - per_clip, self.cfg.average)
        return {
            name: jackknife_ci(float(full[name]), partial[name], significance_level, *transforms[name])
            for name in ("F", "DOAE", "RDE")
        }


# ---------------------------------------------------------------------------------------------
# Folders of CSVs and model outputs


def _collect_reference_csvs(ref_dir: Path) -> dict[str, Path]:
    """Map file name -> path for CSVs in ``ref_dir`` and its (split) sub-folders."""
    found: dict[str, Path] = {}
    for path in sorted(ref_dir.rglob("*.csv")):
        if path.name in found:
            raise DataError(f"reference CSV name {path.name} appears twice: {found[path.name]} and {path}")
        found[path.name] = path
    return found


def evaluate_folders(
    pred_dir: str | os.PathLike[str],
    ref_dir: str | os.PathLike[str],
    cfg: MetricConfig | None = None,
    progress: bool = False,
    scorer: SeldScorer | None = None,
) -> SeldScores:
    """Score the prediction CSVs of ``pred_dir`` (flat) against ``ref_dir`` (flat or split sub-folders).

    Files are matched by name. dcase2025 mode scores each prediction (a prediction without a
    reference raises DataError); strict mode scores each reference, a missing prediction counting
    as all misses. Pass an empty ``scorer`` to keep it (e.g. for :meth:`SeldScorer.jackknife`);
    its config is used instead of ``cfg``.
    """
    if scorer is not None:
        if scorer.n_clips or scorer.n_missing_prediction:
            raise ValueError("evaluate_folders needs an empty SeldScorer")
        cfg = scorer.cfg
    cfg = cfg if cfg is not None else MetricConfig()
    pred_path, ref_path = Path(pred_dir), Path(ref_dir)
    for what, p in (("prediction", pred_path), ("reference", ref_path)):
        if not p.is_dir():
            raise DataError(f"{what} folder {p} does not exist or is not a folder")
    refs = _collect_reference_csvs(ref_path)
    if not refs:
        raise DataError(f"reference folder {ref_path} holds no .csv files (also searched its sub-folders)")
    preds = {p.name: p for p in sorted(pred_path.glob("*.csv")) if p.is_file()}
    unknown = sorted(set(preds) - set(refs))
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise DataError(
            f"{len(unknown)} prediction CSV(s) in {pred_path} have no reference in {ref_path}: {shown}"
        )
    if cfg.mode == "dcase2025" and not preds:
        raise DataError(f"prediction folder {pred_path} holds no .csv files")

    scorer = scorer if scorer is not None else SeldScorer(cfg)
    names = sorted(preds) if cfg.mode == "dcase2025" else sorted(refs)
    ref_frames = cfg.num_frames if cfg.mode == "strict" else None
    for name in tqdm(names, desc="scoring", disable=not progress):
        ref_events = read_metadata_csv(refs[name], num_frames=ref_frames)
        pred_events = read_metadata_csv(preds[name], predictions=True) if name in preds else None
        scorer.add_clip(pred_events, ref_events, clip_id=Path(name).stem)
    if cfg.mode == "dcase2025":
        scorer.n_missing_prediction = len(set(refs) - set(preds))
    return scorer.result()


def score_outputs(
    outputs: Mapping[str, Any] | Sequence[tuple[str, Any]],
    refs: Mapping[str, Sequence[Event]],
    cfg: MetricConfig | None = None,
    threshold: float = 0.5,
    merge_deg: float = 15.0,
) -> SeldScores:
    """Score activated model outputs ``{clip_id: (T, 117)}`` against reference events ``{clip_id: [Event]}``.

    Gives the same numbers as writing the CSVs with :func:`seld.decoding.write_prediction_csvs`
    and running :func:`evaluate_folders` (decoded events are rounded as the CSV stores them).
    """
    from seld.decoding import decode_output, quantize_events

    cfg = cfg if cfg is not None else MetricConfig()
    items = dict(outputs.items() if isinstance(outputs, Mapping) else outputs)
    unknown = sorted(set(items) - set(refs))
    if unknown:
        raise DataError(f"{len(unknown)} output clip(s) have no reference events: {', '.join(unknown[:5])}")
    scorer = SeldScorer(cfg)
    names = sorted(items) if cfg.mode == "dcase2025" else sorted(refs)
    for name in names:
        pred = quantize_events(decode_output(items[name], threshold, merge_deg)) if name in items else None
        scorer.add_clip(pred, list(refs[name]), clip_id=name)
    if cfg.mode == "dcase2025":
        scorer.n_missing_prediction = len(set(refs) - set(items))
    return scorer.result()


def format_table(scores: SeldScores, jackknife: Mapping[str, JackknifeEstimate] | None = None) -> str:
    """A readable table: overall F (%), DOAE (degrees), RDE, then one row per class."""
    cfg = scores.config
    thresholds = f"DOA <= {cfg.doa_threshold_deg:g} deg, rel. distance <= {cfg.rel_dist_threshold:g}"
    if cfg.abs_dist_threshold_m is not None:
        thresholds += f", distance <= {cfg.abs_dist_threshold_m:g} m"
    if scores.mode == "dcase2025":
        counts = (f"clips scored: {scores.n_clips} of {scores.n_clips + scores.n_missing_prediction} references "
                  f"({scores.n_missing_prediction} without a prediction: not scored, as the official code does)")
    else:
        counts = (f"clips scored: {scores.n_clips}, references without prediction: {scores.n_missing_prediction} "
                  "(counted as misses)")
    counts += f", frames scored: {scores.n_frames}, empty references: {scores.n_empty_reference}"
    if scores.n_pred_past_end:
        counts += f", predicted events past their clip's end: {scores.n_pred_past_end} (not scored)"
    lines = [f"SELD scores ({scores.mode} mode, {scores.average} average; {thresholds})", counts, ""]

    def ci(name: str, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
        if jackknife is None or name not in jackknife:
            return ""
        j = jackknife[name]
        return f"  [{fmt.format(j.ci_low * scale)}, {fmt.format(j.ci_high * scale)}]"

    lines.append(f"F{cfg.doa_threshold_deg:g}deg/{cfg.rel_dist_threshold:g}: {100 * scores.F:6.2f} %{ci('F', 100)}")
    lines.append(f"DOAE:    {scores.DOAE:6.2f} deg{ci('DOAE')}")
    lines.append(f"RDE:     {scores.RDE:6.3f}{ci('RDE', fmt='{:.3f}')}")
    lines.append(f"DE:      {scores.DE_m:6.3f} m")
    lines.append("")
    header = f"{'#':>2}  {'class':<30} {'F %':>7} {'DOAE':>7} {'RDE':>6} {'TP':>7} {'FPsp':>7} {'FP':>7} {'FN':>7} {'refs':>7}"
    lines.append(header)
    lines.append("-" * len(header))
    for c, name in enumerate(CLASS_NAMES):
        lines.append(
            f"{c:>2}  {name[:30]:<30} {100 * scores.classwise_F[c]:7.2f} {scores.classwise_DOAE[c]:7.2f} "
            f"{scores.classwise_RDE[c]:6.3f} {scores.TP[c]:7d} {scores.FP_spatial[c]:7d} {scores.FP[c]:7d} "
            f"{scores.FN[c]:7d} {scores.n_ref[c]:7d}"
        )
    return "\n".join(lines)
