"""WPE direct / reverberant split of the mid signal."""
from __future__ import annotations

import numpy as np
import torch

from seld.data.synth import render_single_source
from seld.features.config import FeatureConfig, WpeConfig
from seld.features.extract import compute_clip_features
from seld.features.wpe import direct_and_reverberant, wpe_stft


def test_direct_plus_reverberant_is_the_mid_signal() -> None:
    rng = np.random.default_rng(0)
    w = torch.from_numpy(rng.standard_normal((2, 24000)))
    w[1] = 0.0  # a silent clip in the batch: no direct part, nothing to divide by
    direct, reverb = direct_and_reverberant(w, WpeConfig(taps=10, iterations=2))
    assert direct.shape == reverb.shape == (2, 24000)
    np.testing.assert_allclose((direct + reverb).numpy(), w.numpy(), atol=1e-12)
    assert torch.all(direct[1] == 0)
    assert float((direct[0] ** 2).sum()) > 0.5 * float((w[0] ** 2).sum())


def test_wpe_removes_a_known_late_echo() -> None:
    # y = x + 0.5 x(t - 300 ms): an echo 15 hops late, beyond the prediction delay; WPE should
    # bring the power of y (1.25 x that of x) back close to the dry level.
    rng = np.random.default_rng(1)
    x = rng.standard_normal(72000)
    y = x.copy()
    y[7200:] += 0.5 * x[:-7200]

    def spectrum(v: np.ndarray) -> np.ndarray:
        window = torch.hann_window(1024, dtype=torch.float64)
        return torch.stft(torch.from_numpy(v), 1024, 480, window=window, return_complex=True).numpy()

    spec, dry = spectrum(y), spectrum(x)
    out = wpe_stft(spec[:, None, :], WpeConfig(taps=40, delay=5, iterations=3))[:, 0, :]
    assert out.shape == spec.shape
    late = slice(40, None)  # frames where the echo is present

    def power(s: np.ndarray) -> float:
        return float((np.abs(s[:, late]) ** 2).mean())

    assert power(spec) / power(dry) > 1.2
    assert power(out) / power(dry) < 1.12


def _reverberant_share(rt60: float) -> float:
    audio = render_single_source(30.0, 2.5, rt60=rt60, seed=1, class_idx=2)
    cfg = FeatureConfig()
    cfg.wpe.iterations = 3
    f = compute_clip_features(audio, ["direct_logmel", "reverb_logmel", "drr_logmel"], cfg)
    np.testing.assert_allclose(f["drr_logmel"], f["direct_logmel"] - f["reverb_logmel"], atol=1e-3)
    direct, reverb = 10 ** (f["direct_logmel"] / 10), 10 ** (f["reverb_logmel"] / 10)
    return float(reverb.sum() / (direct.sum() + reverb.sum()))


def test_reverberant_share_grows_with_rt60() -> None:
    dry, wet = _reverberant_share(0.2), _reverberant_share(0.9)
    assert wet > 3 * dry
    assert wet > 0.05
