"""Benchmark of feature extraction and of the training dataset's reads on a simulated set.

Usage: python scripts/bench/bench_features.py [--clips 16] [--workers 2] [--seed 0]
                                              [--wpe-iterations 5] [--reads 400] [--keep DIR]

Writes ``--clips`` simulated clips (seld.data.synth), then prints clips/s for

1. extraction without WPE (logmel_l, logmel_r, logmel_mid, ild, ivy), in this process and with
   ``--workers`` worker processes,
2. extraction with WPE (the default channels: the above + direct_logmel, reverb_logmel),
3. SeldDataset reads (random items of the merged training file, normalised, three streams),
   in this process and through a DataLoader with ``--workers`` workers.

Extraction times include starting the worker processes; generating the clips is not timed.
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

import numpy as np  # noqa: E402

from seld.constants import SYNTH_TEST_SPLIT, SYNTH_TRAIN_SPLIT  # noqa: E402
from seld.features.config import FeatureConfig  # noqa: E402

NO_WPE = ["logmel_l", "logmel_r", "logmel_mid", "ild", "ivy"]


def time_extraction(
    data: Path, out: Path, channels: list[str], args: argparse.Namespace, workers: int | None = None
) -> tuple[float, int]:
    """(seconds, clips) for one extraction run into an empty ``out``."""
    from seld.features.extract import extract_features

    cfg = FeatureConfig(
        dataset_root=str(data), output_dir=str(out), splits=[SYNTH_TRAIN_SPLIT, SYNTH_TEST_SPLIT],
        train_splits=[SYNTH_TRAIN_SPLIT], channels=channels,
        workers=args.workers if workers is None else workers,
    )
    cfg.wpe.iterations = args.wpe_iterations
    t0 = time.perf_counter()
    report = extract_features(cfg, progress=True)
    seconds = time.perf_counter() - t0
    if report.failed:
        raise SystemExit(f"extraction failed for {report.failed}")
    return seconds, report.done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wpe-iterations", type=int, default=5)
    parser.add_argument("--reads", type=int, default=400, help="dataset items to read")
    parser.add_argument("--keep", default=None, metavar="DIR", help="work here and keep the files")
    args = parser.parse_args()

    from seld.data.synth import generate_dataset

    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        data = work / "data"
        generate_dataset(data, args.clips, args.seed, workers=args.workers, progress=True)

        # In this process first (also warms up imports): the per-core rate without start-up.
        s_serial, n_serial = time_extraction(data, work / "feat_serial", NO_WPE, args, workers=1)
        s_plain, n_plain = time_extraction(data, work / "feat_no_wpe", NO_WPE, args)
        s_wpe, n_wpe = time_extraction(data, work / "feat_wpe", NO_WPE + ["direct_logmel", "reverb_logmel"], args)

        from seld.config import load_config
        from seld.features.merge import merge_splits
        from seld.data.dataset import SeldDataset, StreamConfig

        cfg = load_config(work / "feat_wpe" / "config.yml", FeatureConfig)
        merge_splits(cfg)
        ds = SeldDataset(work / "feat_wpe" / f"{SYNTH_TRAIN_SPLIT}.h5", work / "feat_wpe" / "normalization.json",
                         StreamConfig(), train=True, seed=0)
        rng = np.random.default_rng(args.seed)
        order = rng.integers(len(ds), size=args.reads)
        ds[0]
        t0 = time.perf_counter()
        for i in order:
            ds[int(i)]
        s_reads = time.perf_counter() - t0

        import torch
        from torch.utils.data import DataLoader, RandomSampler

        sampler = RandomSampler(ds, replacement=True, num_samples=args.reads, generator=torch.Generator().manual_seed(0))
        loader = DataLoader(ds, batch_size=8, sampler=sampler, num_workers=args.workers)
        t0 = time.perf_counter()
        for _ in loader:
            pass
        s_loader = time.perf_counter() - t0

    print()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible; "
          f"{args.workers} workers, WPE taps 60 / delay 5 / {args.wpe_iterations} iterations")
    print(f"extraction without WPE, 1 process (no start-up): {n_serial / s_serial:.2f} clips/s")
    print(f"extraction without WPE: {n_plain} clips in {s_plain:.1f} s = {n_plain / s_plain:.2f} clips/s")
    print(f"extraction with WPE:    {n_wpe} clips in {s_wpe:.1f} s = {n_wpe / s_wpe:.2f} clips/s")
    print(f"dataset reads (1 process): {args.reads / s_reads:.0f} items/s")
    print(f"DataLoader (batch 8, {args.workers} workers, incl. start-up): {args.reads / s_loader:.0f} items/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
