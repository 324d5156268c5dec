"""The compiled CPU kernel of WPE (``wpe_kernel.c``), built on first use for the machine it runs on.

The kernel forms only the needed triangle of WPE's normal equations, reading the weights where they
are (:mod:`seld.features.wpe`), and solves them by Cholesky factorisations of several bins at once
(one per SIMD lane). It is C, compiled once per CPU model with the machine's compiler (``$CC``, else ``cc``,
``-O3 -march=native``) into a cache directory (``$TEXTSELD_CACHE``, else
``$XDG_CACHE_HOME/textseld``, else ``~/.cache/textseld``) under a name that hashes the source, the
compiler and the CPU, so nodes of a cluster sharing one home directory each get their own build and
a changed source is rebuilt. Where there is no compiler, the build fails or the CPU's vectors hold
fewer than 4 doubles (where the kernel is slower than a BLAS product), :func:`kernel` returns None
with one warning and WPE runs torch's products; ``TEXTSELD_NATIVE=0`` turns the kernel off.

Only a library this user built is loaded, since loading runs its code: the cache folder is created
private (0700), and a folder or library that is a symbolic link, belongs to another user or is
writable by its group or others is refused (:class:`UnsafeKernelCache`, naming the path and the
fix). The build records the library's SHA-256 next to it (``<name>.so.sha256``); the library is read
through one open file, its hash checked against that record, and that same file loaded, so a
truncated copy (a full disk, an interrupted copy: loading one can end the process with SIGBUS) or a
replaced one never runs. A library that does not match, or that fails to load, is rebuilt once.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

SOURCE = Path(__file__).with_name("wpe_kernel.c")
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared")
MIN_TILE_COLS = 8
"""Columns of the kernel's register tile below which it is not used: a tile is two SIMD vectors, and
with vectors of 2 doubles (SSE2) the kernel is slower than torch's products (figures:
``docs/results/speed_cpu.md``)."""


class NativeBuildError(RuntimeError):
    """The kernel could not be compiled (no compiler, a compiler error, an unwritable cache)."""


class UnsafeKernelCache(NativeBuildError):
    """The cache folder or a library in it could hold code of someone else: not used, not rebuilt."""


class KernelMismatch(NativeBuildError):
    """A cached library is not the one the build recorded (truncated, replaced, or no record): rebuilt."""


HASH_SUFFIX = ".sha256"
"""The record of a library's SHA-256, next to it: ``wpe_kernel-<key>.so.sha256``."""
_LOADED_FDS: list[int] = []
"""Open files of the loaded libraries (loaded as ``/proc/self/fd/N``): kept open for the life of the
process, as the libraries are, so that no later file gets the same name."""


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$TEXTSELD_CACHE``, ``$XDG_CACHE_HOME/textseld`` or
    ``~/.cache/textseld``."""
    if os.environ.get("TEXTSELD_CACHE"):
        return Path(os.environ["TEXTSELD_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "textseld"


def _cpu_identity() -> str:
    """What ``-march=native`` depends on: the CPU's model name and feature flags."""
    keep = []
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.split(":")[0].strip() in ("model name", "flags", "Features", "CPU part"):
                    keep.append(line.strip())
                elif not line.strip() and keep:
                    break  # the first processor's block is enough
    except OSError:
        pass
    return platform.machine() + "\n" + "\n".join(keep)


def _refuse_unless_private(path: Path, st: os.stat_result, what: str, fix: str) -> None:
    """UnsafeKernelCache naming ``path`` and ``fix`` unless ``st`` (its lstat) is this user's own
    ``what`` ('folder' or 'file'), not a symbolic link and not writable by its group or others."""
    problem = None
    if stat.S_ISLNK(st.st_mode):
        problem = "is a symbolic link"
    elif not (stat.S_ISDIR(st.st_mode) if what == "folder" else stat.S_ISREG(st.st_mode)):
        problem = f"is not a {what}"
    elif st.st_uid != os.getuid():
        problem = f"belongs to another user (uid {st.st_uid}, this process runs as uid {os.getuid()})"
    elif st.st_mode & 0o022:
        problem = f"is writable by its group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    if problem:
        raise UnsafeKernelCache(f"the WPE kernel cache {what} {path} {problem}: a library there could run someone "
                                f"else's code, so it is not used; {fix}")


