"""WPE dereverberation of the mid signal, batched over clips and frequency bins in torch.

The algorithm is nara_wpe's offline ``wpe`` (``nara_wpe.wpe.wpe_v7``) for one channel, with the
statistics of each clip estimated over the whole clip. Per clip, for every frequency bin with
STFT ``y[t]`` (T frames), prediction delay ``d`` and ``K`` taps, each iteration does

1. ``lam[t] = 1 / max(|x[t]|^2, eps)`` with ``eps = 1e-10 * max over (bins, frames) |x|^2`` of the
   clip (``x = y`` in the first iteration; all ones for a silent clip);
2. ``R = sum_t lam[t] ytil[t] ytil[t]^H`` (K x K) and ``P = sum_t lam[t] ytil[t] conj(y[t])`` with
   ``ytil[t] = (y[t-d], ..., y[t-d-K+1])`` (zeros before the clip);
3. ``G = R^-1 P`` and ``x[t] = y[t] - G^H ytil[t]``.

The arithmetic that makes it fast (all bins of all clips of a chunk at once, no Python loop over
bins or taps): ``R`` is Hermitian with ``R[k, k+m] = sum_s lam[s+d+k] z_m[s]``, where the lag
products ``z_m[s] = y[s] conj(y[s-m])`` (m = 0 .. d+K-1) do not change between iterations and
``lam[s+d+k]`` is a Hankel matrix of the weights. So each iteration is a real x complex batched
matmul ``[lam; Hankel(lam)] (K+1, T) @ z (T, d+K)`` per (clip, bin) that gives the upper triangle
of ``R`` (as lags) and ``P`` together, split into ``ROW_GROUPS`` products that skip most of the
lags below the diagonal; a gather lays out the full Hermitian ``R`` for a batched
solve (CPU: numpy's LU ``solve`` as nara_wpe, GPU: Cholesky; a pseudo-inverse where ``R`` is
singular, as nara_wpe falls back to ``lstsq``); the prediction ``G^H ytil`` is an FFT convolution.

Cost per clip (F = 513 bins, T = 251 frames, K = 60, d = 5, 5 iterations), real multiply-add =
2 FLOP: the matmul is ``5 * 513 * 61 * 251 * 130 * 2`` = 10.2 GFLOP, of which the needed
triangle is 46 % (4.7 GFLOP: the arithmetic floor of this formulation; the direct complex
``ytil Lambda ytil^H`` of nara_wpe is 18.5 GFLOP, or 9.3 using its Hermitian symmetry); the
Cholesky factorisations ``5 * 513 * 4 * 60^3 / 3`` = 0.15 GFLOP but at LAPACK's small-matrix
speed; the rest is memory traffic (the lag products are ``513 * 251 * 65`` complex numbers,
134 MB per clip in complex128, which bounds the clips per chunk).

Where the time goes on one AMD EPYC core (2 groups, 0.55 s per clip): products 0.29 s (7.5 GFLOP
at 26 GFLOP/s), LU solves 0.11 s, the gather of ``R`` 0.06 s, the rest (lag products, Hankel
weights, FFT prediction, powers) 0.09 s. With several torch threads on a CPU, clips go to threads
(one core each, :func:`_wpe_cpu_threads`). On 2 cores of an Intel Xeon (AVX-512, 2026-11-26,
``bench_wpe.py --clips 4 --threads 2``): nara_wpe 0.85 s per clip, ours 0.31 s with numpy's
OpenBLAS products and 0.26 s with torch's MKL (now the choice on Intel, :func:`_cpu_products`;
0.25 s with 1 row group, 0.30 s with 4).

``nara_wpe`` stays the reference (:func:`wpe_reference`), used by the tests and
``scripts/bench/bench_wpe.py``.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Callable, Iterator

import numpy as np
import torch

from seld.features.params import WpeConfig

EPS_SCALE = 1e-10
"""nara_wpe's power floor relative to the clip's largest power (``_stable_positive_inverse``)."""

CHUNK_BYTES = 2**30
"""GPU: memory budget of one chunk's lag products (134 MB per clip in complex128)."""

