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
bins or taps): ``R`` is Hermitian with ``R[k, k+m] = sum_s lam[s+d+k] y[s] conj(y[s-m])``; the lag
products ``z_m[s] = conj(y[s]) y[s-m]`` (m = 0 .. L-1, ``L = stored_lags(K)`` = 64 for K = 60) do
not change between iterations and ``lam[s+d+k]`` is a Hankel matrix of the weights. So each
iteration is ONE real x complex product ``[Hankel rows; lam] (K+1, T) @ z (T, L)`` per (clip, bin)
that gives ``conj(R)``'s upper triangle (row ``k`` as its lags) and ``P``'s lags below ``L``
together (``P``'s highest lags come from their own small lag products). With the lags in unfold's
natural descending order and the Hankel rows of ``R``'s rows in descending order, the upper
triangle lands where ``conj(J R J)``'s lower triangle (``J`` reverses the order) is a strided VIEW
of the product, which is also ``J R J``'s upper triangle in LAPACK's column-major layout (leading
dimension ``L-1 >= K``). So the solvers read the products where they are (no gather, no copy,
no mirror): on a CPU the compiled kernel's Cholesky of several bins at once (one per SIMD lane,
:func:`_kernel_solve`) or, without it, LAPACK's ``zposv`` in place on each bin's block
(:class:`_Lapack`); on a GPU, torch's batched Cholesky of the view; LU on the full matrix where
Cholesky fails and a pseudo-inverse where ``R`` is singular, as nara_wpe's ``solve`` / ``lstsq``.
The prediction ``G^H ytil`` is an FFT convolution.

