"""Benchmark of feature extraction: per-clip vs batched front end, nara_wpe vs batched WPE, peak memory.

Usage: python scripts/bench/bench_features.py [--clips 8] [--batch-size 4] [--threads 2] [--repeats 3]
                                              [--workers 2] [--merge-clips 200] [--data DIR] [--keep DIR]
                                              [--device cpu] [--seed 0]

On ``--clips`` simulated clips (``seld.sim``, or the DCASE-layout set in ``--data``) it
prints, in ONE process and run, side by side (medians of ``--repeats``, seconds per clip):

1. the front end without WPE (logmel_l, logmel_r, logmel_mid, ild, ivy): one clip per call
   against batches of ``--batch-size`` (on a CPU a batch still goes through clip by clip, which
   measured fastest: see ``compute_batch_features``);
2. with WPE (+ direct_logmel, reverb_logmel): the old per-clip path (front end + nara_wpe on W,
   BLAS held to 1 thread) against the batched torch WPE;
3. a whole extraction run to HDF5 (``seld features`` with ``--workers``), clips/s, and the peak
   memory of one in a single process (its resident set, measured in a child process);
4. the peak memory of merging a split of ``--merge-clips`` per-clip files and of 4x as many
   (merge + normalisation statistics; both streamed, so the two peaks should match);
5. reads of the training dataset from the merged file (items/s).

Timings on a shared machine are noisy: compare the columns of one run.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

from seld.constants import SYNTH_TEST_SPLIT, SYNTH_TRAIN_SPLIT  # noqa: E402
from scripts.bench.bench_wpe import median_time  # noqa: E402  (one timing rule for both benchmarks)
from seld.features.config import FeatureConfig  # noqa: E402

NO_WPE = ["logmel_l", "logmel_r", "logmel_mid", "ild", "ivy"]
WITH_WPE = NO_WPE + ["direct_logmel", "reverb_logmel"]


def load_clips(data: Path, cfg: FeatureConfig, limit: int) -> np.ndarray:
    """Stereo audio ``(clips, 2, n)`` of the first ``limit`` clips of ``cfg.splits``."""
    from seld.data.audio import load_stereo
    from seld.data.layout import discover_clips

    clips = discover_clips(data, cfg.splits, require_labels=False)[:limit]
    return np.stack([load_stereo(c.wav_path, cfg.audio) for c in clips])


def old_per_clip_with_wpe(audio: np.ndarray, cfg: FeatureConfig) -> None:
    """The old path's cost: clip by clip, front end + nara_wpe on the STFT of W."""
    from seld.features.extract import compute_clip_features, prepare_audio
    from seld.features.stft import stft
    from seld.features.wpe import wpe_reference

    for clip in audio:
        compute_clip_features(clip, NO_WPE, cfg)
        x = prepare_audio(clip[None], cfg.peak_normalize, cfg.audio.sample_rate)
        w = 0.5 * (x[0, 0] + x[0, 1])
        spec = stft(w, cfg.stft.n_fft, cfg.stft.hop_length, cfg.stft.win_length)
        wpe_reference(spec.numpy(), cfg.wpe)


def in_batches(audio: np.ndarray, channels: list[str], cfg: FeatureConfig, batch: int, device: str) -> None:
    from seld.features.extract import compute_batch_features

    for i in range(0, len(audio), batch):
        compute_batch_features(audio[i : i + batch], channels, cfg, device=device)


# ---------------------------------------------------------------------------------------------
# Child processes that report their own peak resident memory (VmHWM of /proc/self/status: unlike
# ru_maxrss it starts afresh at exec, so the parent's peak does not leak into the child's)


def _peak_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource  # not Linux: ru_maxrss (may include the parent's peak)

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child_baseline(_: object) -> float:
    import torch  # noqa: F401  - the imports every job below pays for

    import seld.features.extract  # noqa: F401
    import seld.features.merge  # noqa: F401

    return _peak_rss_mib()