def _private_cache(cache: Path) -> Path:
    """``cache``, created private (0700) when missing; UnsafeKernelCache when it is not this user's alone."""
    try:
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.lstat(cache)
    except OSError as err:
        raise NativeBuildError(f"cannot write the kernel cache {cache} ({err}); "
                               "set TEXTSELD_CACHE to a writable folder") from err
    _refuse_unless_private(cache, st, "folder", f"run `chmod 700 {cache}` if it is your own folder, or set "
                           "TEXTSELD_CACHE to a private folder of yours")
    return cache


def compiler_and_library(cc: str | None = None, cache: Path | None = None,
                         flags: tuple[str, ...] = FLAGS) -> tuple[str, Path]:
    """(compiler, cached library path): the name hashes the source, the compiler and its version,
    the flags and the CPU. Raises NativeBuildError when there is no compiler."""
    cc = cc or os.environ.get("CC") or "cc"
    compiler = shutil.which(cc)
    if compiler is None:
        raise NativeBuildError(f"no C compiler {cc!r} on PATH")
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise NativeBuildError(f"{compiler} --version failed: {err}") from err
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), compiler.encode(), version.encode(), " ".join(flags).encode(),
                                     _cpu_identity().encode()])).hexdigest()[:16]
    return compiler, (cache or cache_dir()) / f"wpe_kernel-{key}.so"