Who forms the products: on a CPU in complex128, the compiled kernel of
:mod:`seld.features.native` (``wpe_kernel.c``, built on first use with the machine's C compiler)
forms only the entries that are read (R's triangle and P), reading the weights in place and
forming each column tile's lag products from the frames into a buffer that stays in the cache;
elsewhere (GPU, complex64, no compiler) a batched BLAS product of the whole rectangle from a
copied Hankel matrix and lag products stored for the whole chunk (132 MB per 5 s clip).

Cost per clip (F = 513 bins, T = 251 frames, K = 60, d = 5, 5 iterations), real multiply-add =
2 FLOP: the needed triangle and ``P`` are 4.9 GFLOP (nara_wpe's direct complex
``ytil Lambda ytil^H`` is 18.5 GFLOP, or 9.3 using its Hermitian symmetry); the kernel computes
5.9 (whole 8 x 16 register tiles), the BLAS rectangle 10.0 (``5 * 513 * 61 * 251 * 128 * 2``). The
Cholesky factorisations are ``5 * 513 * 60^3 / 3`` complex multiply-adds = 1.5 GFLOP: LAPACK's
small-matrix code takes ~30 us per 60 x 60 ``zposv``, the kernel's lane-parallel one ~11 us per
system (57 systems: 0.63 ms against 1.46, one core).

Where the time goes (``bench_wpe.py --clips 4 --threads 2 --profile``, Intel Xeon with AVX-512,
2 cores, 2026-11-27): 0.083 s per clip (nara_wpe 0.903 in that run: 11x; torch's products and
LAPACK instead of the kernel 0.166), i.e. 0.162 core-seconds per clip: products 0.087 (68 GFLOP/s
of computed work; this CPU's large-matrix peak is 78), solves 0.035, prediction 0.011, lag
products for ``P``'s tail 0.003, the rest (powers, allocation, threads) 0.026. Without the kernel
the products took 0.161 core-seconds, the Hankel weights 0.025, the lag products 0.028 and
LAPACK's solves 0.080: MKL's rectangle ran at 62.5 GFLOP/s but twice the work, and the lag
products streamed from memory in every iteration. The arithmetic limit of this formulation on that
core (needed products and factorisations at 78 GFLOP/s) is 0.082 core-seconds per clip. With several torch threads on a CPU, clips go to threads (one core each,
:func:`_wpe_cpu_threads`). complex64 would double the product speed but is not an option: ``R``
has condition numbers up to 1e6-1e7 and complex64 products give errors of the order of the
signal (measured in ``bench_wpe.py``).

``nara_wpe`` stays the reference (:func:`wpe_reference`), used by the tests and
``scripts/bench/bench_wpe.py``.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
from typing import Callable, Iterator

import numpy as np
import torch

from seld.features import native
from seld.features.native import Kernel
from seld.features.params import WpeConfig

EPS_SCALE = 1e-10
"""nara_wpe's power floor relative to the clip's largest power (``_stable_positive_inverse``)."""

CHUNK_BYTES = 2**30
"""GPU: memory budget of one chunk's lag products (132 MB per 5 s clip in complex128)."""

_POOL: list[torch.Tensor] = []
_POOL_LOCK = threading.Lock()
POOL_MAX = 2 * (os.cpu_count() or 1)
"""CPU lag-product buffers kept for the next call at most (each 132 MB per 5 s clip in complex128)."""


def _take_buffer(numel: int, dtype: torch.dtype) -> torch.Tensor:
    """A CPU buffer of at least ``numel`` elements of ``dtype``: a kept one when there is one.

    Fresh memory of this size comes from the operating system page by page on first touch (every
    call: it is above malloc's reuse threshold), 25 ms per clip's buffer on one core and more when
    threads fault at once; the lag products of a 5 s clip fill 132 MB. So buffers go back to a pool
    (:func:`_give_buffer`) that holds at most ``POOL_MAX``, as many as were in use at once; the
    memory stays with the process until :func:`free_buffers`."""
    with _POOL_LOCK:
        for i, buf in enumerate(_POOL):
            if buf.dtype == dtype and buf.numel() >= numel:
                return _POOL.pop(i)
    return torch.empty(numel, dtype=dtype)


def _give_buffer(buf: torch.Tensor) -> None:
    with _POOL_LOCK:
        _POOL.append(buf)
        del _POOL[: max(0, len(_POOL) - POOL_MAX)]


def free_buffers() -> None:
    """Release the kept CPU WPE buffers (the process keeps them between calls to save page faults)."""
    with _POOL_LOCK:
        _POOL.clear()


ROWS = 64
"""CPU: (clip, bin) rows whose normal equations are formed and solved together. The temporaries
of a chunk (weights 7.8 MB, products 4 MB at 64 rows) are reused from one allocation and stay
near the core; one Intel Xeon core, whole WPE per clip with torch's batched Cholesky: 0.38 / 0.37 /
0.40 / 0.43 s for 32 / 64 / 96 / 128 rows; with LAPACK in place, 2 cores: 0.191 / 0.185 / 0.180 /
0.184 s for 32 / 64 / 128 / 171 rows, within this machine's noise (2026-11-27)."""


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
    power = _window_mean(torch.view_as_real(x).square().sum(-1), psd_context)
    peak = power.amax(dim=(1, 2), keepdim=True)
    eps = EPS_SCALE * peak
    inverse = 1.0 / torch.maximum(power, eps)
    return torch.where(peak > 0, inverse, torch.ones_like(inverse))  # silent clip: nara_wpe uses 1


def _pinv_solve(r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Minimum-norm ``r^+ p`` with numpy's lstsq cutoff (nara_wpe's fallback for singular ``r``)."""
    rtol = torch.finfo(r.real.dtype).eps * r.shape[-1]
    return torch.linalg.pinv(r, rtol=rtol, hermitian=True) @ p


def _solve_hermitian_lower(view: torch.Tensor, rhs: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """``A^-1 rhs`` for Hermitian positive (semi-)definite ``A (N, K, K)`` given by its LOWER
    triangle (``view``: the upper one holds other numbers), ``rhs (N, K, 1)``: the GPU's solver
    (and the CPU's for complex64 and for the blocks where LAPACK's in-place Cholesky failed).

    Batched Cholesky of the view (one triangle read, no gather), then two triangular solves
    (half the time of ``cholesky_solve`` here, which copies its operands). Where the
    factorisation fails (``A`` not numerically positive definite) the full matrix is laid out for
    LU, as nara_wpe's ``np.linalg.solve``; where LU finds it singular, the pseudo-inverse (nara_wpe:
    ``lstsq``). Measured for 64 complex128 60 x 60 systems on one Intel Xeon core: Cholesky of the
    view + solve 2.3 ms; laying out the full matrix 0.5 ms + torch's LU solve 2.0 ms; numpy's LU
    solve 2.5 ms (the full matrix already there); LAPACK's small-matrix speed bounds all of them
    (20-40 GFLOP/s against 78 for a large product).
    """
    chol, info = torch.linalg.cholesky_ex(view)
    half = torch.linalg.solve_triangular(chol, rhs, upper=False)
    out = torch.linalg.solve_triangular(chol.mH, half, upper=True)
    bad = info != 0
    if bool(bad.any()):
        full = torch.where(lower, view[bad], view[bad].mH)
        g, info_lu = torch.linalg.solve_ex(full, rhs[bad])
        still = info_lu != 0
        if bool(still.any()):
            g[still] = _pinv_solve(full[still], rhs[bad][still])
        out[bad] = g
    return out


def _weights(lam_pad: torch.Tensor, t: int, d: int, k: int, out: torch.Tensor, use_numpy: bool | None = None) -> None:
    """Weight rows of the products into ``out (r, K+1, T)``: row ``rho < K`` = ``lam[s + d + K-1-rho]``
    (the Hankel row of ``R``'s row ``K-1-rho``, zero past the clip end), row ``K`` = ``lam`` (for
    ``P``). ``lam_pad (r, T + d + K)`` is ``lam`` padded with zeros at the end.

    The Hankel rows come in DESCENDING order of ``R``'s rows: a reversed window, which numpy copies
    straight from a negative-stride view (torch has no negative strides and would copy twice);
    ``use_numpy`` (default: on a CPU) picks that path, else torch's ``flip``."""
    if use_numpy is None:
        use_numpy = out.device.type == "cpu"
    if use_numpy:
        dst, src = out.numpy(), lam_pad.numpy()
        dst[:, k] = src[:, :t]
        dst[:, :k] = np.lib.stride_tricks.sliding_window_view(src, t, axis=-1)[:, d : d + k][:, ::-1]
    else:
        out[:, k] = lam_pad[:, :t]
        out[:, :k] = lam_pad.unfold(-1, t, 1)[:, d : d + k].flip(1)


def _weight_offsets(d: int, k: int) -> np.ndarray:
    """Where each row of :func:`_weights` starts in ``lam_pad`` (the compiled kernel reads them there)."""
    return np.array([d + k - 1 - rho for rho in range(k)] + [0], dtype=np.int64)


def _first_rows(d: int, k: int, lz: int, tile_cols: int) -> np.ndarray:
    """Per column tile of ``tile_cols`` real columns of the products: the first row anyone reads.
    Row ``rho < K`` holds ``R``'s lags ``m <= rho`` (the triangle) from column ``2 (L-1-rho)`` on,
    row ``K`` holds ``P``'s lags ``>= d`` below column ``2 (L-d)``; the kernel forms the rows from
    the first to the last (the ``P`` row also in tiles where it is not needed)."""
    first = []
    for j in range(2 * lz // tile_cols):
        lo, hi = j * tile_cols, (j + 1) * tile_cols
        need = [rho for rho in range(k) if 2 * (lz - 1 - rho) < hi]
        if lo < 2 * (lz - d):
            need.append(k)
        first.append(min(need, default=k + 1))
    return np.array(first, dtype=np.int32)


def _numpy_matmul(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    np.matmul(a.numpy(), b.numpy(), out=out.numpy())
    return out


def _torch_matmul(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return torch.matmul(a, b, out=out)


def _lower_view(fc: torch.Tensor, k: int, lz: int) -> torch.Tensor:
    """``conj(J R J)``'s lower triangle as a strided view of complex products ``fc (r, (K+1) L)``
    (one bin per row; :func:`_wpe_chunk` for the layout): ``(r, K, K)``, leading dimension ``L-1``."""
    return fc.as_strided((fc.shape[0], k, k), (fc.stride(0), lz - 1, 1), fc.storage_offset() + lz - 1)


def stored_lags(taps: int) -> int:
    """Lags kept in the lag products: ``K + 1`` rounded up to a multiple of 8. At least ``K + 1``
    so that the strided view of ``R`` has a leading dimension >= K (LAPACK's rule, for the
    in-place CPU solve); ``2 * lags`` a multiple of 16: whole column tiles of the compiled kernel
    (:mod:`seld.features.native`), and a multiple of 8, where MKL runs these products fastest."""
    return -(-(taps + 1) // 8) * 8


def _wpe_chunk(
    y: torch.Tensor, cfg: WpeConfig, buffer: torch.Tensor | None, matmul=_torch_matmul, rows: int | None = None,
    lapack: "_Lapack | None" = None, kernel: "Kernel | None" = None,
) -> torch.Tensor:
    """WPE of ``y (b, F, T)`` complex (already in the working dtype) -> ``(b, F, T)``.

    ``buffer``: at least ``b * F * T * stored_lags(K)`` elements of ``y``'s dtype for the lag
    products (reused across chunks: fresh memory of this size costs page faults on every use).
    ``matmul(a, b, out)``: the batched real matrix product (torch's, or numpy's on a
    single-threaded CPU). ``rows``: (clip, bin) rows formed and solved together (default: ``ROWS``
    on a CPU, all on a GPU). ``lapack``: LAPACK's Cholesky called in place on the product
    (:func:`_cpu_lapack`; CPU, complex128), else torch's batched Cholesky of the view.
    ``kernel``: the compiled CPU kernel (:func:`seld.features.native.kernel`; complex128) forms the
    products instead of ``matmul`` (only the triangle that is read, from the weights and the
    frames; ``buffer`` is not used) and solves instead of ``lapack``.

    Layout (see the module docstring), with ``L = stored_lags(K)``: the lag products
    ``z[s, c] = conj(y[s]) y[s - (L-1-c)]`` (lags descending, unfold's natural order) and the
    weight rows ``[Hankel rows of R's rows K-1 .. 0; lam]`` give
    ``prod[rho, c] = conj(R[k', k'+m])`` with ``k' = K-1-rho``, ``m = L-1-c``, and ``P``'s lags in
    row ``K``; in the reversed indices ``a = K-1-k'``, ``b = K-1-j`` that element of ``R`` sits at
    ``L-1 + a (L-1) + b`` of the bin's ``(K+1) x L`` block, so ``conj(J R J)``'s lower triangle is
    a strided VIEW of the product (no gather; ``J`` reverses the order): row-major with leading
    dimension ``L-1``, i.e. ``J R J``'s upper triangle in LAPACK's column-major layout.
    """
    b, nf, t = y.shape
    k, d = cfg.taps, cfg.delay
    lz = stored_lags(k)
    n = b * nf
    if rows is None:
        rows = ROWS if y.device.type == "cpu" else n
    rows = -(-n // -(-n // max(1, rows)))  # at most `rows`, in equal chunks
    yr = y.reshape(n, t)
    with torch.profiler.record_function("wpe.lag_products"):
        ypad = torch.nn.functional.pad(yr, (lz - 1, 0))
        if kernel is None:
            zc = buffer[: n * t * lz].view(n, t, lz)
            for i in range(0, n, rows):  # [s, c] = conj(y[s]) y[s - (L-1-c)]
                torch.mul(yr[i : i + rows].conj().unsqueeze(-1), ypad[i : i + rows].unfold(-1, lz, 1), out=zc[i : i + rows])
            zr = torch.view_as_real(zc).reshape(n, t, 2 * lz)  # real view [re, im] per lag
        else:  # the kernel forms them from the frames, tile by tile
            yp = torch.view_as_real(ypad)
        # P needs lags d .. d+K-1: the products give those below L, the n_tail highest ones
        # (lags max(L, d) .. K+d-1) come from their own small lag products, highest lag first:
        # tail[:, i] = lag K+d-1-i.
        n_tail = max(0, min(k, d + k - lz))
        tail = None
        if n_tail:
            past = torch.nn.functional.pad(yr, (k + d - 1, 0)).unfold(-1, n_tail, 1)[:, :t]  # [s, i] = y[s - (K+d-1-i)]
            tail = torch.view_as_real(yr.conj().unsqueeze(-1) * past).transpose(1, 2).contiguous()  # (n, n_tail, T, 2)
        # FFT of the observation for the prediction (linear convolution: no wrap-around).
        nfft = _fast_fft_size(t + d + k - 1)
        y_f = torch.fft.fft(yr, n=nfft)
    real = y.real.dtype
    if kernel is None:
        weights = torch.empty(rows, k + 1, t, dtype=real, device=y.device)
    else:
        w_off, first_rows = _weight_offsets(d, k), _first_rows(d, k, lz, kernel.tile_cols)
    prod = torch.empty(rows, k + 1, 2 * lz, dtype=real, device=y.device)
    flat = torch.view_as_complex(prod.view(rows, (k + 1) * lz, 2))
    lower = torch.ones(k, k, dtype=torch.bool, device=y.device).tril()
    taps_f = torch.zeros(n, nfft, dtype=y.dtype, device=y.device)
    rhs = torch.empty(rows, k, 1, dtype=y.dtype, device=y.device)
    first = k * lz + lz - d - k + n_tail  # where row K holds p[K-1-n_tail]
    x = yr.clone()
    for _ in range(cfg.iterations):
        lam_all = _inverse_power(x.reshape(b, nf, t), cfg.psd_context).reshape(n, t)
        if cfg.statistics_mode == "valid":
            lam_all[:, : d + k - 1] = 0.0
        lam_pad = torch.nn.functional.pad(lam_all, (0, d + k))
        # (n, n_tail): P's highest lags, highest first
        p_tail = None if tail is None else torch.view_as_complex(torch.matmul(lam_all[:, None, None, :], tail).squeeze(2))
        for i in range(0, n, rows):
            r = min(rows, n - i)
            if kernel is None:
                with torch.profiler.record_function("wpe.weights"):
                    _weights(lam_pad[i : i + r], t, d, k, weights[:r])
                with torch.profiler.record_function("wpe.products"):
                    matmul(weights[:r], zr[i : i + r], prod[:r])
            else:
                with torch.profiler.record_function("wpe.products"):
                    kernel.products(lam_pad[i : i + r], w_off, yp[i : i + r], prod[:r], first_rows)
            with torch.profiler.record_function("wpe.solve"):
                fc = flat[:r]
                # J p: p[K-1-a] for a = 0 .. K-1 (row K holds p[k] at column L-1-d-k)
                rj = rhs[:r, :, 0]
                if p_tail is not None:
                    rj[:, :n_tail] = p_tail[i : i + r]
                rj[:, n_tail:] = fc[:, first : k * lz + lz - d]
                if kernel is not None:
                    w = _kernel_solve(kernel, fc, k, lz, rhs[:r], lower)
                elif lapack is not None:

                    def redo(bad: torch.Tensor, i: int = i) -> torch.Tensor:
                        return torch.matmul(weights[bad], zr[i + bad])

                    w = lapack.solve(prod, r, k, lz, rhs, redo)
                else:
                    rj.conj_physical_()
                    w = _solve_hermitian_lower(_lower_view(fc, k, lz), rhs[:r], lower)  # J conj(g)
            taps_f[i : i + r, d : d + k] = w.squeeze(-1).flip(-1)  # conj(g): the prediction taps
        with torch.profiler.record_function("wpe.prediction"):  # all rows at once: lam is set for this iteration
            pred = torch.fft.ifft(y_f * torch.fft.fft(taps_f), n=nfft)[:, :t]
            torch.sub(yr, pred, out=x)
    return x.reshape(b, nf, t)


def _kernel_solve(kernel: Kernel, fc: torch.Tensor, k: int, lz: int, rhs: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """The compiled kernel's batched Cholesky on the view of the products (``J R J``'s upper
    triangle, column-major): ``rhs (r, K, 1)`` holds ``J p``; returns ``J conj(g)``. The products
    are only read, so a block whose factorisation fails goes straight to LU / the pseudo-inverse
    (:func:`_solve_hermitian_lower`, as nara_wpe's ``solve`` / ``lstsq``)."""
    view = _lower_view(fc, k, lz)
    info = kernel.solve(view.mT, rhs[:, :, 0])
    bad = np.flatnonzero(info)
    if bad.size:
        rows = torch.from_numpy(bad)
        rhs[rows] = _solve_hermitian_lower(view[rows], rhs[rows].conj(), lower).conj()
    return rhs.conj_physical_()


class _Lapack:
    """LAPACK's ``zposv`` (scipy's, through its ``cython_lapack`` function pointer) called by
    ctypes on each bin's block of the product, in place: the block is ``J R J``'s upper triangle in
    column-major layout with leading dimension ``L-1`` (:func:`_wpe_chunk`), so there is no copy and
    no batching overhead, and ctypes releases the GIL during each call, so the CPU threads of
    :func:`_wpe_cpu_threads` solve at once (OpenBLAS does not thread a 60 x 60 factorisation). One
    Intel Xeon core, 64 systems of 60 x 60: 1.7 ms (``zpotrf`` + ``zpotrs``) against 2.8 for
    torch's batched Cholesky of the view and two triangular solves (which copy the matrices
    first); ``zposv`` saves one call per system. (The compiled kernel's Cholesky, several bins at
    once, takes 0.63 ms for 57 systems where this takes 1.46: :func:`_kernel_solve`.)

    A block whose factorisation fails (``R`` not numerically positive definite) was partly
    overwritten (its right-hand side was not): its product is formed again and solved by
    :func:`_solve_hermitian_lower` (LU, then the pseudo-inverse)."""

    def __init__(self, posv) -> None:
        self.posv = posv

    def solve(self, prod: torch.Tensor, r: int, k: int, lz: int, rhs: torch.Tensor, redo) -> torch.Tensor:
        """``rhs[:r]`` holds ``J p``; returns ``J conj(g)`` (r, K, 1). ``redo(bad)`` forms the
        products of the rows ``bad`` again (for the fallback)."""
        import ctypes

        uplo, n, lda, ldb, one, info = (ctypes.c_char(b"U"), ctypes.c_int(k), ctypes.c_int(lz - 1),
                                        ctypes.c_int(k), ctypes.c_int(1), ctypes.c_int(0))
        a_uplo, a_n, a_lda, a_ldb, a_one, a_info = (ctypes.addressof(v) for v in (uplo, n, lda, ldb, one, info))
        item = prod.element_size() * 2  # bytes per complex number
        base = prod.data_ptr() + (lz - 1) * item
        step = prod.stride(0) * prod.element_size()
        rb, rstep = rhs.data_ptr(), rhs.stride(0) * rhs.element_size()
        posv = self.posv
        bad = []
        for j in range(r):
            posv(a_uplo, a_n, a_one, base + j * step, a_lda, rb + j * rstep, a_ldb, a_info)
            if info.value:
                bad.append(j)
        out = rhs[:r]
        if bad:
            rows = torch.tensor(bad)
            again = redo(rows)
            view = _lower_view(torch.view_as_complex(again.reshape(len(bad), -1, 2)), k, lz)
            lower = torch.ones(k, k, dtype=torch.bool).tril()
            out[rows] = _solve_hermitian_lower(view, out[rows].conj(), lower).conj()
        return out.conj_physical_()


ZPOSV_SIGNATURE = (b"void (char *, int *, int *, __pyx_t_double_complex *, int *, __pyx_t_double_complex *, "
                   b"int *, int *)")
"""The C signature scipy's ``cython_lapack`` names for ``zposv`` (32-bit integers, as the ctypes calls
of :class:`_Lapack` pass); any other and the CPU falls back to torch's batched Cholesky."""


@functools.lru_cache(maxsize=1)
def _cpu_lapack() -> "_Lapack | None":
    """scipy's LAPACK ``zposv`` as a ctypes function, or None where scipy's ``cython_lapack`` does
    not offer it (then torch's batched Cholesky serves)."""
    import ctypes

    try:
        from scipy.linalg import cython_lapack

        # own prototypes: setting restype on ctypes.pythonapi's shared functions would change them
        # for every other user in the process
        get_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(("PyCapsule_GetName", ctypes.pythonapi))
        get_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
            ("PyCapsule_GetPointer", ctypes.pythonapi))

        def function(name: str, signature: bytes, nargs: int):
            capsule = cython_lapack.__pyx_capi__[name]
            found = get_name(capsule)
            if found != signature:  # e.g. 64-bit integers: the calls below would be wrong
                raise ValueError(f"scipy's {name} has the signature {found!r}")
            return ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * nargs))(get_pointer(capsule, found))  # releases the GIL

        return _Lapack(function("zposv", ZPOSV_SIGNATURE, 8))
    except (ImportError, AttributeError, KeyError, ValueError):  # pragma: no cover - scipy without cython_lapack
        return None


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
    if y.device.type == "cpu":
        return _wpe_cpu_threads(y, cfg, max(1, min(torch.get_num_threads(), b)))
    # GPU: as many clips per chunk as CHUNK_BYTES allows
    per_clip = nf * t * stored_lags(cfg.taps)
    step = min(b, max(1, CHUNK_BYTES // (per_clip * y.element_size())))
    buffer = torch.empty(step * per_clip, dtype=y.dtype, device=y.device)
    return torch.cat([_wpe_chunk(y[i : i + step], cfg, buffer) for i in range(0, b, step)])


def _wpe_cpu_threads(y: torch.Tensor, cfg: WpeConfig, threads: int) -> torch.Tensor:
    """CPU: one clip at a time per thread, each on one core (one thread: in the caller's).

    A clip's 513 bins already fill the batched products, and its lag-product buffer (torch's
    products) stays in use and warm. The single-threaded kernels (the compiled kernel, or the BLAS
    products and LAPACK's solve) are the fast ones for these small matrices; the threads share
    nothing but the input and the output. torch's own thread count is held to 1 meanwhile (its
    operators would otherwise each spread over every core) and restored after.
    """
    from concurrent.futures import ThreadPoolExecutor

    b, nf, t = y.shape
    out = torch.empty_like(y)
    per_clip = nf * t * stored_lags(cfg.taps)
    kernel = native.kernel() if y.dtype == torch.complex128 else None
    lapack = _cpu_lapack() if y.dtype == torch.complex128 and kernel is None else None
    buffers = [None if kernel is not None else _take_buffer(per_clip, y.dtype) for _ in range(threads)]
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # the BLAS product (and numpy's thread limit) only where the compiled kernel does not form them
        with contextlib.nullcontext(None) if kernel is not None else _cpu_products(y.device) as matmul:

            def work(lane: int) -> None:
                for i in range(lane, b, threads):
                    out[i : i + 1] = _wpe_chunk(y[i : i + 1], cfg, buffers[lane], matmul, lapack=lapack, kernel=kernel)

            if threads == 1:
                work(0)
            else:
                with ThreadPoolExecutor(threads) as pool:
                    for f in [pool.submit(work, lane) for lane in range(threads)]:
                        f.result()
    finally:
        torch.set_num_threads(saved)
        for buf in buffers:
            if buf is not None:
                _give_buffer(buf)
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
def _cpu_products(device: torch.device) -> Iterator[Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The batched matrix product WPE uses: torch's, except when torch runs on ONE CPU thread
    (extraction workers) of a CPU that is not Intel's: then numpy's, with numpy's BLAS held to one
    thread too. Which library is faster for these products depends on the CPU (one thread, the
    (256, 61, 251) x (256, 251, 130) float64 product): on the AMD EPYC CPUs of the first
    measurements numpy's OpenBLAS was 25 % faster than torch's MKL; on an Intel Xeon (AVX-512,
    2026-11-26) MKL did 41-57 GFLOP/s against OpenBLAS's 35, and the whole WPE took 0.26 instead
    of 0.31 s per clip on 2 cores (the two differ by 8e-8 of the largest value, summation order).
    The present (64, 61, 251) x (64, 251, 120) product on that Xeon, alone: MKL 75 GFLOP/s, numpy's
    OpenBLAS 46 (2026-11-27; inside WPE MKL reaches 59-67). With more threads torch's own pool
    is the safer parallelism."""
    if device.type != "cpu" or torch.get_num_threads() != 1 or _cpu_vendor() == "GenuineIntel":
        yield _torch_matmul
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn (librosa)
        yield _torch_matmul
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