def _child_extract(cfg: FeatureConfig) -> tuple[float, float, int]:
    from seld.features.extract import extract_features

    t0 = time.perf_counter()
    report = extract_features(cfg, progress=False)
    if report.failed:
        raise SystemExit(f"extraction failed for {report.failed}")
    return time.perf_counter() - t0, _peak_rss_mib(), report.done


def _child_merge(cfg: FeatureConfig) -> tuple[float, float]:
    from seld.features.merge import merge_splits

    t0 = time.perf_counter()
    merge_splits(cfg)
    return time.perf_counter() - t0, _peak_rss_mib()


def _child_main(fn, arg, queue) -> None:
    try:
        queue.put(("ok", fn(arg)))
    except BaseException as exc:  # sent back: the parent must never wait for a result that will not come
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def in_child(fn, arg):
    """``fn(arg)`` in a fresh (spawned, non-daemonic: it may start workers) process; an exception
    there (or the child dying without a result) is raised here as a RuntimeError."""
    import queue as queue_module

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_main, args=(fn, arg, queue))
    proc.start()
    while True:
        try:
            status, result = queue.get(timeout=1.0)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"{getattr(fn, '__name__', fn)}: the child process died (exit code {proc.exitcode}) "
                                   "without a result") from None
    proc.join()
    if status != "ok":
        raise RuntimeError(f"{getattr(fn, '__name__', fn)} failed in its child process: {result}")
    return result


