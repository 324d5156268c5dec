"""The compiled WPE kernel (seld/features/wpe_kernel.c): its products and solves against torch /
numpy, its build cache, and the fallback to torch where it cannot be built."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
import pytest
import torch

from seld.features import native
from seld.features import wpe as wpe_module
from seld.features.params import WpeConfig
from tests.features.kernel import require_kernel


def needed(k: int, d: int, lz: int) -> torch.Tensor:
    """The entries of the (K+1, 2L) products that WPE reads: R's triangle and P's lags below L."""
    mask = torch.zeros(k + 1, 2 * lz, dtype=torch.bool)
    for rho in range(k):
        mask[rho, 2 * (lz - 1 - rho):] = True
    mask[k, : max(0, 2 * (lz - d))] = True
    return mask


def torch_products(y: torch.Tensor, lam: torch.Tensor, k: int, d: int) -> torch.Tensor:
    """The products as the torch path forms them: weight rows @ stored lag products."""
    n, t = y.shape
    lz = wpe_module.stored_lags(k)
    lam_pad = torch.nn.functional.pad(lam, (0, d + k))
    past = torch.nn.functional.pad(y, (lz - 1, 0)).unfold(-1, lz, 1)
    z = torch.view_as_real(y.conj().unsqueeze(-1) * past).reshape(n, t, 2 * lz)
    weights = torch.empty(n, k + 1, t, dtype=torch.float64)
    wpe_module._weights(lam_pad, t, d, k, weights)
    return weights @ z


def kernel_products(kern: native.Kernel, y: torch.Tensor, lam: torch.Tensor, k: int, d: int) -> torch.Tensor:
    n, t = y.shape
    lz = wpe_module.stored_lags(k)
    out = torch.full((n + 1, k + 1, 2 * lz), 7.0, dtype=torch.float64)  # one bin more: must stay untouched
    kern.products(torch.nn.functional.pad(lam, (0, d + k)), wpe_module._weight_offsets(d, k),
                  torch.view_as_real(torch.nn.functional.pad(y, (lz - 1, 0))), out[:n],
                  wpe_module._first_rows(d, k, lz, kern.tile_cols))
    assert torch.equal(out[n], torch.full_like(out[n], 7.0))
    return out[:n]


@pytest.fixture(scope="module")
def kern() -> native.Kernel:
    return require_kernel()


@pytest.mark.parametrize("k, d, t", [(60, 5, 251), (7, 2, 40), (3, 1, 9), (4, 6, 12), (20, 3, 5), (9, 2, 33)])
def test_kernel_products_equal_torch_on_what_wpe_reads(kern: native.Kernel, k: int, d: int, t: int) -> None:
    # every entry WPE reads (R's triangle, P's lags) equals the BLAS product of the whole
    # rectangle; clips shorter than the lags (t < L) and K + 1 below a register tile included
    rng = np.random.default_rng(k * 100 + t)
    n = 5
    y = torch.from_numpy(rng.standard_normal((n, t)) + 1j * rng.standard_normal((n, t)))
    lam = torch.from_numpy(rng.uniform(0.1, 3.0, (n, t)))
    ref = torch_products(y, lam, k, d)
    got = kernel_products(kern, y, lam, k, d)
    mask = needed(k, d, wpe_module.stored_lags(k))
    scale = float(ref.abs().max())
    np.testing.assert_allclose(got[:, mask].numpy(), ref[:, mask].numpy(), rtol=0, atol=1e-14 * scale)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 instruction sets")
@pytest.mark.parametrize("flags, tile_cols", [(("-O2", "-fPIC", "-shared"), 4),
                                               (("-O3", "-mavx2", "-mfma", "-fPIC", "-shared"), 8)])
def test_kernel_builds_for_narrower_vectors_give_the_same_products(tmp_path, flags, tile_cols) -> None:
    # other CPUs get other vector widths (SSE2: 2 doubles, AVX2: 4): same numbers
    require_kernel()
    kern = native.Kernel(native.build(cache=tmp_path, flags=flags))
    assert kern.tile_cols == tile_cols
    rng = np.random.default_rng(1)
    k, d, t = 13, 3, 50
    y = torch.from_numpy(rng.standard_normal((3, t)) + 1j * rng.standard_normal((3, t)))
    lam = torch.from_numpy(rng.uniform(0.1, 3.0, (3, t)))
    mask = needed(k, d, wpe_module.stored_lags(k))
    ref = torch_products(y, lam, k, d)[:, mask]
    np.testing.assert_allclose(kernel_products(kern, y, lam, k, d)[:, mask].numpy(), ref.numpy(),
                               rtol=0, atol=1e-14 * float(ref.abs().max()))


def test_first_rows_cover_exactly_the_rows_read_per_tile() -> None:
    # tile j's rows from first_row[j] to the last include every row read in the tile, and
    # first_row[j] itself is read there
    for k, d, cols in [(60, 5, 16), (60, 5, 8), (7, 2, 16), (4, 6, 8)]:
        lz = wpe_module.stored_lags(k)
        mask = needed(k, d, lz)
        first = wpe_module._first_rows(d, k, lz, cols)
        for j, f in enumerate(first):
            rows = mask[:, j * cols : (j + 1) * cols].any(1).nonzero().flatten().tolist()
            assert (not rows and f == k + 1) or (min(rows) == f), (k, d, cols, j)


def test_wpe_with_the_kernel_equals_wpe_with_torch_products(rooms_small: torch.Tensor, kern, monkeypatch) -> None:
    cfg = WpeConfig(taps=20, iterations=2)
    with_kernel = wpe_module.wpe(rooms_small, cfg)
    monkeypatch.setattr(native, "kernel", lambda: None)
    without = wpe_module.wpe(rooms_small, cfg)
    np.testing.assert_allclose(with_kernel.numpy(), without.numpy(), rtol=0, atol=1e-9 * float(without.abs().max()))


@pytest.fixture(scope="module")
def rooms_small() -> torch.Tensor:
    """Mid spectra (2, 513, 101) of two simulated 2 s clips."""
    from seld.features.stft import stft
    from seld.sim.scenes import render_single_source

    specs = []
    for i, (az, rt) in enumerate([(20.0, 0.4), (-70.0, 0.8)]):
        audio = render_single_source(az, 2.0, rt60=rt, seed=i, class_idx=1 + i)[:, :48000]
        specs.append(stft(torch.from_numpy(0.5 * (audio[0].astype(np.float64) + audio[1])), 1024, 480, 960))
    return torch.stack(specs)


@pytest.mark.parametrize("n, count", [(5, 3), (60, 11)])
def test_kernel_solve_equals_numpy_and_fails_like_zposv(kern: native.Kernel, n: int, count: int) -> None:
    # Cholesky of several systems at once (one per SIMD lane; counts not a multiple of the lanes),
    # column-major upper triangles with a leading dimension above the order (as the view of the
    # products has), the lower triangle holding garbage; condition numbers up to ~1e7 as WPE's R;
    # a negative definite and a NaN system fail (info > 0) and keep their right-hand sides
    rng = np.random.default_rng(n)
    lda = n + 3
    x = rng.standard_normal((count, n, 2 * n)) + 1j * rng.standard_normal((count, n, 2 * n))
    x[:, :, :2] *= 3e3  # a few strong directions: ill-conditioned
    mats = x @ x.conj().transpose(0, 2, 1)
    mats[1] = -mats[1]
    mats[2, 0, 0] = np.nan
    store = torch.from_numpy(rng.standard_normal((count, n, lda)) * (1 + 1j) * 1e3)  # [i, k, j] = A[j, k]
    upper = torch.from_numpy(np.triu(mats)).transpose(1, 2)
    keep = torch.ones(n, n, dtype=torch.bool).tril()  # [k, j] with j <= k
    for i in range(count):
        store[i, :, :n][keep] = upper[i][keep]
    rhs = rng.standard_normal((count, n)) + 1j * rng.standard_normal((count, n))
    b = torch.from_numpy(rhs.copy())
    info = kern.solve(store[:, :, :n].mT, b)
    assert info[0] == 0 and info[1] == 1 and info[2] > 0 and not info[3:].any()
    np.testing.assert_array_equal(b[1:3].numpy(), rhs[1:3])
    for i in [0, *range(3, count)]:
        ref = np.linalg.solve(mats[i], rhs[i])
        assert np.linalg.cond(mats[i]) > 1e5
        np.testing.assert_allclose(b[i].numpy(), ref, rtol=0, atol=1e-8 * np.abs(ref).max())


def test_kernel_checks_its_arguments(kern: native.Kernel) -> None:
    k, d, t, n = 4, 2, 10, 2
    lz = wpe_module.stored_lags(k)
    lam_pad = torch.ones(n, t + d + k, dtype=torch.float64)
    yp = torch.zeros(n, lz - 1 + t, 2, dtype=torch.float64)
    out = torch.empty(n, k + 1, 2 * lz, dtype=torch.float64)
    offsets, first = wpe_module._weight_offsets(d, k), wpe_module._first_rows(d, k, lz, kern.tile_cols)
    with pytest.raises(TypeError, match="float64"):
        kern.products(lam_pad.float(), offsets, yp, out, first)
    with pytest.raises(ValueError, match="w_off"):
        kern.products(lam_pad[:, : t + 2], offsets, yp, out, first)  # rows would read past the weights
    with pytest.raises(ValueError, match="shapes"):
        kern.products(lam_pad[:1], offsets, yp, out, first)
    with pytest.raises(ValueError, match="contiguous"):
        kern.products(lam_pad, offsets, yp, out.transpose(1, 2).contiguous().transpose(1, 2), first)
    mats = torch.eye(3, dtype=torch.complex128).repeat(2, 1, 1)
    with pytest.raises(ValueError, match="column-major"):
        kern.solve(mats[:, :, :2], torch.ones(2, 3, dtype=torch.complex128))
    with pytest.raises(TypeError, match="complex128"):
        kern.solve(mats.to(torch.complex64), torch.ones(2, 3, dtype=torch.complex64))


def test_build_is_cached_per_source_and_compiler(tmp_path) -> None:
    require_kernel()
    first = native.build(cache=tmp_path)
    stamp = first.stat().st_mtime_ns
    assert native.build(cache=tmp_path) == first and first.stat().st_mtime_ns == stamp  # no second compile
    other = native.build(cache=tmp_path, flags=("-O2", "-fPIC", "-shared"))
    names = [first.name, other.name]
    assert other != first and sorted(p.name for p in tmp_path.iterdir()) == sorted(names + [n + ".sha256" for n in names])


def test_build_errors_name_the_compiler_and_the_problem(tmp_path) -> None:
    with pytest.raises(native.NativeBuildError, match="no C compiler 'no-such-cc'"):
        native.build(cc="no-such-cc", cache=tmp_path)
    require_kernel()
    with pytest.raises(native.NativeBuildError, match=r"failed on .*wpe_kernel\.c.*no-such-flag"):
        native.build(cache=tmp_path, flags=("-fno-such-flag", "-shared"))
    assert list(tmp_path.iterdir()) == []  # no half-written library left behind
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(native.NativeBuildError, match="cannot write the kernel cache .*TEXTSELD_CACHE"):
        native.build(cache=blocked / "cache")


def test_without_a_compiler_wpe_warns_once_and_runs_torch(monkeypatch, tmp_path, rooms_small) -> None:
    monkeypatch.setenv("CC", "no-such-cc")
    monkeypatch.setenv("TEXTSELD_CACHE", str(tmp_path))
    native.kernel.cache_clear()
    try:
        with pytest.warns(UserWarning, match="torch's products.*no C compiler"):
            assert native.kernel() is None
        cfg = WpeConfig(taps=8, iterations=1)
        out = wpe_module.wpe(rooms_small[:1], cfg)  # cached None: no second warning, torch path
        ref = wpe_module.wpe_reference(rooms_small[0].numpy(), cfg)
        assert float(np.abs(out[0].numpy() - ref).max() / np.abs(ref).max()) < 1e-6
        monkeypatch.setenv("TEXTSELD_NATIVE", "0")
        native.kernel.cache_clear()
        assert native.kernel() is None
    finally:
        native.kernel.cache_clear()


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TEXTSELD_CACHE", str(tmp_path / "a"))
    assert native.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("TEXTSELD_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert native.cache_dir() == tmp_path / "x" / "textseld"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert native.cache_dir() == type(tmp_path)(os.path.expanduser("~")) / ".cache" / "textseld"


# --- nothing loads that this user did not build (issue 31) ---------------------------------------

_LOAD_IN_A_CHILD = """
import warnings
from seld.features import native
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    k = native.kernel()
print(k is not None)
print(len(caught), *[str(w.message) for w in caught])
"""


def _kernel_in_a_child(cache) -> tuple[int, list[str], str]:
    """(exit status, stdout lines, stderr) of native.kernel() in a fresh process using ``cache``:
    a library that crashes on loading (SIGBUS) ends the child, not the test run."""
    import subprocess
    import sys

    from tests.scripts import child_pythonpath

    env = dict(os.environ, TEXTSELD_CACHE=str(cache), PYTHONPATH=child_pythonpath())
    env.pop("TEXTSELD_NATIVE", None)
    done = subprocess.run([sys.executable, "-c", _LOAD_IN_A_CHILD], env=env, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout.splitlines(), done.stderr


@pytest.mark.parametrize("record", ["kept", "absent"])
def test_a_truncated_cached_kernel_is_rebuilt_never_loaded(tmp_path, record) -> None:
    # the repro: the first 5,000 bytes of the library under its own name (a full disk, an
    # interrupted copy); loading it ended the process with SIGBUS (exit 135). "absent": copied
    # alone into an empty folder, as a cache of the version before the hash record looks
    require_kernel()
    import hashlib

    lib = native.build(cache=tmp_path)
    whole = lib.read_bytes()
    lib.write_bytes(whole[:5000])
    if record == "absent":
        Path(f"{lib}.sha256").unlink()
    code, out, err = _kernel_in_a_child(tmp_path)
    assert code == 0, err
    assert out == ["True", "0"]  # the kernel, and no warning: rebuilt silently
    rebuilt = lib.read_bytes()
    assert len(rebuilt) > 5000 and Path(f"{lib}.sha256").read_text().strip() == hashlib.sha256(rebuilt).hexdigest()


def test_a_library_that_does_not_load_is_rebuilt_once_then_torch_runs(tmp_path, monkeypatch) -> None:
    # a "compiler" whose output is no library at all: built (hash recorded), fails to load, rebuilt
    # once, fails again: torch's products with one warning, and no third compile
    log = tmp_path / "calls"
    fake = tmp_path / "fakecc"
    fake.write_text("#!/bin/sh\n"
                    'if [ "$1" = --version ]; then echo fakecc 1.0; exit 0; fi\n'
                    f'echo compile >> "{log}"\n'
                    'while [ "$#" -gt 0 ]; do if [ "$1" = -o ]; then printf "not a library" > "$2"; fi; shift; done\n')
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    monkeypatch.setenv("TEXTSELD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TEXTSELD_NATIVE", raising=False)
    native.kernel.cache_clear()
    try:
        with pytest.warns(UserWarning, match="torch's products") as caught:
            assert native.kernel() is None
        assert len(caught) == 1
        assert log.read_text().split() == ["compile", "compile"]
    finally:
        native.kernel.cache_clear()


_PLANTED = r"""
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(MARK, "w");
    if (f) { fputs("planted code ran\n", f); fclose(f); }
}
"""


def _plant(tmp_path, cache, mark) -> Path:
    """A library whose constructor writes ``mark``, under the kernel's name in ``cache``, with a
    matching hash record (whoever can write the folder can write both)."""
    import hashlib
    import subprocess

    src = tmp_path / "planted.c"
    src.write_text(_PLANTED)
    cache.mkdir(mode=0o700, exist_ok=True)
    lib = native.compiler_and_library(cache=cache)[1]
    built = tmp_path / f"planted-{mark.name}.so"
    subprocess.run([os.environ.get("CC") or "cc", "-shared", "-fPIC", f'-DMARK="{mark}"', "-o", str(built), str(src)],
                   check=True, capture_output=True)
    built.chmod(0o700)
    lib.write_bytes(built.read_bytes())
    lib.chmod(0o700)
    Path(f"{lib}.sha256").write_text(hashlib.sha256(built.read_bytes()).hexdigest() + "\n")
    return lib


def _as_root_only() -> None:
    if os.getuid() != 0:
        pytest.skip("giving a file to another user needs root")


@pytest.mark.parametrize("how, problem", [
    ("group-writable folder", "folder .* is writable by its group or others"),
    ("other-writable library", "file .* is writable by its group or others"),
    ("library is a link", "file .* is a symbolic link"),
    ("folder is a link", "folder .* is a symbolic link"),
    ("library of another user", "file .* belongs to another user"),
    ("folder of another user", "folder .* belongs to another user"),
])
def test_a_planted_library_is_never_loaded(tmp_path, monkeypatch, how, problem) -> None:
    require_kernel()
    cache, mark = tmp_path / "cache", tmp_path / "ran"
    lib = _plant(tmp_path, cache, mark)
    used = cache
    if how == "group-writable folder":
        cache.chmod(0o775)
    elif how == "other-writable library":
        lib.chmod(0o707)
    elif how == "library is a link":
        target = tmp_path / "elsewhere.so"
        lib.rename(target)
        lib.symlink_to(target)
    elif how == "folder is a link":
        used = tmp_path / "link"
        used.symlink_to(cache)
    else:
        _as_root_only()
        os.chown(lib if how.startswith("library") else cache, 65534, 65534)
    monkeypatch.setenv("TEXTSELD_CACHE", str(used))
    monkeypatch.delenv("TEXTSELD_NATIVE", raising=False)
    native.kernel.cache_clear()
    try:
        with pytest.warns(UserWarning, match=problem) as caught:
            assert native.kernel() is None
        assert len(caught) == 1 and "TEXTSELD_CACHE" in str(caught[0].message)
    finally:
        native.kernel.cache_clear()
    assert not mark.exists()  # its code never ran
    if how == "group-writable folder":
        assert "chmod 700" in str(caught[0].message)
        import ctypes

        ctypes.CDLL(str(lib))  # the check can fail: loading the plant does run its code
        assert mark.read_text() == "planted code ran\n"


def test_the_cache_folder_is_created_private(tmp_path) -> None:
    require_kernel()
    lib = native.build(cache=tmp_path / "new" / "cache")
    assert (tmp_path / "new" / "cache").stat().st_mode & 0o777 == 0o700
    assert lib.stat().st_mode & 0o077 == 0 and Path(f"{lib}.sha256").stat().st_mode & 0o077 == 0
