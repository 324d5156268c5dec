"""The reverberant part of W (``wpe.reverb``) against the authors' formula, and the refusal of
features made with the definition before it."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from seld.config import from_dict, to_dict
from seld.errors import ConfigError
from seld.features.channels import FeatureContext
from seld.features.clip_files import clip_file, feature_params, is_complete
from seld.features.config import FeatureConfig, outdated_feature_definition
from seld.features.extract import compute_batch_features, extract_features
from tests.features.authors_distance import ROOMS, authors_distance_logmels, mid_wpe, room_clips, stft_domain_logmels
from tests.features.simdata import write_dataset

NAMES = ["direct_logmel", "reverb_logmel", "drr_logmel"]
TOLERANCE_DB = 1e-4
"""Measured on these clips: at most 1.0e-5 dB (float32 mel product and storage)."""


@pytest.fixture(scope="module")
def room_audio() -> np.ndarray:
    """Stereo audio (4, 2, 120000) of 5 s simulated rooms with RT60 0.2, 0.5, 0.7 and 0.9 s."""
    assert [r[2] for r in ROOMS] == [0.2, 0.5, 0.7, 0.9]
    return room_clips()


@pytest.fixture(scope="module")
def cpu_direct(room_audio: np.ndarray) -> np.ndarray:
    """WPE output of each clip's mid STFT, clip by clip as the CPU front end runs it: (4, 513, 251)."""
    return np.concatenate([mid_wpe(a[None], FeatureConfig()) for a in room_audio])


def assert_formula(ours: dict[str, np.ndarray], refs: list[dict[str, np.ndarray]], names: list[str]) -> None:
    for i, ref in enumerate(refs):
        for name in names:
            assert ours[name][i].shape == (250, 64)
            np.testing.assert_allclose(ours[name][i], ref[name][:250], rtol=0, atol=TOLERANCE_DB,
                                       err_msg=f"{name}, RT60 {ROOMS[i][2]} s")


def test_reverberant_channels_equal_the_authors_formula_on_simulated_rooms(room_audio, cpu_direct) -> None:
    """Default ``wpe.reverb: time_domain``: Rev = STFT(w - ISTFT(D)), powers floored at 1e-100,
    DRR = |D|^2 / (|Rev|^2 + 1e-8) per bin, each through librosa's mel and power_to_db."""
    cfg = FeatureConfig()
    assert cfg.wpe.reverb == "time_domain"
    ours = compute_batch_features(room_audio, NAMES, cfg)
    assert_formula(ours, [authors_distance_logmels(a, d) for a, d in zip(room_audio, cpu_direct)], NAMES)


def test_stft_domain_option_is_the_bin_by_bin_subtraction_and_not_the_authors_formula(room_audio, cpu_direct) -> None:
    cfg = FeatureConfig()
    cfg.wpe.reverb = "stft_domain"
    ours = compute_batch_features(room_audio, NAMES, cfg)
    assert_formula(ours, [stft_domain_logmels(a, d) for a, d in zip(room_audio, cpu_direct)], NAMES[1:])
    # the two definitions differ by far more than the tolerance: the test above can tell them apart
    # (measured on these clips: median 0.93 dB, 99th percentile 9.6 dB for reverb_logmel)
    authors = [authors_distance_logmels(a, d)["reverb_logmel"][:250] for a, d in zip(room_audio, cpu_direct)]
    gap = np.abs(ours["reverb_logmel"] - np.stack(authors))
    assert np.median(gap) > 0.3 and np.quantile(gap, 0.99) > 3.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_reverberant_channels_equal_the_authors_formula(room_audio) -> None:
    """The GPU front end (whole batch at once) against the formula fed with the GPU's WPE output."""
    cfg = FeatureConfig(device="cuda")
    ours = compute_batch_features(room_audio, NAMES, cfg)
    direct = mid_wpe(room_audio, cfg, device="cuda")  # one call for the batch, as the front end does
    assert_formula(ours, [authors_distance_logmels(a, d) for a, d in zip(room_audio, direct)], NAMES)


