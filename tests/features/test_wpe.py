"""Batched torch WPE against nara_wpe, and the direct / reverberant channels built on it."""
from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from seld.features.config import FeatureConfig, WpeConfig
from seld.features.extract import compute_batch_features, compute_clip_features
from seld.features.stft import stft
from seld.features.wpe import wpe, wpe_reference
from seld.sim.scenes import render_single_source

# Tolerance of the parity with nara_wpe (float64): both solve the same normal equations with
# backward-stable factorisations (Cholesky here, LU there), so they differ by about
# cond(R) * 1e-16; cond(R) reaches ~1e6-1e7 on these clips (measured differences: 1e-11 to 4e-9
# of the clip's largest STFT value). 1e-6 leaves room for other BLAS builds and thread counts
# while still catching any algorithmic slip (a wrong lag, eps or delay is >= 1e-3).
PARITY = 1e-6


def mid_spectrum(audio: np.ndarray) -> torch.Tensor:
    """Feature STFT (960-sample window, 1024 FFT, hop 480) of W = (L + R) / 2: (F, T)."""
    w = torch.from_numpy(0.5 * (audio[0].astype(np.float64) + audio[1]))
    return stft(w, 1024, 480, 960)


@pytest.fixture(scope="module")
def room_audio() -> np.ndarray:
    """Stereo audio (3, 2, 120000) of 5 s simulated clips with RT60 0.2, 0.5 and 0.9 s."""
    return np.stack([render_single_source(az, 2.0, rt60=rt, seed=i, class_idx=2 + i)
                     for i, (az, rt) in enumerate([(30.0, 0.2), (-60.0, 0.5), (80.0, 0.9)])])


@pytest.fixture(scope="module")
def rooms(room_audio: np.ndarray) -> torch.Tensor:
    """Mid spectra (3, 513, 251) of the clips of ``room_audio``."""
    return torch.stack([mid_spectrum(c) for c in room_audio])


def relative_error(ours: torch.Tensor, ref: np.ndarray) -> float:
    return float(np.abs(ours.numpy() - ref).max() / np.abs(ref).max())


def test_batched_wpe_equals_nara_wpe_on_simulated_rooms(rooms: torch.Tensor) -> None:
    cfg = WpeConfig()  # taps 60, delay 5, 5 iterations: the authors' setting
    ours = wpe(rooms, cfg)
    assert ours.shape == rooms.shape and ours.dtype == torch.complex128
    for i in range(rooms.shape[0]):
        ref = wpe_reference(rooms[i].numpy(), cfg)
        assert relative_error(ours[i], ref) < PARITY, i
        # and WPE did something: the direct part differs from the input by far more than that
        assert relative_error(rooms[i], ref) > 1e-3


@pytest.mark.parametrize("options", [
    {"psd_context": 2}, {"statistics_mode": "valid"}, {"delay": 2, "taps": 7},
    {"delay": 1, "taps": 3},  # one lag of P outside the products
    {"delay": 6, "taps": 4},  # delay > taps: every lag of P outside the products
])
def test_wpe_options_equal_nara_wpe(rooms: torch.Tensor, options: dict) -> None:
    cfg = WpeConfig(**{"taps": 20, "iterations": 2, **options})
    ours = wpe(rooms[1:2], cfg)[0]
    assert relative_error(ours, wpe_reference(rooms[1].numpy(), cfg)) < PARITY


@pytest.mark.parametrize("threads", [1, 2])
def test_clip_result_does_not_depend_on_the_batch(rooms: torch.Tensor, threads: int) -> None:
    # With one thread the products of a clip are the same whatever else is in the batch; with more,
    # a lone clip's products are split over the threads and round differently (measured 2.6e-11 of
    # the clip's largest value with 2 threads, rounding amplified by cond(R) ~ 1e6), so the bound is
    # 1e-9 there: still 1000x below the parity with nara_wpe.
    cfg = WpeConfig(taps=20, iterations=2)
    batch = torch.cat([rooms[:2], torch.zeros_like(rooms[:1])])  # a silent clip in the batch
    torch.set_num_threads(threads)  # tests/conftest.py restores the count after the test
    out = wpe(batch, cfg)
    alone = [wpe(rooms[i : i + 1], cfg)[0] for i in range(2)]
    assert torch.all(out[2] == 0)  # no direct path in silence (nara_wpe's lstsq gives 0 too)
    np.testing.assert_allclose(wpe_reference(np.zeros((513, 251), complex), cfg), 0.0)
    for i in range(2):
        if threads == 1:
            assert torch.equal(out[i], alone[i]), i
        np.testing.assert_allclose(out[i].numpy(), alone[i].numpy(), rtol=0, atol=1e-9 * float(alone[i].abs().max()))


