"""Stereo augmentation: left/right swap physics, masks, band gains, eval off, determinism."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seld.data.augment import AugmentConfig, Augmenter, swap_left_right
from seld.data.dataset import SeldDataset, StreamConfig
from seld.data.metadata import Event
from seld.data.targets import build_adpit_target
from seld.errors import ConfigError
from seld.features.config import FeatureConfig
from seld.features.extract import compute_clip_features, extract_features
from seld.features.merge import merge_splits
from seld.sim.scenes import render_single_source
from tests.features.simdata import write_dataset

CHANNELS = ["logmel_l", "logmel_r", "logmel_mid", "ild", "ivy", "ipd_cos", "ipd_sin", "direct_logmel", "reverb_logmel"]
TRAIN = "dev-train-synth"


def _features(azimuth: float) -> tuple[np.ndarray, np.ndarray]:
    audio = render_single_source(azimuth, 2.0, rt60=None, seed=3, class_idx=8)  # anechoic, music (broadband)
    cfg = FeatureConfig(channels=CHANNELS)
    cfg.wpe.iterations = 1
    feats = compute_clip_features(audio, CHANNELS, cfg)
    names = cfg.channels  # "ipd" stays split in cos/sin here
    stacked = np.stack([feats[c] for c in names])
    events = [Event(f, 8, 0, round(azimuth), 200) for f in range(50)]
    return stacked, build_adpit_target(events)


@pytest.mark.parametrize("azimuth", [35.0, 70.0])
def test_swap_of_a_source_equals_the_mirrored_source(azimuth: float) -> None:
    """Anechoic room: swap(features at +az) == features at -az, and the targets match.

    In an anechoic room the mirrored source gives L(-az) = R(+az) up to float rounding (same
    distance and delay, the figure-of-eight's sign flipped; the RIRs and the float32 audio differ
    in their last bits). That rounding is a noise floor about 120 dB below the peak, so bins
    within 60 dB of a channel's maximum must agree to 1e-3 (dB for log-mels and ILD; IVy and IPD
    are bounded by 1; 1e-2 dB for the WPE outputs, whose iterative filter estimate amplifies rounding); quieter bins (the -90 dB tails of the quieter channel at 70 degrees) to 0.05 dB
    on the dB channels (the phase and intensity ratios of near-silent bins are rounding noise).
    A 1 degree mirror error moves the ILD by ~0.1 dB and IVy by ~0.01 at 35 degrees: 10-100x that.
    """
    plus, t_plus = _features(azimuth)
    minus, t_minus = _features(-azimuth)
    swapped, t_swapped = swap_left_right(plus, CHANNELS, t_plus)
    idx = {c: i for i, c in enumerate(CHANNELS)}
    assert np.abs(plus[idx["ild"]]).max() > 3.0  # the cue is there to be mirrored
    lo = np.minimum(minus[idx["logmel_l"]], minus[idx["logmel_r"]])
    loud = lo > max(minus[idx["logmel_l"]].max(), minus[idx["logmel_r"]].max()) - 60.0
    assert loud.mean() > 0.3
    for c in CHANNELS:
        tight = 1e-2 if c in ("direct_logmel", "reverb_logmel") else 1e-3
        np.testing.assert_allclose(swapped[idx[c]][loud], minus[idx[c]][loud], atol=tight, err_msg=c)
        if "logmel" in c or c == "ild":  # phase and intensity ratios of near-silent bins are noise
            np.testing.assert_allclose(swapped[idx[c]], minus[idx[c]], atol=0.05, err_msg=c)
    np.testing.assert_array_equal(t_swapped, t_minus)
    # and the swap is not a no-op: without it the cues disagree
    assert np.abs(plus[idx["ivy"]] - minus[idx["ivy"]]).max() > 0.3


def test_swap_target_negates_y_only() -> None:
    events = [Event(f, 3, 0, 40, 150) for f in range(10)] + [Event(f, 3, 1, -20, 300) for f in range(10)]
    target = build_adpit_target(events)
    _, swapped = swap_left_right(np.zeros((2, 1, 1), np.float32), ["logmel_l", "logmel_r"], target)
    np.testing.assert_array_equal(swapped[:, :, [0, 1, 3]], target[:, :, [0, 1, 3]])
    np.testing.assert_array_equal(swapped[:, :, 2], -target[:, :, 2])
    assert swapped[0, :, 2, 3].min() < -0.5 and swapped[0, :, 2, 3].max() > 0.3


def test_swap_needs_both_channels_of_a_pair() -> None:
    with pytest.raises(ConfigError, match="logmel_l and logmel_r"):
        Augmenter(AugmentConfig(swap_prob=0.5), ["logmel_l", "ild"])


def test_masks_and_gains_keep_shapes_and_touch_the_right_channels() -> None:
    names = ["logmel_l", "logmel_r", "ild", "ivy"]
    aug = Augmenter(AugmentConfig(filter_prob=1.0, time_masks=2, freq_masks=2, time_mask_frames=30), names)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 250, 64)).astype(np.float32) + 5.0
    target = np.zeros((50, 6, 4, 13), np.float32)
    y, t = aug.before_normalization(x, target, rng)
    assert y.shape == x.shape and t is target
    gain = y[0] - x[0]
    assert np.allclose(gain, gain[0:1, :]) and np.abs(gain).max() > 0.1  # one gain per mel bin, all frames
    np.testing.assert_allclose(y[1] - x[1], gain, atol=1e-5)  # L and R alike ...
    np.testing.assert_array_equal(y[2:], x[2:])  # ... so ILD and IVy unchanged
    assert 2 <= len(np.unique(gain[0].round(4))) <= 5  # piecewise constant bands
    m = aug.after_normalization(y, rng)
    assert m.shape == y.shape
    zero_frames = np.all(m == 0, axis=(0, 2))
    zero_bins = np.all(m == 0, axis=(0, 1))
    assert zero_frames.sum() + zero_bins.sum() > 0
    untouched = ~zero_frames[:, None] & ~zero_bins[None, :]
    np.testing.assert_array_equal(m[:, untouched], y[:, untouched])


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("augment")
    write_dataset(root / "data", {TRAIN: 3}, seed=5)
    cfg = FeatureConfig(
        dataset_root=str(root / "data"), output_dir=str(root / "feat"), splits=[TRAIN], train_splits=[TRAIN],
        channels=["logmel_l", "logmel_r", "logmel_mid", "ild", "ivy"], workers=1,
    )
    assert extract_features(cfg, progress=False).ok
    merge_splits(cfg)
    return root / "feat"


STREAMS = StreamConfig(src=["logmel_mid"], doa=["logmel_l", "logmel_r", "ivy", "ild"], dist=["logmel_mid"], src_train_choices=[])
FULL = AugmentConfig(swap_prob=0.5, filter_prob=0.5, time_masks=1, freq_masks=1)


def _items(feat: Path, train: bool, augment: AugmentConfig | None, seed: int = 0, epoch: int = 0):
    ds = SeldDataset(feat / f"{TRAIN}.h5", feat / "normalization.json", STREAMS, train=train, seed=seed, augment=augment)
    ds.set_epoch(epoch)
    return [ds[i] for i in range(len(ds))]


def test_dataset_augments_in_training_only_and_deterministically(merged: Path) -> None:
    plain = _items(merged, train=True, augment=None)
    evaluation = _items(merged, train=False, augment=FULL)
    for a, b in zip(plain, evaluation):  # off at evaluation
        for k in ("src", "doa", "dist", "target"):
            assert np.array_equal(a[k].numpy(), b[k].numpy())
    first = _items(merged, train=True, augment=FULL)
    again = _items(merged, train=True, augment=FULL)
    for a, b in zip(first, again):  # same seed and epoch -> same draws
        for k in ("doa", "target"):
            assert np.array_equal(a[k].numpy(), b[k].numpy())
    differs = [not np.array_equal(a["doa"].numpy(), b["doa"].numpy()) for a, b in zip(plain, first)]
    assert any(differs)
    other_epochs = [_items(merged, train=True, augment=FULL, epoch=e) for e in range(1, 4)]
    assert any(not np.array_equal(o[0]["doa"].numpy(), first[0]["doa"].numpy()) for o in other_epochs)


def test_dataset_swap_moves_channels_after_normalisation(merged: Path) -> None:
    plain = _items(merged, train=True, augment=None)
    swapped = _items(merged, train=True, augment=AugmentConfig(swap_prob=1.0))
    stats = SeldDataset(merged / f"{TRAIN}.h5", merged / "normalization.json", STREAMS)
    mean, scale, idx = stats.mean, stats.scale, stats.index
    for p, s in zip(plain, swapped):
        raw = {c: p["doa"][i].numpy() / scale[idx[c]] + mean[idx[c]] for i, c in enumerate(STREAMS.doa)}
        expect = {"logmel_l": raw["logmel_r"], "logmel_r": raw["logmel_l"], "ivy": -raw["ivy"], "ild": -raw["ild"]}
        for i, c in enumerate(STREAMS.doa):
            np.testing.assert_allclose(s["doa"][i].numpy(), (expect[c] - mean[idx[c]]) * scale[idx[c]], atol=2e-4)
        np.testing.assert_array_equal(s["target"][:, :, 2].numpy(), -p["target"][:, :, 2].numpy())
        np.testing.assert_array_equal(s["src"].numpy(), p["src"].numpy())  # mid unchanged


def test_bad_config_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="swap_prob"):
        AugmentConfig(swap_prob=1.5)
    with pytest.raises(ConfigError, match="filter_bands"):
        AugmentConfig(filter_bands=[3, 2])
