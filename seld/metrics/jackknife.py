"""Leave-one-clip-out jackknife confidence intervals of the SELD metrics (official formulas, optionally
on a log or logit scale so an interval stays inside the metric's range)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as scipy_stats


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