def test_wpe_removes_a_known_late_echo() -> None:
    # y = x + 0.5 x(t - 300 ms): an echo 15 hops late, beyond the prediction delay; WPE should
    # bring the power of y (1.25 x that of x) back close to the dry level.
    rng = np.random.default_rng(1)
    x = rng.standard_normal(72000)
    y = x.copy()
    y[7200:] += 0.5 * x[:-7200]
    spec, dry = (stft(torch.from_numpy(v), 1024, 480, 960) for v in (y, x))
    out = wpe(spec[None], WpeConfig(taps=40, delay=5, iterations=3))[0]
    late = slice(40, None)  # frames where the echo is present

    def power(s: torch.Tensor) -> float:
        return float((s[:, late].abs() ** 2).mean())

    assert power(spec) / power(dry) > 1.2
    assert power(out) / power(dry) < 1.12


def test_direct_and_reverberant_logmels_are_the_wpe_stft_domain_split() -> None:
    # Reference formula, from librosa and nara_wpe: D = WPE(STFT(w)) on every frame of the clip
    # (no resynthesis), direct = dB mel |D|^2, with wpe.reverb: stft_domain reverberant =
    # dB mel |STFT(w) - D|^2 and DRR = dB mel(|D|^2 / (|Rev|^2 + 1e-8)). The default time-domain
    # residual is held to the authors' formula in test_reverb.py.
    audio = render_single_source(-20.0, 3.0, rt60=0.6, seed=4, class_idx=5, num_samples=48000)
    cfg = FeatureConfig(peak_normalize=False)
    cfg.wpe.iterations = 3
    cfg.wpe.reverb = "stft_domain"
    feats = compute_clip_features(audio, ["direct_logmel", "reverb_logmel", "drr_logmel", "logmel_mid"], cfg)
    w = 0.5 * (audio[0].astype(np.float64) + audio[1])
    spec = librosa.stft(w, n_fft=1024, hop_length=480, win_length=960, window="hann", center=True, pad_mode="constant")
    direct = wpe_reference(spec, cfg.wpe)
    basis = librosa.filters.mel(sr=24000, n_fft=1024, n_mels=64, fmin=0.0, fmax=12000.0, htk=False, norm="slaney")

    def db_mel(power: np.ndarray) -> np.ndarray:
        return librosa.power_to_db(basis @ power, ref=1.0, amin=1e-10, top_db=None).T[:100]

    direct_psd, reverb_psd = np.abs(direct) ** 2, np.abs(spec - direct) ** 2
    drr = np.maximum(direct_psd, 1e-100) / (np.maximum(reverb_psd, 1e-100) + 1e-8)
    for name, ref in (("direct_logmel", db_mel(direct_psd)), ("reverb_logmel", db_mel(reverb_psd)),
                      ("logmel_mid", db_mel(np.abs(spec) ** 2)), ("drr_logmel", db_mel(drr))):
        assert feats[name].shape == (100, 64)
        np.testing.assert_allclose(feats[name], ref, atol=1e-3, rtol=0, err_msg=name)


def _reverberant_share(rt60: float) -> float:
    audio = render_single_source(30.0, 2.5, rt60=rt60, seed=1, class_idx=2, num_samples=72000)
    cfg = FeatureConfig()
    cfg.wpe.iterations = 3
    f = compute_clip_features(audio, ["direct_logmel", "reverb_logmel"], cfg)
    direct, reverb = 10 ** (f["direct_logmel"] / 10), 10 ** (f["reverb_logmel"] / 10)
    return float(reverb.sum() / (direct.sum() + reverb.sum()))


def test_reverberant_share_grows_with_rt60() -> None:
    dry, wet = _reverberant_share(0.2), _reverberant_share(0.9)
    assert wet > 3 * dry
    assert wet > 0.05