def test_time_domain_residual_of_an_unchanged_stft_is_silence() -> None:
    """With D = W (nothing removed) ISTFT(D) must give back w sample for sample (same window, hop,
    centring, length), so Rev is rounding noise far under amin: -100 dB everywhere. An inverse
    that were off by one sample, or centred differently, would leave most of w's power."""
    rng = np.random.default_rng(0)
    audio = torch.from_numpy(rng.standard_normal((2, 2, 24000)))
    cfg = FeatureConfig()
    ctx = FeatureContext(audio, 50, cfg.stft, cfg.mel, cfg.wpe, 24000)
    ctx.set_direct(ctx.mid_full)
    reverb = ctx.db(ctx.mel("power_reverb"))
    assert reverb.shape == (2, 50, 64)
    np.testing.assert_array_equal(reverb.numpy(), -100.0)
    assert float(ctx.db(ctx.mel("power_direct")).min()) > -40  # while w itself is loud


def test_reverb_setting_is_checked_and_part_of_the_stored_feature_params() -> None:
    assert from_dict(FeatureConfig, {"wpe": {"reverb": "stft_domain"}}).wpe.reverb == "stft_domain"
    with pytest.raises(ConfigError, match=r"wpe\.reverb.*'time_domain', 'stft_domain'"):
        from_dict(FeatureConfig, {"wpe": {"reverb": "time"}})
    cfg = FeatureConfig()
    assert json.loads(feature_params(cfg))["wpe"]["reverb"] == "time_domain"
    other = FeatureConfig()
    other.wpe.reverb = "stft_domain"
    assert feature_params(other) != feature_params(cfg)


def test_feature_configs_before_the_reverb_setting_are_named_outdated() -> None:
    stored = to_dict(FeatureConfig())  # what a feature folder's config.yml (and a checkpoint) holds now
    assert outdated_feature_definition(stored) is None
    assert outdated_feature_definition({}) is None  # nothing stored: nothing to compare

    old = json.loads(json.dumps(stored))
    del old["wpe"]["reverb"]
    assert outdated_feature_definition(old) == (
        "reverb_logmel from the STFT-domain reverberant part W - D, before wpe.reverb existed"
    )
    old["channels"] = ["logmel_l", "drr_logmel", "reverb_logmel"]
    assert "reverb_logmel and drr_logmel from the STFT-domain" in outdated_feature_definition(old)
    old["channels"] = ["logmel_l", "direct_logmel"]  # no channel reads the reverberant part
    assert outdated_feature_definition(old) is None

    older = json.loads(json.dumps(stored))
    del older["stft"]["win_length"]
    assert outdated_feature_definition(older) == "1024-sample STFT window, resynthesised WPE direct signal"


def test_clip_files_of_the_definition_before_are_recomputed(tmp_path) -> None:
    write_dataset(tmp_path / "data", {"dev-train-synth": 2}, seed=3)
    cfg = FeatureConfig(dataset_root=str(tmp_path / "data"), output_dir=str(tmp_path / "feat"),
                        splits=["dev-train-synth"], train_splits=["dev-train-synth"],
                        channels=["logmel_mid", "direct_logmel", "reverb_logmel"], workers=1)
    cfg.wpe.iterations = 1
    assert extract_features(cfg, progress=False).done == 2
    path = clip_file(cfg.output_dir, "dev-train-synth", "fold3_room0_mix000")
    with h5py.File(path, "a") as f:  # as written before wpe.reverb existed
        params = json.loads(f.attrs["feature_params"])
        del params["wpe"]["reverb"]
        f.attrs["feature_params"] = json.dumps(params, sort_keys=True)
    assert not is_complete(path, cfg)
    report = extract_features(cfg, progress=False)
    assert (report.done, report.skipped) == (1, 1)
    assert is_complete(path, cfg)