def write_fake_split(cfg: FeatureConfig, split: str, count: int) -> None:
    """``count`` per-clip files of random features (merging only reads them)."""
    from seld.constants import LABEL_FRAMES, NUM_CLASSES, NUM_DUMMY_TRACKS, NUM_TARGET_VALUES
    from seld.data.layout import Clip
    from seld.features.clip_files import clip_file, expected_frames, write_clip_file

    frames, _ = expected_frames(cfg)
    rng = np.random.default_rng(0)
    target = np.zeros((LABEL_FRAMES, NUM_DUMMY_TRACKS, NUM_TARGET_VALUES, NUM_CLASSES), np.float32)
    for i in range(count):
        clip = Clip(f"fold3_room0_mix{i:05d}", split, Path(f"{i}.wav"), None, 3)
        feats = {c: rng.standard_normal((frames, cfg.mel.n_mels)).astype(np.float32) for c in cfg.channels}
        write_clip_file(clip_file(cfg.output_dir, split, clip.clip_id), clip, feats, target, cfg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="torch threads in this process")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="extraction workers (part 3)")
    parser.add_argument("--merge-clips", type=int, default=200, help="per-clip files of the small merged split")
    parser.add_argument("--wpe-iterations", type=int, default=5)
    parser.add_argument("--wpe-taps", type=int, default=60)
    parser.add_argument("--device", default="cpu", help="cpu | cuda (parts 1-3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, metavar="DIR", help="use this DCASE-layout set (synth splits)")
    parser.add_argument("--keep", default=None, metavar="DIR", help="work here and keep the files")
    args = parser.parse_args(argv)
    for name in ("clips", "batch_size", "threads", "repeats", "workers", "merge_clips"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        data = Path(args.data) if args.data else work / "data"
        if not args.data:
            from seld.sim.generate import generate_dataset

            generate_dataset(data, args.clips, args.seed, workers=args.workers, progress=False)
        cfg = FeatureConfig(
            dataset_root=str(data), output_dir=str(work / "feat"), splits=[SYNTH_TRAIN_SPLIT, SYNTH_TEST_SPLIT],
            train_splits=[SYNTH_TRAIN_SPLIT], channels=WITH_WPE, workers=args.workers,
            batch_size=args.batch_size, device=args.device,
        )
        cfg.wpe.iterations = args.wpe_iterations
        cfg.wpe.taps = args.wpe_taps
        audio = load_clips(data, cfg, args.clips)
        n = len(audio)
        from seld.features.extract import compute_clip_features

        in_batches(audio[:1], WITH_WPE, cfg, 1, args.device)  # warm-up
        t_clip = median_time(lambda: [compute_clip_features(a, NO_WPE, cfg, args.device) for a in audio], args.repeats) / n
        t_batch = median_time(lambda: in_batches(audio, NO_WPE, cfg, args.batch_size, args.device), args.repeats) / n
        t_old_wpe = median_time(lambda: old_per_clip_with_wpe(audio, cfg), args.repeats) / n
        t_new_wpe = median_time(lambda: in_batches(audio, WITH_WPE, cfg, args.batch_size, args.device), args.repeats) / n

        base = in_child(_child_baseline, None)
        one = dataclasses.replace(cfg, workers=1, output_dir=str(work / "feat_1worker"))
        s_one, rss_ext, done_one = in_child(_child_extract, one)  # computes in the measured process
        s_ext, _, done = in_child(_child_extract, cfg) if args.workers > 1 else (s_one, rss_ext, done_one)

        small, large = args.merge_clips, 4 * args.merge_clips
        merge_rows = []
        for count in (small, large):
            mcfg = FeatureConfig(
                dataset_root=str(data), output_dir=str(work / f"merge{count}"), splits=[SYNTH_TRAIN_SPLIT],
                train_splits=[SYNTH_TRAIN_SPLIT], channels=WITH_WPE,
            )
            write_fake_split(mcfg, SYNTH_TRAIN_SPLIT, count)
            s_merge, rss_merge = in_child(_child_merge, mcfg)
            size = (work / f"merge{count}" / f"{SYNTH_TRAIN_SPLIT}.h5").stat().st_size / 2**20
            merge_rows.append((count, size, s_merge, rss_merge))

        from seld.data.dataset import SeldDataset, StreamConfig
        from seld.features.merge import merge_splits

        merge_splits(one)
        ds = SeldDataset(work / "feat_1worker" / f"{SYNTH_TRAIN_SPLIT}.h5", work / "feat_1worker" / "normalization.json",
                         StreamConfig(), train=True, seed=0)
        order = np.random.default_rng(args.seed).integers(len(ds), size=200)
        ds[0]
        s_reads = median_time(lambda: [ds[int(i)] for i in order], 1)

    print()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"torch {torch.__version__}; {args.threads} torch threads in this process, device {args.device}")
    print(f"{n} clips of {audio.shape[-1] / 24000:.1f} s; medians of {args.repeats} runs; batch {args.batch_size}; "
          f"WPE taps {cfg.wpe.taps} / delay {cfg.wpe.delay} / {cfg.wpe.iterations} iterations")
    print(f"features without WPE: one clip per call   {t_clip:7.4f} s/clip | batches of {args.batch_size:<3d}     {t_batch:7.4f} s/clip"
          f" | {t_clip / t_batch:5.1f}x  (target <= 0.01)")
    print(f"features with WPE:    per clip + nara_wpe {t_old_wpe:7.4f} s/clip | batched torch WPE {t_new_wpe:7.4f} s/clip"
          f" | {t_old_wpe / t_new_wpe:5.1f}x  (target <= 0.15)")
    print(f"extraction to HDF5 with WPE, {args.workers} workers: {done} clips in {s_ext:.1f} s = {done / s_ext:.2f} clips/s "
          f"(incl. process start-up)")
    print(f"extraction to HDF5 with WPE, 1 process, batch {args.batch_size}: {done_one} clips in {s_one:.1f} s; "
          f"peak RSS {rss_ext:.0f} MiB (imports alone {base:.0f} MiB)")
    for count, size, s_merge, rss_merge in merge_rows:
        print(f"merge + normalisation of {count:5d} clips ({size:7.1f} MiB merged): {s_merge:6.1f} s, "
              f"peak RSS {rss_merge:.0f} MiB")
    print(f"training dataset reads (merged file, normalised, three streams): {len(order) / s_reads:.0f} items/s")
    growth = merge_rows[1][3] - merge_rows[0][3]
    print(f"merge peak memory growth for {large - small} more clips: {growth:+.0f} MiB "
          f"(streamed: should stay near 0 while the merged file grows by {merge_rows[1][1] - merge_rows[0][1]:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
