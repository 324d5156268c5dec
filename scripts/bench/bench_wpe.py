"""Benchmark of WPE: nara_wpe (the reference, per clip) against the batched torch WPE, same process.

Usage: python scripts/bench/bench_wpe.py [--clips 4] [--repeats 3] [--threads 2] [--taps 60]
                                         [--delay 5] [--iterations 5] [--row-groups 1,4]
                                         [--profile] [--device cpu]

On ``--clips`` simulated 5 s clips (one source, RT60 spread over 0.2-0.9 s) it prints, per clip
and as medians over ``--repeats`` runs in this one process:

* nara_wpe complex128 and complex64 (its BLAS held to 1 thread, as the old extraction did);
* ours, complex128, all clips as one batch with ``--threads`` torch threads (on a CPU with 2 or
  more: one clip per thread, each on one core), for each ``--row-groups`` (how many separate
  products form the upper triangle of the normal equations; 1 = the full product), and its
  float throughput against the FLOP count of the formulation (see :mod:`seld.features.wpe`);
* accuracy: max |ours - nara_wpe| / max |nara_wpe| per clip in complex128, and of complex64
  (ours and nara_wpe's) against the complex128 reference (the spec's "complex64 is unstable");
* with ``--profile``, where our time goes (torch.profiler, top operators).

Timings on a shared machine are noisy: compare the columns of one run, not runs of different days.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
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
from seld.features import wpe as wpe_module  # noqa: E402
from seld.features.wpe import wpe, wpe_reference  # noqa: E402


def simulated_mid_spectra(clips: int, seconds: float = 5.0) -> torch.Tensor:
    """Feature STFTs (960/1024/480) of W for ``clips`` simulated clips: complex ``(clips, 513, T)``."""
    from seld.data.synth import render_single_source

    specs = []
    for i in range(clips):
        rt60 = 0.2 + 0.7 * i / max(clips - 1, 1)
        audio = render_single_source(60.0 - 37.0 * i, 2.0, rt60=rt60, seed=i, class_idx=i % 13,
                                     num_samples=int(24000 * seconds))
        w = torch.from_numpy(0.5 * (audio[0].astype(np.float64) + audio[1]))
        specs.append(stft(w, 1024, 480, 960))
    return torch.stack(specs)


def flops(spec_shape: tuple[int, ...], cfg: WpeConfig, row_groups: int) -> tuple[float, float]:
    """(FLOP of our matmuls as computed with ``row_groups``, FLOP of the needed triangle) for the whole batch."""
    b, f, t = spec_shape
    k, lags = cfg.taps, cfg.taps + cfg.delay
    blocks = wpe_module._triangle_layout(k, cfg.delay, row_groups, "cpu", torch.float64)[0]
    entries = sum((r1 - r0) * (lags - j0) for r0, r1, j0 in blocks)  # complex results per (clip, bin)
    done = cfg.iterations * b * f * entries * t * 2 * 2
    needed = cfg.iterations * b * f * (k * (k + 1) / 2 + k) * t * 2 * 2
    return float(done), float(needed)


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
    parser.add_argument("--row-groups", default=f"1,{wpe_module.ROW_GROUPS}",
                        help="comma list of ROW_GROUPS values to time (default: %(default)s; the library's is "
                        f"{wpe_module.ROW_GROUPS})")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler's top operators")
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

    groups = [int(g) for g in args.row_groups.split(",")]
    default_groups = wpe_module.ROW_GROUPS
    ref = [wpe_reference(spec_np[i], cfg) for i in range(args.clips)]
    t_groups: dict[int, float] = {}
    for g in groups:
        wpe_module.ROW_GROUPS = g
        run_ours()  # warm-up
        t_groups[g] = median_time(run_ours, args.repeats) / args.clips
    wpe_module.ROW_GROUPS = default_groups
    ours = run_ours()  # the library's setting: the result checked below
    t_ours = t_groups.get(default_groups, min(t_groups.values()))
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
    done, needed = flops(tuple(spec.shape), cfg, default_groups)

    print()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"torch {torch.__version__}, {args.threads} torch threads, device {args.device}")
    print(f"WPE taps {cfg.taps} / delay {cfg.delay} / {cfg.iterations} iterations on {args.clips} clips "
          f"of {spec.shape[-1]} frames x {spec.shape[1]} bins; medians of {args.repeats} runs, seconds per clip")
    print(f"  nara_wpe complex128, per clip, BLAS 1 thread : {t_ref:8.3f} s/clip")
    print(f"  nara_wpe complex64,  per clip, BLAS 1 thread : {t_ref32:8.3f} s/clip")
    for g, t_g in t_groups.items():
        g_done = flops(tuple(spec.shape), cfg, g)[0] / args.clips / 1e9
        print(f"  ours     complex128, one batch, row groups {g:2d}: {t_g:8.3f} s/clip   "
              f"({t_ref / t_g:.1f}x nara complex128, {t_ref32 / t_g:.1f}x nara complex64; "
              f"matmul {g_done:.2f} GFLOP/clip){'  <- library default' if g == default_groups else ''}")
    print(f"  ours: matmul {done / args.clips / 1e9:.2f} GFLOP/clip as computed with {default_groups} row groups "
          f"({needed / args.clips / 1e9:.2f} needed); whole WPE at {done / args.clips / t_ours / 1e9:.1f} GFLOP/s "
          f"of matmul work")
    errs = [rel_err(ours[i].numpy(), ref[i]) for i in range(args.clips)]
    print(f"  accuracy, max|ours - nara| / max|nara| (complex128), per clip: "
          + ", ".join(f"{e:.1e}" for e in errs))
    e32 = [rel_err(ours32[i].numpy().astype(np.complex128), ref[i]) for i in range(args.clips)]
    n32 = [rel_err(ref32[i].astype(np.complex128), ref[i]) for i in range(args.clips)]
    print("  complex64 vs complex128 reference, per clip: ours " + ", ".join(f"{e:.1e}" for e in e32)
          + " | nara_wpe " + ", ".join(f"{e:.1e}" for e in n32))
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run_ours()
        print()
        print("where our time goes (one run of the batch):")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
    return 0


if __name__ == "__main__":
    sys.exit(main())
