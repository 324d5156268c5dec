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

The package, lowest floor first (a module imports only those above it in this list):
``scores`` (MetricConfig, SeldScores, the per (clip, class) statistics and their summary),
``jackknife`` (confidence intervals), ``pairing`` (track pairing and counting over many clips),
``scorer`` (SeldScorer, the modes), ``report`` (the printed table), ``folders`` (CSV folders and
model outputs).
"""
from __future__ import annotations

from seld.metrics.folders import evaluate_folders, score_outputs
from seld.metrics.jackknife import JACKKNIFE_TRANSFORMS, JackknifeEstimate, JackknifeTransform, jackknife_ci
from seld.metrics.report import format_table
from seld.metrics.scorer import SeldScorer
from seld.metrics.scores import AVERAGES, MODES, MetricConfig, SeldScores

__all__ = [
    "AVERAGES", "JACKKNIFE_TRANSFORMS", "MODES", "JackknifeEstimate", "JackknifeTransform", "MetricConfig",
    "SeldScorer", "SeldScores", "evaluate_folders", "format_table", "jackknife_ci", "score_outputs",
]