ROWS = 256
"""(clip, bin) rows whose normal equations are formed and solved together: bounds the
temporaries of an iteration to a few MB so they are reused from the heap and stay in cache."""


def _fast_fft_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (sizes pocketfft/cuFFT handle fastest)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _window_mean(power: torch.Tensor, context: int) -> torch.Tensor:
    """Mean of ``power (..., T)`` over ``t - context .. t + context`` (edges: over what exists)."""
    if context == 0:
        return power
    width = 2 * context + 1
    flat = power.reshape(-1, 1, power.shape[-1])
    ones = torch.ones(1, 1, width, dtype=power.dtype, device=power.device)
    total = torch.nn.functional.conv1d(torch.nn.functional.pad(flat, (context, context)), ones)
    count = torch.nn.functional.conv1d(
        torch.nn.functional.pad(torch.ones_like(flat[:1]), (context, context)), ones
    )
    return (total / count).reshape(power.shape)


def _inverse_power(x: torch.Tensor, psd_context: int) -> torch.Tensor:
    """``1 / max(|x|^2, eps)`` per clip of ``x (b, F, T)``, eps relative to the clip's maximum."""
    power = _window_mean(x.real**2 + x.imag**2, psd_context)
    peak = power.amax(dim=(1, 2), keepdim=True)
    eps = EPS_SCALE * peak
    inverse = 1.0 / torch.maximum(power, eps)
    return torch.where(peak > 0, inverse, torch.ones_like(inverse))  # silent clip: nara_wpe uses 1


def _pinv_solve(r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Minimum-norm ``r^+ p`` with numpy's lstsq cutoff (nara_wpe's fallback for singular ``r``)."""
    rtol = torch.finfo(r.real.dtype).eps * r.shape[-1]
    return torch.linalg.pinv(r, rtol=rtol, hermitian=True) @ p


def _solve_hermitian(r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``r^-1 p`` for Hermitian positive (semi-)definite ``r (N, K, K)``, ``p (N, K, 1)``.

    On the CPU: numpy's batched LU ``solve``, exactly nara_wpe's call. Cholesky does not pay at
    K = 60 on a CPU (one thread, 256 complex128 60 x 60 systems: numpy LU solve 10.2 ms; numpy's
    Cholesky factorisation alone 7.7 ms, 10.8 ms with torch's triangular solves; torch's
    ``cholesky_ex`` + ``cholesky_solve`` 23.8 ms, ``solve_ex`` 16.3 ms); per matrix, the pseudo-inverse where
    LU finds ``r`` singular (nara_wpe: ``lstsq``). On a GPU: batched Cholesky, LU where that
    fails, the pseudo-inverse where both do.
    """
    if r.device.type == "cpu":
        try:
            return torch.from_numpy(np.linalg.solve(r.numpy(), p.numpy()))
        except np.linalg.LinAlgError:
            g, info = torch.linalg.solve_ex(r, p)
            bad = info != 0
            if bool(bad.any()):
                g[bad] = _pinv_solve(r[bad], p[bad])
            return g
    chol, info = torch.linalg.cholesky_ex(r)
    g = torch.cholesky_solve(p, chol)
    bad = info != 0
    if bool(bad.any()):
        g_lu, info_lu = torch.linalg.solve_ex(r[bad], p[bad])
        still = info_lu != 0
        if bool(still.any()):
            g_lu[still] = _pinv_solve(r[bad][still], p[bad][still])
        g[bad] = g_lu
    return g


ROW_GROUPS = 2
"""Groups of rows of ``R`` formed by separate products, each with only the lags its rows need
(the upper triangle): 1 group = the full ``(K+1) x (d+K)`` product (10.2 GFLOP per clip), 2 groups
compute 74 % of it (7.5 GFLOP), 4 groups 60 %, 8 groups 54 %. Fewer FLOP in smaller matrices:
measured on one AMD EPYC core (``scripts/bench/bench_wpe.py --row-groups 1,2,4,6,8``), the
products took 0.34 / 0.29 / 0.34 s per clip for 1 / 2 / 4 groups (30 / 26 / 18 GFLOP/s: BLAS
loses efficiency below ~30 rows), and the whole WPE 0.62 / 0.55 / 0.63 / 0.71 / 0.76 s for
1 / 2 / 4 / 6 / 8 groups, so 2 is the default."""


