"""Paired comparisons over seeds: the mean difference of two models run on the same seeds, with a
Student-t confidence interval (the seeds are the samples; each pair shares its rooms and its
initialisation, so the difference removes what the seed alone does)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class PairedDifference:
    """Mean of ``a - b`` over ``n`` paired seeds and its two-sided ``confidence`` interval [low, high];
    with n = 1 the interval is undefined (NaN)."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of zero (False when it is undefined)."""
        return bool(self.low > 0 or self.high < 0)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> PairedDifference:
    """Mean of ``d = a - b`` (paired by position, e.g. by seed) with the Student-t interval
    ``mean ± t_{(1+confidence)/2, n-1} * sd(d) / sqrt(n)`` (sd with n - 1 in the denominator).
    n = 1 gives ``low = high = NaN`` (no spread to estimate); n = 0, unequal lengths, non-finite
    values or a confidence outside (0, 1) are a ValueError."""
    from scipy.stats import t as student_t

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"paired_difference: need two equally long non-empty sequences, got {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"paired_difference: non-finite values in {x.tolist()} / {y.tolist()}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"paired_difference: confidence must be in (0, 1), got {confidence}")
    d = x - y
    n, mean = d.size, float(d.mean())
    if n == 1:
        return PairedDifference(mean, math.nan, math.nan, 1, confidence)
    half = float(student_t.ppf((1.0 + confidence) / 2.0, n - 1)) * float(d.std(ddof=1)) / math.sqrt(n)
    return PairedDifference(mean, mean - half, mean + half, n, confidence)
