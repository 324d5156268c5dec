"""Benchmark of the simulated dataset generator: write N clips with W worker processes.

Usage: python scripts/bench/bench_synth.py [--clips 200] [--workers 2] [--seed 0] [--config FILE] [--keep DIR]

Target (issue 2): 200 clips in at most 300 s on 2 cores. Prints the wall time, clips/s, and the
per-clip render time of a serial warm-up clip; writes into a temporary folder unless --keep.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread per worker process

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seld.sim.generate import generate_dataset, summarize_dataset  # noqa: E402
from seld.sim.scenes import load_synth_config, render_clip  # noqa: E402

TARGET_SECONDS_PER_200 = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default=None, help="generator YAML (default: built-in values)")
    parser.add_argument("--keep", default=None, metavar="DIR", help="write here and keep the set")
    args = parser.parse_args()
    cfg = load_synth_config(args.config)

    t0 = time.perf_counter()
    render_clip(args.seed, 0, cfg)  # warm-up: imports and pyroomacoustics set-up, not timed below
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(1, 4):
        render_clip(args.seed, i, cfg)
    serial = (time.perf_counter() - t0) / 3

    with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
        out = Path(args.keep) if args.keep else Path(tmp) / "synth"
        report = generate_dataset(out, args.clips, args.seed, cfg, workers=args.workers, progress=True)
        if report.skipped:
            print(f"note: {report.skipped} clips already existed in {out} and were not timed")
        seconds = report.seconds
        budget = TARGET_SECONDS_PER_200 * args.clips / 200
        print(summarize_dataset(out))
        print()
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible")
        print(f"first clip (imports + set-up): {warm:.2f} s; serial render: {serial:.3f} s/clip")
        print(
            f"{report.generated} clips with {args.workers} workers: {seconds:.1f} s total, "
            f"{report.generated / seconds:.2f} clips/s (target <= {budget:.0f} s: "
            f"{'OK' if seconds <= budget else 'TOO SLOW'})"
        )
    return 0 if seconds <= budget else 1


if __name__ == "__main__":
    sys.exit(main())