@functools.lru_cache(maxsize=16)
def _triangle_layout(
    k: int, d: int, groups: int, device: str, dtype: torch.dtype
) -> tuple[tuple[tuple[int, int, int], ...], torch.Tensor, torch.Tensor]:
    """How the grouped products are laid out, and how the full Hermitian ``R`` is read from them.

    Returns ``blocks``, ``index`` and ``sign``. Block ``g`` = ``(first weight row, last + 1, first
    lag column)``: the product of weight rows ``[r0, r1)`` (row 0 = ``lam`` for ``P``, row ``1 + k'``
    = the Hankel row of ``R``'s row ``k'``) with the lag columns ``[j0, d+K)`` (column ``j`` = lag
    ``d+K-1-j``; ``R``'s row ``k'`` needs lags ``0 .. K-1-k'``, so columns ``>= d + k'``). The blocks'
    complex results are concatenated row-major into one flat vector per (clip, bin); ``index``
    ``(K*K,)`` points into it for ``R`` row-major (the mirror position below the diagonal) and
    ``sign`` is the sign of the imaginary part there (the products give ``conj(R)`` on and above
    the diagonal).
    """
    lags = d + k
    groups = max(1, min(groups, k))
    bounds = [round(i * k / groups) for i in range(groups + 1)]
    blocks = []
    offsets = []  # complex offset of each block in the flat vector
    offset = 0
    for g in range(groups):
        a, b = bounds[g], bounds[g + 1]
        r0 = 0 if g == 0 else 1 + a
        j0 = 0 if g == 0 else d + a
        blocks.append((r0, 1 + b, j0))
        offsets.append(offset)
        offset += (1 + b - r0) * (lags - j0)
    group_of = np.searchsorted(np.asarray(bounds[1:]), np.arange(k), side="right")
    row = np.arange(k).reshape(-1, 1)
    col = np.arange(k).reshape(1, -1)
    top = np.minimum(row, col)  # R row k' of the upper-triangle element
    lag = np.abs(col - row)
    g = group_of[top]
    r0 = np.array([blk[0] for blk in blocks])[g]
    j0 = np.array([blk[2] for blk in blocks])[g]
    width = lags - j0
    index = np.array(offsets)[g] + (1 + top - r0) * width + (lags - 1 - lag - j0)
    sign = torch.from_numpy(np.where(col >= row, -1.0, 1.0)).to(dtype)
    return tuple(blocks), torch.from_numpy(index.reshape(-1)).to(device), sign.to(device)


def _numpy_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.matmul(a.numpy(), b.numpy()))