@pytest.mark.parametrize("threads", [1, 2])
def test_batched_features_with_wpe_equal_clip_by_clip(threads: int) -> None:
    # one thread: identical; two: a lone clip's WPE products are split over both threads, and
    # direct_logmel moves by float32 rounding (measured 1e-6 dB), far below 1e-4 dB
    audio = np.stack([render_single_source(az, 2.0, rt60=0.5, seed=7, class_idx=1) for az in (10.0, 0.0, -50.0)])
    audio[1] = 0.0  # silent clip
    cfg = FeatureConfig()
    cfg.wpe.iterations = 2
    names = ["direct_logmel", "reverb_logmel", "drr_logmel", "logmel_l"]
    torch.set_num_threads(threads)  # tests/conftest.py restores the count after the test
    batch = compute_batch_features(audio, names, cfg)
    singles = [compute_clip_features(audio[i], names, cfg) for i in range(3)]
    for i, single in enumerate(singles):
        for name in names:
            if threads == 1:
                np.testing.assert_array_equal(batch[name][i], single[name], err_msg=f"{name} clip {i}")
            np.testing.assert_allclose(batch[name][i], single[name], rtol=0, atol=1e-4, err_msg=f"{name} clip {i}")


def test_threaded_batch_features_run_wpe_once_for_the_batch_and_equal_one_thread(monkeypatch) -> None:
    # on a CPU with 2+ threads the batch's WPE is one call (clips spread over the threads) while
    # the rest of the front end goes clip by clip: the numbers are those of one thread
    from seld.features import extract

    audio = np.stack([render_single_source(az, 2.0, rt60=0.4, seed=3, class_idx=4) for az in (20.0, -35.0, 70.0)])
    cfg = FeatureConfig()
    cfg.wpe.iterations, cfg.wpe.taps = 2, 20
    names = ["direct_logmel", "reverb_logmel", "ivy"]
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = compute_batch_features(audio, names, cfg)
        calls = []
        real = wpe

        def counted(spec, wcfg, *a, **k):
            calls.append(spec.shape[0])
            return real(spec, wcfg, *a, **k)

        monkeypatch.setattr("seld.features.wpe.wpe", counted)
        monkeypatch.setattr("seld.features.channels.wpe", counted)
        torch.set_num_threads(2)
        two = compute_batch_features(audio, names, cfg)
    finally:
        torch.set_num_threads(saved)
    assert extract.CPU_CLIPS_PER_PASS < 3 and calls == [3]  # one WPE call for the 3 clips
    for name in names:
        np.testing.assert_array_equal(two[name], one[name], err_msg=name)


@pytest.mark.gpu
def test_cuda_wpe_and_features_equal_cpu(rooms: torch.Tensor, room_audio: np.ndarray) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cfg = WpeConfig()
    gpu = wpe(rooms.cuda(), cfg).cpu()
    for i in range(rooms.shape[0]):
        assert relative_error(gpu[i], wpe_reference(rooms[i].numpy(), cfg)) < PARITY, i
    # Features of real-length room clips: on the CPU, nara_wpe's direct part instead of ours moves
    # direct_logmel by at most 1.5e-5 dB on these clips, so 1e-3 dB is a wide margin for rounding.
    # (White noise of 1 s is no test input here: 51 frames < 60 taps leave WPE's normal equations
    # singular, and two CPU runs that only group the products differently already differ by 23 dB.)
    audio = room_audio[:2]
    fcfg = FeatureConfig(device="cuda")
    on_gpu = compute_batch_features(audio, fcfg.channels, fcfg)
    on_cpu = compute_batch_features(audio, fcfg.channels, fcfg, device="cpu")
    for name in fcfg.channels:
        np.testing.assert_allclose(on_gpu[name], on_cpu[name], atol=1e-3, err_msg=name)


@pytest.mark.parametrize("rows", [5, 513])
def test_row_chunks_do_not_change_wpe(rooms: torch.Tensor, rows: int) -> None:
    # the CPU forms and solves 64 (clip, bin) rows at a time, a GPU all of a chunk (513 here: that
    # path's layout, run on the CPU): each row's normal equations are its own, so chunking only
    # changes which batched kernels run (measured: identical on this CPU's MKL)
    from seld.features import wpe as wpe_module

    cfg = WpeConfig(taps=20, iterations=2)
    y = rooms[1:2]
    buffer = torch.empty(y.numel() * wpe_module.stored_lags(cfg.taps), dtype=y.dtype)
    default = wpe_module._wpe_chunk(y, cfg, buffer)
    chunked = wpe_module._wpe_chunk(y, cfg, buffer, rows=rows)
    np.testing.assert_allclose(chunked.numpy(), default.numpy(), rtol=0, atol=1e-10 * float(default.abs().max()))


