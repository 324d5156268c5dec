"""Benchmark of WPE: nara_wpe (the reference, per clip) against the batched torch WPE, same process.

Usage: python scripts/bench/bench_wpe.py [--clips 4] [--repeats 3] [--threads 2] [--taps 60]
                                         [--delay 5] [--iterations 5] [--profile] [--device cpu]

On ``--clips`` simulated 5 s clips (one source, RT60 spread over 0.2-0.9 s) it prints, per clip
and as medians over ``--repeats`` runs in this one process:

* nara_wpe complex128 and complex64 (its BLAS held to 1 thread, as the old extraction did);
* ours, complex128, all clips as one batch with ``--threads`` torch threads (on a CPU with 2 or
  more: one clip per thread, each on one core), and the FLOP of its products: as computed and
  as needed (the triangle; see :mod:`seld.features.wpe`); on a CPU also ours with torch's
  products instead of the compiled kernel (:mod:`seld.features.native`), as it runs where no C
  compiler is found;
* accuracy: max |ours - nara_wpe| / max |nara_wpe| per clip in complex128, and of complex64
  (ours and nara_wpe's) against the complex128 reference (the spec's "complex64 is unstable");
* with ``--profile``, where our time goes: the phases of :mod:`seld.features.wpe` (lag products,
  weights, products, solve, prediction, the rest), timed around its ``record_function`` labels in
  one more run, as core-seconds per clip (with several threads the phases of different clips
  overlap in time; their sum is the cores' busy time).

Timings on a shared machine are noisy: compare the columns of one run, not runs of different days.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from seld.features.params import WpeConfig  # noqa: E402
from seld.features.stft import stft  # noqa: E402
from seld.features import native  # noqa: E402
from seld.features.wpe import _first_rows, stored_lags, wpe, wpe_reference  # noqa: E402


def simulated_mid_spectra(clips: int, seconds: float = 5.0) -> torch.Tensor:
    """Feature STFTs (960/1024/480) of W for ``clips`` simulated clips: complex ``(clips, 513, T)``."""
    from seld.sim.scenes import render_single_source

    specs = []
    for i in range(clips):
        rt60 = 0.2 + 0.7 * i / max(clips - 1, 1)
        audio = render_single_source(60.0 - 37.0 * i, 2.0, rt60=rt60, seed=i, class_idx=i % 13,
                                     num_samples=int(24000 * seconds))
        w = torch.from_numpy(0.5 * (audio[0].astype(np.float64) + audio[1]))
        specs.append(stft(w, 1024, 480, 960))
    return torch.stack(specs)


def flops(spec_shape: tuple[int, ...], cfg: WpeConfig, kernel: native.Kernel | None) -> tuple[float, float]:
    """(FLOP of our products as computed, FLOP of the needed part: ``R``'s triangle and ``P``) for
    the batch; computed by the compiled kernel (whole register tiles) or, without it, by a BLAS
    product of the whole rectangle."""
    b, f, t = spec_shape
    k = cfg.taps
    lz = stored_lags(k)
    if kernel is None:
        entries = (k + 1) * 2 * lz  # real (K+1, T) @ (T, 2L)
    else:
        entries = kernel.computed(_first_rows(cfg.delay, k, lz, kernel.tile_cols), k + 1)
    done = cfg.iterations * b * f * entries * t * 2
    needed = cfg.iterations * b * f * (k * (k + 1) / 2 + k) * t * 2 * 2
    return float(done), float(needed)


@contextlib.contextmanager
def without_kernel():
    """WPE as it runs where the compiled kernel is not available: torch's products."""
    saved = native.kernel
    native.kernel = lambda: None
    try:
        yield
    finally:
        native.kernel = saved


class PhaseTimer:
    """Stands in for ``torch.profiler.record_function`` while installed: adds each labelled
    block's wall time to ``self.seconds[label]``, per thread, summed over threads."""

    def __init__(self) -> None:
        import threading

        self.seconds: dict[str, float] = {}
        self.lock = threading.Lock()

    def __call__(self, label: str):
        timer = self

        class Block:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                with timer.lock:
                    timer.seconds[label] = timer.seconds.get(label, 0.0) + time.perf_counter() - self.t0
                return False

        return Block()


def phase_times(run, clips: int) -> tuple[dict[str, float], float]:
    """Core-seconds per clip of each phase of one ``run()``, and its wall seconds per clip."""
    timer = PhaseTimer()
    saved = torch.profiler.record_function
    torch.profiler.record_function = timer
    try:
        t0 = time.perf_counter()
        run()
        wall = time.perf_counter() - t0
    finally:
        torch.profiler.record_function = saved
    return {k: v / clips for k, v in timer.seconds.items()}, wall / clips


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / max(np.abs(ref).max(), 1e-300))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="clip length")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for ours")
    parser.add_argument("--taps", type=int, default=60)
    parser.add_argument("--delay", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="device for ours (cpu | cuda)")
    parser.add_argument("--profile", action="store_true",
                        help="print where our time goes: core-seconds per clip of each WPE phase")
    args = parser.parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch sees no CUDA device (torch.cuda.is_available() is False)")
    torch.set_num_threads(args.threads)
    cfg = WpeConfig(taps=args.taps, delay=args.delay, iterations=args.iterations)
    spec = simulated_mid_spectra(args.clips, args.seconds)
    spec_np = spec.numpy()

    def run_ours(dtype: torch.dtype = torch.complex128) -> torch.Tensor:
        out = wpe(spec.to(dev), cfg, dtype)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return out.cpu()

    ref = [wpe_reference(spec_np[i], cfg) for i in range(args.clips)]
    run_ours()  # warm-up
    t_ours = median_time(run_ours, args.repeats) / args.clips
    ours = run_ours()
    t_ref = median_time(lambda: [wpe_reference(spec_np[i], cfg) for i in range(args.clips)], args.repeats) / args.clips

    def nara32() -> list[np.ndarray]:
        from nara_wpe.wpe import wpe as nara
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return [nara(spec_np[i].astype(np.complex64)[:, None], taps=cfg.taps, delay=cfg.delay,
                         iterations=cfg.iterations)[:, 0] for i in range(args.clips)]

    t_ref32 = median_time(nara32, args.repeats) / args.clips
    ref32 = nara32()
    ours32 = run_ours(torch.complex64)
    kernel = native.kernel() if dev.type == "cpu" else None
    done, needed = flops(tuple(spec.shape), cfg, kernel)
    if kernel is not None:
        with without_kernel():
            run_ours()
            t_torch = median_time(run_ours, args.repeats) / args.clips
            ours_torch = run_ours()
        done_torch = flops(tuple(spec.shape), cfg, None)[0]

    print()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"torch {torch.__version__}, {args.threads} torch threads, device {args.device}")
    print(f"WPE taps {cfg.taps} / delay {cfg.delay} / {cfg.iterations} iterations on {args.clips} clips "
          f"of {spec.shape[-1]} frames x {spec.shape[1]} bins; medians of {args.repeats} runs, seconds per clip")
    print(f"  nara_wpe complex128, per clip, BLAS 1 thread : {t_ref:8.3f} s/clip")
    print(f"  nara_wpe complex64,  per clip, BLAS 1 thread : {t_ref32:8.3f} s/clip")
    print(f"  ours     complex128, one batch              : {t_ours:8.3f} s/clip   "
          f"({t_ref / t_ours:.1f}x nara complex128, {t_ref32 / t_ours:.1f}x nara complex64)")
    if kernel is not None:
        print(f"  ours     complex128, torch products         : {t_torch:8.3f} s/clip   "
              f"({t_torch / t_ours:.2f}x the time with the compiled kernel; the two differ by "
              f"{max(rel_err(ours[i].numpy(), ours_torch[i].numpy()) for i in range(args.clips)):.1e})")
        print(f"  compiled kernel {kernel.path.name}: register tile {kernel.tile_rows} rows x "
              f"{kernel.tile_cols} columns; torch products {done_torch / args.clips / 1e9:.2f} GFLOP/clip")
    elif dev.type == "cpu":
        print("  no compiled kernel (see the warning above): torch products")
    print(f"  ours: products {done / args.clips / 1e9:.2f} GFLOP/clip as computed "
          f"({needed / args.clips / 1e9:.2f} needed: the triangle of R and P); whole WPE at "
          f"{done / args.clips / t_ours / 1e9:.1f} GFLOP/s of product work")
    errs = [rel_err(ours[i].numpy(), ref[i]) for i in range(args.clips)]
    print(f"  accuracy, max|ours - nara| / max|nara| (complex128), per clip: "
          + ", ".join(f"{e:.1e}" for e in errs))
    e32 = [rel_err(ours32[i].numpy().astype(np.complex128), ref[i]) for i in range(args.clips)]
    n32 = [rel_err(ref32[i].astype(np.complex128), ref[i]) for i in range(args.clips)]
    print("  complex64 vs complex128 reference, per clip: ours " + ", ".join(f"{e:.1e}" for e in e32)
          + " | nara_wpe " + ", ".join(f"{e:.1e}" for e in n32))
    if args.profile:
        phases, wall = phase_times(run_ours, args.clips)
        busy = wall * (min(args.threads, args.clips) if dev.type == "cpu" else 1)
        print()
        print(f"where our time goes (one more run: {wall:.3f} s/clip wall, core-seconds per clip by phase"
              + ("; on a GPU these are launch times, the kernels run asynchronously" if dev.type == "cuda" else "") + "):")
        for name, sec in sorted(phases.items(), key=lambda kv: -kv[1]):
            extra = ""
            if name == "wpe.products":
                extra = f"   ({done / args.clips / sec / 1e9:.1f} GFLOP/s)"
            print(f"  {name:18s} {sec:8.4f} s  {100 * sec / busy:5.1f} %{extra}")
        rest = busy - sum(phases.values())
        print(f"  {'rest':18s} {rest:8.4f} s  {100 * rest / busy:5.1f} %   (powers, P's highest lags, allocation, threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