def _wpe_chunk(
    y: torch.Tensor, cfg: WpeConfig, buffer: torch.Tensor, matmul=torch.matmul
) -> torch.Tensor:
    """WPE of ``y (b, F, T)`` complex (already in the working dtype) -> ``(b, F, T)``.

    ``buffer``: at least ``b * F * T * (d + K)`` elements of ``y``'s dtype for the lag products
    (reused across chunks: fresh memory of this size costs page faults on every use).
    ``matmul``: the batched real matrix product (torch's, or numpy's on a single-threaded CPU).
    """
    b, nf, t = y.shape
    k, d = cfg.taps, cfg.delay
    lags = d + k
    n = b * nf
    yr = y.reshape(n, t)
    rows = -(-n // -(-n // ROWS))  # at most ROWS, in equal chunks
    # Conjugated lag products conj(y[s]) y[s - m] for m = 0 .. d+K-1, fixed across iterations.
    # Lags are in DESCENDING order (column j holds lag d+K-1-j: unfold's natural order, which
    # saves flipping this big table; the small results are indexed accordingly).
    zc = buffer[: n * t * lags].view(n, t, lags)
    for i in range(0, n, rows):
        yi = yr[i : i + rows]
        past = torch.nn.functional.pad(yi, (lags - 1, 0)).unfold(-1, lags, 1)  # [s, j] = y[s - (lags-1-j)]
        torch.mul(yi.conj().unsqueeze(-1), past, out=zc[i : i + rows])
    zr = torch.view_as_real(zc).reshape(n, t, 2 * lags)  # real view [re, im] per lag
    # FFT of the observation for the prediction (linear convolution: no wrap-around).
    nfft = _fast_fft_size(t + lags - 1)
    y_f = torch.fft.fft(yr, n=nfft)
    blocks, index, imag_sign = _triangle_layout(k, d, ROW_GROUPS, str(y.device), zr.dtype)
    weights = torch.empty(rows, k + 1, t, dtype=zr.dtype, device=y.device)
    taps_f = torch.zeros(rows, nfft, dtype=y.dtype, device=y.device)
    x = yr.clone()
    for _ in range(cfg.iterations):
        lam_all = _inverse_power(x.reshape(b, nf, t), cfg.psd_context).reshape(n, t)
        if cfg.statistics_mode == "valid":
            lam_all[:, : d + k - 1] = 0.0
        lam_pad = torch.nn.functional.pad(lam_all, (0, lags))
        for i in range(0, n, rows):
            r = min(rows, n - i)
            # Row 0: lam (for P); rows 1..K: the Hankel lam[s + d + k'] (zero past the clip end)
            # for R. Real matmuls with the lag products give both (conjugated):
            # prod[1 + k', d + K-1-m] = conj(R[k', k'+m]),  prod[0, K-1-k'] = P[k'];
            # each group of rows only with the lag columns its rows need (_triangle_layout).
            hl = weights[:r]
            hl[:, 0] = lam_all[i : i + r]
            hl[:, 1:] = lam_pad[i : i + r].unfold(-1, t, 1)[:, d : d + k]
            zi = zr[i : i + r]
            parts = [matmul(hl[:, r0:r1], zi[:, :, 2 * j0 :]).reshape(r, -1) for r0, r1, j0 in blocks]
            flat = torch.view_as_complex(torch.cat(parts, dim=1).reshape(r, -1, 2))
            p = flat[:, :k].flip(-1).unsqueeze(-1)  # block 0, row 0, columns 0 .. K-1
            full = torch.index_select(flat, 1, index).reshape(r, k, k)
            torch.view_as_real(full)[..., 1].mul_(imag_sign)
            g = _solve_hermitian(full, p).squeeze(-1)  # (r, K)
            tf = taps_f[:r]
            tf[:, d : d + k] = g.conj()
            pred = torch.fft.ifft(y_f[i : i + r] * torch.fft.fft(tf), n=nfft)[:, :t]
            torch.sub(yr[i : i + r], pred, out=x[i : i + r])
    return x.reshape(b, nf, t)


def wpe(spec: torch.Tensor, cfg: WpeConfig, dtype: torch.dtype = torch.complex128) -> torch.Tensor:
    """WPE-dereverberated STFT of single-channel clips: complex ``(B, F, T)`` -> ``(B, F, T)``.

    Works on any device; computes in ``dtype`` and returns that dtype. complex128 is the only
    accurate choice: complex64 is there to measure that (``scripts/bench/bench_wpe.py``). Each
    clip has its own statistics, so a clip's result does not depend on the rest of the batch.
    """
    if spec.ndim != 3 or not spec.is_complex():
        raise ValueError(f"WPE input must be complex (clips, freq, frames), got {spec.dtype} {tuple(spec.shape)}")
    y = spec.to(dtype)
    b, nf, t = y.shape
    per_clip = nf * t * (cfg.taps + cfg.delay)
    if y.device.type == "cpu":
        threads = min(torch.get_num_threads(), b)
        if threads > 1:
            return _wpe_cpu_threads(y, cfg, threads)
    # CPU: one clip per chunk (its 513 bins already fill the batched matmuls; the lag-product
    # buffer stays in use and warm); GPU: as many clips as CHUNK_BYTES allows.
    step = 1 if y.device.type == "cpu" else max(1, CHUNK_BYTES // (per_clip * y.element_size()))
    step = min(step, b)
    buffer = torch.empty(step * per_clip, dtype=y.dtype, device=y.device)
    with _cpu_products(y.device) as matmul:
        return torch.cat([_wpe_chunk(y[i : i + step], cfg, buffer, matmul) for i in range(0, b, step)])


def _wpe_cpu_threads(y: torch.Tensor, cfg: WpeConfig, threads: int) -> torch.Tensor:
    """CPU, several clips and torch threads: one clip at a time per thread, each on one core.

    The single-threaded kernels (numpy's BLAS for the products, LAPACK's solve) are the fast ones
    for these small matrices; the threads share nothing but the input and the output. torch's own
    thread count is held to 1 meanwhile (its operators would otherwise each spread over every
    core) and restored after.
    """
    from concurrent.futures import ThreadPoolExecutor

    b, nf, t = y.shape
    out = torch.empty_like(y)
    per_clip = nf * t * (cfg.taps + cfg.delay)
    buffers = [torch.empty(per_clip, dtype=y.dtype) for _ in range(threads)]
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _cpu_products(y.device) as matmul:

            def work(lane: int) -> None:
                for i in range(lane, b, threads):
                    out[i : i + 1] = _wpe_chunk(y[i : i + 1], cfg, buffers[lane], matmul)

            with ThreadPoolExecutor(threads) as pool:
                for f in [pool.submit(work, lane) for lane in range(threads)]:
                    f.result()
    finally:
        torch.set_num_threads(saved)
    return out


@functools.lru_cache(maxsize=1)
def _cpu_vendor() -> str:
    """The CPU's ``vendor_id`` from /proc/cpuinfo (``GenuineIntel``, ``AuthenticAMD``; "" elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@contextlib.contextmanager
def _cpu_products(device: torch.device) -> Iterator[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The batched matrix product WPE uses: torch's, except when torch runs on ONE CPU thread
    (extraction workers) of a CPU that is not Intel's: then numpy's, with numpy's BLAS held to one
    thread too. Which library is faster for these products depends on the CPU (one thread, the
    (256, 61, 251) x (256, 251, 130) float64 product): on the AMD EPYC CPUs of the first
    measurements numpy's OpenBLAS was 25 % faster than torch's MKL; on an Intel Xeon (AVX-512,
    2026-11-26) MKL did 41-57 GFLOP/s against OpenBLAS's 35, and the whole WPE took 0.26 instead
    of 0.31 s per clip on 2 cores (the two differ by 8e-8 of the largest value, summation order).
    With more threads torch's own pool is the safer parallelism."""
    if device.type != "cpu" or torch.get_num_threads() != 1 or _cpu_vendor() == "GenuineIntel":
        yield torch.matmul
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn (librosa)
        yield torch.matmul
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield _numpy_matmul


def wpe_reference(spec: np.ndarray, cfg: WpeConfig) -> np.ndarray:
    """nara_wpe's ``wpe`` (complex128) on one clip ``(F, T)`` -> ``(F, T)``: the reference.

    nara_wpe runs many small matrix products; its BLAS is held to one thread (a multi-threaded
    BLAS spends more time synchronising than computing on them).
    """
    from nara_wpe.wpe import wpe as nara_wpe

    try:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn (librosa)
        import contextlib

        limit = contextlib.nullcontext()
    if spec.ndim != 2:
        raise ValueError(f"reference WPE input must be (freq, frames), got shape {spec.shape}")
    with limit:
        out = nara_wpe(
            np.ascontiguousarray(spec, dtype=np.complex128)[:, None, :],
            taps=cfg.taps,
            delay=cfg.delay,
            iterations=cfg.iterations,
            psd_context=cfg.psd_context,
            statistics_mode=cfg.statistics_mode,
        )
    return out[:, 0, :]