def test_weight_rows_are_hankel_rows_in_descending_order_then_lam() -> None:
    # row rho < K = lam[s + d + K-1-rho] (zero past the clip end), row K = lam[s]; the compiled
    # kernel's row offsets point at the same weights
    from seld.features import wpe as wpe_module

    t, d, k = 9, 2, 4
    lam = torch.arange(1.0, 3 * t + 1, dtype=torch.float64).reshape(3, t)
    lam_pad = torch.nn.functional.pad(lam, (0, d + k))
    expected = torch.zeros(3, k + 1, t, dtype=torch.float64)
    expected[:, k] = lam
    for rho in range(k):
        for s_ in range(t):
            q = s_ + d + k - 1 - rho
            expected[:, rho, s_] = lam[:, q] if q < t else 0.0
    out = torch.full((3, k + 1, t), float("nan"), dtype=torch.float64)
    wpe_module._weights(lam_pad, t, d, k, out)
    assert torch.equal(out, expected)
    offsets = wpe_module._weight_offsets(d, k)
    assert torch.equal(torch.stack([lam_pad[:, o : o + t] for o in offsets], 1), expected)


def test_normal_equations_are_a_view_of_the_product() -> None:
    # one iteration by hand: R = sum_t lam ytil ytil^H and P from the definition; the product of
    # the weight rows and the lag products (L = stored_lags(K) lags) holds conj(J R J)'s lower
    # triangle at the strided view the solvers read (leading dimension L-1 >= K), and J p's
    # entries from lags below L in row K (conjugated there into the right-hand side J conj(p))
    from seld.features import wpe as wpe_module

    rng = np.random.default_rng(0)
    t, d, k = 30, 2, 5
    lz = wpe_module.stored_lags(k)
    assert lz >= k + 1 and lz % 8 == 0 and wpe_module.stored_lags(60) == 64 and wpe_module.stored_lags(63) == 64
    y = rng.standard_normal(t) + 1j * rng.standard_normal(t)
    lam = rng.uniform(0.5, 2.0, t)
    ytil = np.stack([np.concatenate([np.zeros(d + j), y[: t - d - j]]) for j in range(k)], axis=1)  # (T, K)
    r_ref = (ytil.T * lam) @ ytil.conj()
    p_ref = (ytil.T * lam) @ y.conj()
    yt = torch.from_numpy(y)[None]
    past = torch.nn.functional.pad(yt, (lz - 1, 0)).unfold(-1, lz, 1)
    z = torch.view_as_real(yt.conj().unsqueeze(-1) * past).reshape(1, t, 2 * lz)
    weights = torch.empty(1, k + 1, t, dtype=torch.float64)
    wpe_module._weights(torch.nn.functional.pad(torch.from_numpy(lam)[None], (0, d + k)), t, d, k, weights)
    prod = torch.view_as_complex((weights @ z).reshape(1, (k + 1) * lz, 2))
    view = prod.as_strided((1, k, k), (prod.stride(0), lz - 1, 1), lz - 1)[0].numpy()
    assert torch.equal(wpe_module._lower_view(prod, k, lz)[0], torch.from_numpy(view))
    jrj = np.conj(r_ref[::-1, ::-1])
    np.testing.assert_allclose(np.tril(view), np.tril(jrj), rtol=1e-12, atol=1e-12)
    # row K, column L-1-m holds P's lag m = d + k entry p[k]; here lz >= d + k: all of P
    assert lz >= d + k
    np.testing.assert_allclose(prod[0, k * lz + lz - d - k : k * lz + lz - d].numpy(), p_ref[::-1], rtol=1e-12)