def build(cc: str | None = None, cache: Path | None = None, flags: tuple[str, ...] = FLAGS,
          rebuild: bool = False) -> Path:
    """The compiled kernel for this machine: the cached library (unless ``rebuild``), else compiled
    now to a temporary file, its SHA-256 recorded (:data:`HASH_SUFFIX`), then renamed into place, so
    concurrent processes never load half a file. The cache folder must be private (see the module).

    Raises :class:`NativeBuildError` naming the compiler and its message when that fails."""
    compiler, target = compiler_and_library(cc, cache, flags)
    _private_cache(target.parent)
    if not rebuild and os.path.lexists(target):
        return target  # checked when it is loaded (Kernel)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".wpe_kernel-", suffix=".so", dir=target.parent)
        os.close(fd)
    except OSError as err:
        raise NativeBuildError(f"cannot write the kernel cache {target.parent} ({err}); "
                               "set TEXTSELD_CACHE to a writable folder") from err
    record = f"{tmp}{HASH_SUFFIX}"
    try:
        done = subprocess.run([compiler, *flags, "-o", tmp, str(SOURCE), "-lm"], capture_output=True, text=True,
                              timeout=300)
        if done.returncode != 0:
            raise NativeBuildError(f"{compiler} failed on {SOURCE} ({done.returncode}): {done.stderr.strip()[-600:]}")
        os.chmod(tmp, 0o700)  # the compiler may have created it anew under a group-writable umask
        with open(tmp, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        with open(record, "x", encoding="ascii") as f:  # mkstemp's folder is ours: a fresh name
            f.write(digest + "\n")
        os.chmod(record, 0o600)
        os.replace(record, f"{target}{HASH_SUFFIX}")
        os.replace(tmp, target)
    except (OSError, subprocess.SubprocessError) as err:
        raise NativeBuildError(f"{compiler} on {SOURCE}: {err}") from err
    finally:
        for leftover in (tmp, record):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return target


def _read_private(path: Path, fix: str) -> tuple[int, bytes]:
    """(open descriptor, content) of ``path`` after checking that it is this user's own regular file
    (not a link, not writable by others): the content read is the file the descriptor names."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        if os.path.islink(path):
            _refuse_unless_private(path, os.lstat(path), "file", fix)
        raise KernelMismatch(f"{path}: {err}") from err
    try:
        _refuse_unless_private(path, os.fstat(fd), "file", fix)
        with open(fd, "rb", closefd=False) as f:
            return fd, f.read()
    except BaseException:
        os.close(fd)
        raise


def _open_checked(path: Path) -> str:
    """The name to load ``path`` by, once its folder and the file are checked (private, see the
    module) and its content matches the SHA-256 the build recorded: ``/proc/self/fd/N`` of the
    descriptor that was read (the very bytes checked), or the path where there is no ``/proc``.

    Raises UnsafeKernelCache (not this user's alone) or KernelMismatch (no record, another hash)."""
    fix = f"delete {path} (it is rebuilt), or set TEXTSELD_CACHE to a private folder of yours"
    _refuse_unless_private(path.parent, os.lstat(path.parent), "folder",
                           f"run `chmod 700 {path.parent}` if it is your own folder, or set TEXTSELD_CACHE to a "
                           "private folder of yours")
    record = Path(f"{path}{HASH_SUFFIX}")
    rfd, recorded = _read_private(record, f"delete {record} and {path} (they are rebuilt)")
    os.close(rfd)
    fd, content = _read_private(path, fix)
    digest = hashlib.sha256(content).hexdigest()
    if digest != recorded.decode("ascii", errors="replace").strip():
        os.close(fd)
        raise KernelMismatch(f"{path} is not the library its build recorded in {record} "
                             f"({len(content)} bytes, SHA-256 {digest[:12]}...)")
    if not os.path.isdir("/proc/self/fd"):
        os.close(fd)
        return str(path)
    _LOADED_FDS.append(fd)
    return f"/proc/self/fd/{fd}"


_P = ctypes.c_void_p
_I = ctypes.c_int
_L = ctypes.c_int64


class Kernel:
    """The loaded library (:func:`kernel`): :meth:`products` and :meth:`solve` check their
    arguments and call C (ctypes releases the GIL, so threads run them at once)."""

    def __init__(self, path: Path) -> None:
        """Load the library at ``path`` once checked (:func:`_open_checked`): UnsafeKernelCache,
        KernelMismatch, or OSError / AttributeError from a library that does not load."""
        self.path = path
        name = _open_checked(path)
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            if name.startswith("/proc/self/fd/"):  # not loaded: its file need not stay open
                os.close(_LOADED_FDS.pop())
            raise
        self._products = lib.wpe_products
        self._products.argtypes = [_I, _I, _I, _I, _P, _L, _P, _P, _L, _P, _L, _P]
        self._products.restype = ctypes.c_int
        self._solve = lib.wpe_cholesky_solve
        self._solve.argtypes = [_I, _I, _I, _P, _L, _P, _L, _P]
        self._solve.restype = ctypes.c_int
        self.tile_cols = int(lib.wpe_tile_cols())
        self.tile_rows = int(lib.wpe_tile_rows())

    def computed(self, first_row: np.ndarray, rows: int) -> int:
        """Entries of one bin's products that :meth:`products` forms (whole row groups of whole tiles)."""
        groups = -(-(rows - np.minimum(first_row, rows)) // self.tile_rows)
        return int(np.minimum(groups * self.tile_rows, rows).sum()) * self.tile_cols

    def products(self, w: torch.Tensor, w_off: np.ndarray, y: torch.Tensor, out: torch.Tensor,
                 first_row: np.ndarray) -> None:
        """Per bin ``i``: ``out[i, r, c] = sum_s w[i, w_off[r] + s] * z_i[s, c]`` for column tiles
        ``j`` of ``tile_cols`` columns and rows ``r >= first_row[j]``, where ``z_i`` is the real view
        of the lag products ``conj(y[s]) y[s - (L-1-c')]`` of complex column ``c' = c // 2`` with
        ``L = ncols / 2`` lags; ``y (n, L-1 + T, 2)`` holds each bin's frames as [re, im] after
        ``L-1`` zeros. ``w (n, >= max(w_off) + T)``, ``out (n, rows, ncols)``: float64 on the CPU,
        each bin's block contiguous. Rows below ``first_row[j]`` of the lowest row group may be
        written too."""
        n, padded, two = y.shape
        rows, ncols = out.shape[1:]
        t = padded - ncols // 2 + 1
        if not (w.dtype == y.dtype == out.dtype == torch.float64 and w.device.type == y.device.type == out.device.type == "cpu"):
            raise TypeError("WPE kernel: float64 CPU tensors only")
        if two != 2 or ncols % self.tile_cols or t < 1 or w.shape[0] != n or out.shape[0] != n:
            raise ValueError(f"WPE kernel: shapes w {tuple(w.shape)}, y {tuple(y.shape)}, out {tuple(out.shape)}")
        tiles = ncols // self.tile_cols
        if w_off.shape != (rows,) or first_row.shape != (tiles,) or int(w_off.max()) + t > w.shape[1]:
            raise ValueError(f"WPE kernel: {rows} rows, {tiles} tiles, {w.shape[1]} weights need w_off {w_off.shape}, "
                             f"first_row {first_row.shape}, w_off + T within the weights")
        if w.stride(1) != 1 or not y[0].is_contiguous() or not out[0].is_contiguous():
            raise ValueError("WPE kernel: each bin's weights, frames and products must be contiguous")
        w_off = np.ascontiguousarray(w_off, dtype=np.int64)
        first_row = np.ascontiguousarray(first_row, dtype=np.int32)
        if self._products(n, rows, ncols, t, w.data_ptr(), w.stride(0), w_off.ctypes.data, y.data_ptr(), y.stride(0),
                          out.data_ptr(), out.stride(0), first_row.ctypes.data):
            raise MemoryError(f"WPE kernel: no memory for a {t} x {self.tile_cols} buffer")

    def solve(self, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
        """``b[i] <- a[i]^-1 b[i]`` in place for Hermitian positive definite ``a (N, n, n)`` given by
        its upper triangle in column-major layout (``a.stride(-2) == 1``, the lower triangle is not
        read, ``a`` is not written) and ``b (N, n)``, complex128 on the CPU: Cholesky, LANES bins
        at a time. Returns ``info`` per system: 0, or ``j + 1`` where the ``j``-th pivot is not
        positive (``b[i]`` then unchanged), as LAPACK's ``zposv``."""
        nsys, n = b.shape
        if not (a.dtype == b.dtype == torch.complex128 and a.device.type == b.device.type == "cpu"):
            raise TypeError("WPE kernel: complex128 CPU tensors only")
        if a.shape != (nsys, n, n) or a.stride(-2) != 1 or a.stride(-1) < n or b.stride(-1) != 1:
            raise ValueError(f"WPE kernel: a {tuple(a.shape)} strides {a.stride()} must be column-major "
                             f"{n} x {n} matrices for b {tuple(b.shape)} strides {b.stride()}")
        info = np.zeros(nsys, dtype=np.int32)
        if self._solve(nsys, n, a.stride(-1), a.data_ptr(), 2 * a.stride(0), b.data_ptr(), 2 * b.stride(0),
                       info.ctypes.data):
            raise MemoryError(f"WPE kernel: no memory for the factors of {n} x {n} systems")
        return info


@functools.lru_cache(maxsize=1)
def kernel() -> Kernel | None:
    """The kernel for this machine (compiled and cached on first use; a cached library that does
    not match its recorded hash or does not load is rebuilt once), or None (one warning saying why;
    ``TEXTSELD_NATIVE=0``: None without one)."""
    if os.environ.get("TEXTSELD_NATIVE", "1") == "0":
        return None
    try:
        try:
            loaded = Kernel(build())
        except UnsafeKernelCache:
            raise
        except (KernelMismatch, OSError, AttributeError):  # truncated, replaced, or does not load: once more
            loaded = Kernel(build(rebuild=True))
    except (NativeBuildError, OSError, AttributeError) as err:
        warnings.warn(f"WPE runs torch's products instead of its compiled kernel (slower): {err}",
                      stacklevel=2)
        return None
    if loaded.tile_cols < MIN_TILE_COLS:
        warnings.warn(f"WPE runs torch's products: this CPU's vectors hold {loaded.tile_cols // 2} doubles, "
                      f"where the compiled kernel ({loaded.path}) is slower", stacklevel=2)
        return None
    return loaded
