"""Benchmark of the DCASE2025 SELD scorer: score N random (prediction, reference) clip pairs on one core.

Usage: python scripts/bench/bench_metrics.py [--clips 10000] [--seed 0] [--mode dcase2025|strict]

Clips look like DCASE2025 dev-test clips: 50 frames, 1-6 events of 1-30 frames, up to 3 sources of
one class at once; predictions are references with direction/distance noise, dropped frames, front/
back flips and false alarms. Generating the clips is not timed; adding them to a SeldScorer and
computing the result is.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seld.constants import LABEL_FRAMES, NUM_CLASSES  # noqa: E402
from seld.data.metadata import Event  # noqa: E402
from seld.metrics import MetricConfig, SeldScorer  # noqa: E402


def random_clip_pair(rng: np.random.Generator) -> tuple[list[Event], list[Event]]:
    """One (prediction, reference) pair of DCASE2025-like event lists."""
    ref: list[Event] = []
    pred: list[Event] = []
    for _ in range(int(rng.integers(1, 7))):
        cls = int(rng.integers(0, NUM_CLASSES))
        start = int(rng.integers(0, LABEL_FRAMES))
        stop = min(LABEL_FRAMES, start + int(rng.integers(1, 31)))
        for source in range(int(rng.choice([1, 1, 1, 2, 3]))):
            az = float(rng.integers(-90, 91))
            dist = float(rng.integers(50, 600))
            for f in range(start, stop):
                ref.append(Event(f, cls, source, az, dist))
                if rng.random() < 0.85:
                    noisy = az + rng.normal(0, 15)
                    if rng.random() < 0.1:
                        noisy = 180.0 - noisy  # front/back mirror image: folds back to ``noisy``
                    pred_dist = max(0.0, round(dist * rng.lognormal(0, 0.4)))
                    pred.append(Event(f, cls, source, float(round(noisy)), float(pred_dist)))
    for _ in range(int(rng.integers(0, 15))):
        pred.append(Event(int(rng.integers(0, LABEL_FRAMES)), int(rng.integers(0, NUM_CLASSES)), 2,
                          float(rng.integers(-180, 180)), float(rng.integers(0, 800))))
    ref.sort(key=lambda e: (e.frame, e.class_idx, e.source))
    pred.sort(key=lambda e: (e.frame, e.class_idx, e.source))
    return pred, ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=("dcase2025", "strict"), default="dcase2025")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    pairs = [random_clip_pair(rng) for _ in tqdm(range(args.clips), desc="generating clips")]
    n_ref = sum(len(r) for _, r in pairs)
    n_pred = sum(len(p) for p, _ in pairs)

    start = time.perf_counter()
    scorer = SeldScorer(MetricConfig(mode=args.mode))
    for pred, ref in pairs:
        scorer.add_clip(pred, ref)
    scores = scorer.result()
    seconds = time.perf_counter() - start

    start = time.perf_counter()
    jack = scorer.jackknife()["F"]
    jack_seconds = time.perf_counter() - start

    print(f"clips: {args.clips} ({n_ref} reference and {n_pred} predicted events), mode {args.mode}")
    print(f"F {100 * scores.F:.2f} %, DOAE {scores.DOAE:.2f} deg, RDE {scores.RDE:.3f}, "
          f"pairs {int(scores.n_pairs.sum())}")
    print(f"scoring: {seconds:.2f} s, {args.clips / seconds:.0f} clips/s")
    print(f"jackknife over {scorer.n_clips} clips: {jack_seconds:.3f} s "
          f"(F 95% CI [{100 * jack.ci_low:.2f}, {100 * jack.ci_high:.2f}] %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
