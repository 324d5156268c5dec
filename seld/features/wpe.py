"""WPE dereverberation of the mid signal, batched over clips and frequency bins in torch.

The algorithm is nara_wpe's offline ``wpe`` (``nara_wpe.wpe.wpe_v7``) for one channel, with the
statistics of each clip estimated over the whole clip. Per clip, for every frequency bin with
STFT ``y[t]`` (T frames), prediction delay ``d`` and ``K`` taps, each iteration does

1. ``lam[t] = 1 / max(|x[t]|^2, eps)`` with ``eps = 1e-10 * max over (bins, frames) |x|^2`` of the
   clip (``x = y`` in the first iteration; all ones for a silent clip);
2. ``R = sum_t lam[t] ytil[t] ytil[t]^H`` (K x K) and ``P = sum_t lam[t] ytil[t] conj(y[t])`` with
   ``ytil[t] = (y[t-d], ..., y[t-d-K+1])`` (zeros before the clip);
3. ``G = R^-1 P`` and ``x[t] = y[t] - G^H ytil[t]``.

All bins of all clips of a chunk go at once, with no Python loop over bins or taps: ``R`` is
Hermitian with ``R[k, k+m] = sum_s lam[s+d+k] y[s] conj(y[s-m])``, so one real x complex product of
the weights' Hankel rows and the lag products ``conj(y[s]) y[s-m]`` (``m < L = stored_lags(K)``)
gives ``R``'s triangle and ``P``, laid out so that ``conj(J R J)``'s lower triangle is a strided
view of the product (:func:`_wpe_chunk`; ``J`` reverses the order) that the solvers read in place.
The prediction ``G^H ytil`` is an FFT convolution.

Two ways to run it, the same normal equations:

* on a CPU in complex128, the compiled kernel of :mod:`seld.features.native` (``wpe_kernel.c``)
  forms only the entries that are read and solves them by Cholesky factorisations of several bins
  at once (:func:`_kernel_solve`);
* elsewhere (a GPU, a CPU without a C compiler, complex64): torch's batched product of the whole
  rectangle and torch's batched Cholesky of the view (:func:`_solve_hermitian_lower`).

Where Cholesky fails (``R`` not numerically positive definite) LU solves the full matrix, and where
``R`` is singular the pseudo-inverse does, as nara_wpe's ``solve`` / ``lstsq``. complex128 is the
only accurate working type: ``R``'s condition numbers reach 1e6-1e7. On a CPU with several torch
threads, clips go to threads (one core each, :func:`_wpe_cpu_threads`). Speed and its history:
``docs/results/speed_cpu.md``. ``nara_wpe`` stays the reference (:func:`wpe_reference`), used by the
tests and ``scripts/bench/bench_wpe.py``.
"""
from __future__ import annotations

import numpy as np
import torch

from seld.features import native
from seld.features.native import Kernel
from seld.features.params import WpeConfig

EPS_SCALE = 1e-10
"""nara_wpe's power floor relative to the clip's largest power (``_stable_positive_inverse``)."""

CHUNK_BYTES = 2**30
"""GPU: memory budget of one chunk's lag products (132 MB per 5 s clip in complex128)."""

ROWS = 64
"""CPU: (clip, bin) rows whose normal equations are formed and solved together, so that a chunk's
temporaries (weights, products) are reused from one allocation and stay in the core's cache."""


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
    triangle (``view``: the upper one holds other numbers), ``rhs (N, K, 1)``: the torch path's
    solver, and the fallback of the kernel's where its factorisation fails.

    Batched Cholesky of the view (one triangle read, no gather), then two triangular solves
    (``cholesky_solve`` would copy its operands). Where the factorisation fails (``A`` not
    numerically positive definite) the full matrix is laid out for LU, as nara_wpe's
    ``np.linalg.solve``; where LU finds it singular, the pseudo-inverse (nara_wpe: ``lstsq``).
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


def _weights(lam_pad: torch.Tensor, t: int, d: int, k: int, out: torch.Tensor) -> None:
    """Weight rows of the products into ``out (r, K+1, T)``: row ``rho < K`` = ``lam[s + d + K-1-rho]``
    (the Hankel row of ``R``'s row ``K-1-rho``, zero past the clip end), row ``K`` = ``lam`` (for
    ``P``). ``lam_pad (r, T + d + K)`` is ``lam`` padded with zeros at the end. The Hankel rows come
    in DESCENDING order of ``R``'s rows (see :func:`_wpe_chunk`)."""
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


def _lower_view(fc: torch.Tensor, k: int, lz: int) -> torch.Tensor:
    """``conj(J R J)``'s lower triangle as a strided view of complex products ``fc (r, (K+1) L)``
    (one bin per row; :func:`_wpe_chunk` for the layout): ``(r, K, K)``, leading dimension ``L-1``."""
    return fc.as_strided((fc.shape[0], k, k), (fc.stride(0), lz - 1, 1), fc.storage_offset() + lz - 1)


def stored_lags(taps: int) -> int:
    """Lags kept in the lag products: ``K + 1`` rounded up to a multiple of 8. At least ``K + 1``
    so that the strided view of ``R`` has a leading dimension >= K (the column-major layout the
    kernel's Cholesky reads); ``2 * lags`` a multiple of 16: whole column tiles of the compiled
    kernel (:mod:`seld.features.native`)."""
    return -(-(taps + 1) // 8) * 8


def _wpe_chunk(
    y: torch.Tensor, cfg: WpeConfig, buffer: torch.Tensor | None, rows: int | None = None,
    kernel: Kernel | None = None,
) -> torch.Tensor:
    """WPE of ``y (b, F, T)`` complex (already in the working dtype) -> ``(b, F, T)``.

    ``buffer``: at least ``b * F * T * stored_lags(K)`` elements of ``y``'s dtype for the lag
    products of the torch path (unused with ``kernel``). ``rows``: (clip, bin) rows formed and
    solved together (default: ``ROWS`` on a CPU, all on a GPU). ``kernel``: the compiled CPU kernel
    (:func:`seld.features.native.kernel`; complex128) forms the products (only the triangle that is
    read, from the weights and the frames) and solves them; without it torch's batched product of
    the whole rectangle and :func:`_solve_hermitian_lower` do.

    Layout, with ``L = stored_lags(K)``: the lag products
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
                    torch.matmul(weights[:r], zr[i : i + r], out=prod[:r])
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

    A clip's 513 bins already fill the batched products, and the single-threaded kernels (the
    compiled kernel, or torch's products and solves) are the fast ones for these small matrices;
    the threads share nothing but the input and the output. torch's own thread count is held to 1
    meanwhile (its operators would otherwise each spread over every core) and restored after.
    """
    from concurrent.futures import ThreadPoolExecutor

    b, nf, t = y.shape
    out = torch.empty_like(y)
    kernel = native.kernel() if y.dtype == torch.complex128 else None
    per_clip = nf * t * stored_lags(cfg.taps)
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:

        def work(lane: int) -> None:
            # the torch path's lag products of one clip (the kernel forms them tile by tile in its cache)
            buffer = None if kernel is not None else torch.empty(per_clip, dtype=y.dtype)
            for i in range(lane, b, threads):
                out[i : i + 1] = _wpe_chunk(y[i : i + 1], cfg, buffer, kernel=kernel)

        if threads == 1:
            work(0)
        else:
            with ThreadPoolExecutor(threads) as pool:
                for f in [pool.submit(work, lane) for lane in range(threads)]:
                    f.result()
    finally:
        torch.set_num_threads(saved)
    return out


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
