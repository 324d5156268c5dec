"""What the SELD metric reports: its settings, the per (clip, class) statistics it counts, and how
they become F, DOAE, RDE and DE (macro or micro average; definitions in :mod:`seld.metrics`)."""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from seld.constants import CLASS_NAMES, LABEL_FRAMES
from seld.errors import ConfigError

MODES: tuple[str, ...] = ("dcase2025", "strict")
AVERAGES: tuple[str, ...] = ("macro", "micro")
EPS: float = float(np.finfo(float).eps)  # the official code's eps in every denominator


class Stat(enum.IntEnum):
    """Columns of the per (clip, class) statistics ``(..., 13, N_STATS)`` that the scorer counts."""

    TP = 0
    FP = 1
    """Unpaired predictions."""
    FP_SPATIAL = 2
    """Paired predictions outside the thresholds."""
    FN = 3
    N_PAIRS = 4
    SUM_ANG = 5
    """Sum of the paired angular errors (degrees)."""
    SUM_REL = 6
    """Sum of the paired relative distance errors."""
    SUM_DIST_CM = 7
    """Sum of the paired absolute distance errors (cm)."""
    N_REF = 8
    N_PRED = 9


N_STATS: int = len(Stat)


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


def _nanmean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """NaN-mean along ``axis`` that returns NaN (without a warning) where every value is NaN."""
    finite = ~np.isnan(x)
    count = finite.sum(axis=axis)
    total = np.where(finite, x, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def summarise(stats: np.ndarray, average: str) -> dict[str, np.ndarray]:
    """Metrics from statistics ``(..., 13, 10)``: overall values ``(...)`` and class-wise ``(..., 13)``."""
    tp, fp, fps, fn = stats[..., Stat.TP], stats[..., Stat.FP], stats[..., Stat.FP_SPATIAL], stats[..., Stat.FN]
    n_pairs = stats[..., Stat.N_PAIRS]
    f_c = tp / (EPS + tp + fps + 0.5 * (fp + fn))
    has_pairs = n_pairs > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        doae_c = np.where(has_pairs, stats[..., Stat.SUM_ANG] / (n_pairs + EPS), np.nan)
        rde_c = np.where(has_pairs, stats[..., Stat.SUM_REL] / (n_pairs + EPS), np.nan)
        de_c = np.where(has_pairs, stats[..., Stat.SUM_DIST_CM] / 100.0 / (n_pairs + EPS), np.nan)
    result = {"classwise_F": f_c, "classwise_DOAE": doae_c, "classwise_RDE": rde_c, "classwise_DE_m": de_c}
    if average == "macro":
        result.update(F=f_c.mean(axis=-1), DOAE=_nanmean(doae_c), RDE=_nanmean(rde_c), DE_m=_nanmean(de_c))
    else:
        s = stats.sum(axis=-2)
        n = s[..., Stat.N_PAIRS]
        result["F"] = s[..., Stat.TP] / (
            EPS + s[..., Stat.TP] + s[..., Stat.FP_SPATIAL] + 0.5 * (s[..., Stat.FP] + s[..., Stat.FN])
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            result["DOAE"] = np.where(n > 0, s[..., Stat.SUM_ANG] / (n + EPS), np.nan)
            result["RDE"] = np.where(n > 0, s[..., Stat.SUM_REL] / (n + EPS), np.nan)
            result["DE_m"] = np.where(n > 0, s[..., Stat.SUM_DIST_CM] / 100.0 / (n + EPS), np.nan)
    return result