def test_hermitian_solve_reads_one_triangle_and_falls_back_like_nara_wpe() -> None:
    # positive definite: Cholesky; Hermitian but indefinite: Cholesky fails, LU solves it;
    # zero (a silent bin): LU fails too, the pseudo-inverse gives 0 as nara_wpe's lstsq does.
    # The upper triangle holds other numbers (the product's other lags): never read.
    from seld.features import wpe as wpe_module

    rng = np.random.default_rng(3)
    k = 6
    a = rng.standard_normal((k, 2 * k)) + 1j * rng.standard_normal((k, 2 * k))
    pd = a @ a.conj().T
    indef = pd - 1.5 * np.trace(pd).real / k * np.eye(k)
    mats = np.stack([pd, indef, np.zeros((k, k))])
    assert np.linalg.eigvalsh(indef).min() < 0 < np.linalg.eigvalsh(indef).max()
    rhs = rng.standard_normal((3, k, 1)) + 1j * rng.standard_normal((3, k, 1))
    garbage = np.tril(mats) + np.triu(rng.standard_normal((3, k, k)) * 100, 1)
    lower = torch.ones(k, k, dtype=torch.bool).tril()
    got = wpe_module._solve_hermitian_lower(torch.from_numpy(garbage), torch.from_numpy(rhs), lower).numpy()
    np.testing.assert_allclose(got[0], np.linalg.solve(pd, rhs[0]), rtol=1e-10)
    np.testing.assert_allclose(got[1], np.linalg.solve(indef, rhs[1]), rtol=1e-10)
    np.testing.assert_array_equal(got[2], 0.0)


def test_kernel_solves_in_place_equal_the_solution_and_fall_back() -> None:
    # the compiled kernel's solves on each block of the product: positive definite -> its
    # solution; indefinite (its factorisation fails) -> LU; zero -> the pseudo-inverse's 0, as
    # nara_wpe's lstsq. The kernel's Cholesky only reads the product.
    from seld.features import wpe as wpe_module
    from tests.features.kernel import require_kernel

    kernel = require_kernel()
    rng = np.random.default_rng(5)
    k = 6
    lz = wpe_module.stored_lags(k)
    a = rng.standard_normal((k, 2 * k)) + 1j * rng.standard_normal((k, 2 * k))
    pd = a @ a.conj().T
    indef = pd - 1.5 * np.trace(pd).real / k * np.eye(k)
    mats = [pd, indef, np.zeros((k, k), complex)]
    prod = torch.view_as_real(torch.from_numpy(rng.standard_normal((3, (k + 1) * lz)) * (1 + 0j))).reshape(3, k + 1, 2 * lz).clone()
    flat = torch.view_as_complex(prod.view(3, (k + 1) * lz, 2))
    view = flat.as_strided((3, k, k), (flat.stride(0), lz - 1, 1), lz - 1)
    lower = torch.ones(k, k, dtype=torch.bool).tril()
    for i, m in enumerate(mats):  # the view's lower triangle is conj(M)'s: the kernel reads M's upper
        view[i][lower] = torch.from_numpy(np.tril(np.conj(m)))[lower]
    original = prod.clone()
    rhs = torch.from_numpy(rng.standard_normal((3, k, 1)) + 1j * rng.standard_normal((3, k, 1)))
    b = rhs.clone()
    got = wpe_module._kernel_solve(kernel, flat, k, lz, rhs, lower).numpy()
    assert torch.equal(prod, original)  # read only
    np.testing.assert_allclose(got[0], np.conj(np.linalg.solve(pd, b[0].numpy())), rtol=1e-10)
    np.testing.assert_allclose(got[1], np.conj(np.linalg.solve(indef, b[1].numpy())), rtol=1e-10)
    np.testing.assert_array_equal(got[2], 0.0)

def test_zero_delay_is_a_config_error() -> None:
    from seld.errors import ConfigError

    with pytest.raises(ConfigError, match=r"delay \(0\).*>= 1.*predicts each frame from itself"):
        WpeConfig(delay=0)


def test_threaded_cpu_wpe_equals_one_thread(rooms: torch.Tensor) -> None:
    # with 2+ torch threads the clips are spread over threads (one core each): same numbers, clip by clip
    cfg = WpeConfig(taps=20, iterations=2)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = wpe(rooms, cfg)
        torch.set_num_threads(2)
        two = wpe(rooms, cfg)
        assert torch.get_num_threads() == 2  # restored after the threaded run
    finally:
        torch.set_num_threads(saved)
    assert torch.equal(one, two)

