"""The training dataset over a merged feature file: streams, normalisation, lazy HDF5."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from seld.data import h5schema
from seld.data.dataset import SeldDataset, StreamConfig
from seld.errors import DataError
from seld.features.config import FeatureConfig
from seld.features.extract import extract_features
from seld.features.merge import merge_splits
from tests.features.simdata import write_dataset

TRAIN, TEST = "dev-train-synth", "dev-test-synth"


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    write_dataset(root / "data", {TRAIN: 4, TEST: 1}, seed=11)
    cfg = FeatureConfig(  # default channels, WPE included (one iteration keeps the test fast)
        dataset_root=str(root / "data"), output_dir=str(root / "feat"), splits=[TRAIN, TEST],
        train_splits=[TRAIN], workers=1,
    )
    cfg.wpe.iterations = 1
    assert extract_features(cfg, progress=False).ok
    merge_splits(cfg)
    return root / "feat"


def test_items_have_the_three_encoder_inputs_and_the_target(features: Path) -> None:
    ds = SeldDataset(features / f"{TEST}.h5", features / "normalization.json", StreamConfig(), train=False)
    assert len(ds) == 1
    item = ds[0]
    assert item["src"].shape == (1, 250, 64)
    assert item["doa"].shape == (4, 250, 64)
    assert item["dist"].shape == (2, 250, 64)
    assert item["target"].shape == (50, 6, 4, 13)
    assert all(item[k].dtype == torch.float32 for k in ("src", "doa", "dist", "target"))
    assert item["clip_id"] == "fold3_room0_mix000"
    with h5py.File(features / f"{TEST}.h5", "r") as f:
        np.testing.assert_array_equal(item["target"].numpy(), f[h5schema.TARGETS][0])


def test_training_split_is_normalised_per_channel(features: Path) -> None:
    ds = SeldDataset(features / f"{TRAIN}.h5", features / "normalization.json", StreamConfig(), train=False)
    items = [ds[i] for i in range(len(ds))]
    for stream, names in (("src", ["logmel_mid"]), ("doa", ["logmel_l", "logmel_r", "ivy", "ild"]),
                          ("dist", ["direct_logmel", "reverb_logmel"])):
        x = torch.stack([it[stream] for it in items]).double()  # (N, C, 250, 64)
        for c, name in enumerate(names):
            assert abs(float(x[:, c].mean())) < 1e-4, name
            assert abs(float(x[:, c].std(unbiased=False)) - 1.0) < 1e-4, name
    # The stored features are not normalised: the dataset applies the JSON statistics.
    stats = json.loads((features / "normalization.json").read_text())["channels"]
    with h5py.File(features / f"{TRAIN}.h5", "r") as f:
        raw = f[h5schema.FEATURES][2, h5schema.merged_channels(f).index("ild")]
    expected = (raw - stats["ild"]["mean"]) / stats["ild"]["std"]
    np.testing.assert_allclose(items[2]["doa"][3].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_training_picks_left_or_right_log_mel_for_the_source(features: Path) -> None:
    path, norm = features / f"{TRAIN}.h5", features / "normalization.json"
    train = SeldDataset(path, norm, StreamConfig(), train=True, seed=5)
    plain = SeldDataset(path, norm, StreamConfig(src=["logmel_l"], doa=["logmel_r"], dist=["ild"],
                                                 src_train_choices=[]), train=True)
    picks = set()
    for epoch in range(4):
        train.set_epoch(epoch)
        for i in range(len(train)):
            src = train[i]["src"][0]
            left, right = plain[i]["src"][0], plain[i]["doa"][0]
            if torch.equal(src, left):
                picks.add("L")
            else:
                assert torch.equal(src, right)
                picks.add("R")
            assert torch.equal(train[i]["src"], src[None])  # same (seed, epoch, index) -> same pick
    assert picks == {"L", "R"}
    # Evaluation uses logmel_mid.
    evaluation = SeldDataset(path, norm, StreamConfig(), train=False)
    assert not torch.equal(evaluation[0]["src"][0], plain[0]["src"][0])


def test_missing_channel_fails_at_construction_listing_available(features: Path) -> None:
    streams = StreamConfig(dist=["direct_logmel", "drr_logmel"])
    with pytest.raises(DataError, match=r"dev-train-synth.h5.*drr_logmel.*available: logmel_l"):
        SeldDataset(features / f"{TRAIN}.h5", features / "normalization.json", streams)
    norm = features.parent / "partial.json"
    norm.write_text(json.dumps({"channels": {"ild": {"mean": 0.0, "std": 1.0}}}))
    with pytest.raises(DataError, match=r"partial.json.*logmel_mid"):
        SeldDataset(features / f"{TRAIN}.h5", norm, StreamConfig())


def test_file_is_opened_lazily_and_works_in_loader_workers(features: Path) -> None:
    ds = SeldDataset(features / f"{TRAIN}.h5", features / "normalization.json", StreamConfig(), train=True)
    assert ds._h5 is None
    first = ds[0]
    assert ds._h5 is not None
    clone = pickle.loads(pickle.dumps(ds))  # what a spawned DataLoader worker receives
    assert clone._h5 is None
    assert torch.equal(clone[0]["doa"], first["doa"])
    loader = DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(loader)
    assert [b["doa"].shape for b in batches] == [(2, 4, 250, 64), (2, 4, 250, 64)]
    assert batches[0]["target"].shape == (2, 50, 6, 4, 13)
    assert batches[0]["clip_id"] == [ds.clip_ids[0], ds.clip_ids[1]]
    torch.testing.assert_close(batches[0]["doa"][0], first["doa"])


def test_file_of_another_format_version_is_refused_one_without_a_version_read(features: Path, tmp_path: Path) -> None:
    old = tmp_path / f"{TEST}.h5"
    shutil.copyfile(features / f"{TEST}.h5", old)
    with h5py.File(old, "a") as f:
        assert f.attrs[h5schema.ATTR_FORMAT_VERSION] == h5schema.FORMAT_VERSION
        f.attrs[h5schema.ATTR_FORMAT_VERSION] = 3
    with pytest.raises(DataError) as err:
        SeldDataset(old, features / "normalization.json", StreamConfig())
    assert str(err.value) == (f"{old}: feature file format version 3, this textseld reads version 1; re-extract the "
                              "features with `seld features --config <feature config>` (it rewrites them)")
    with h5py.File(old, "a") as f:  # written before the attribute existed: the layout of version 1
        del f.attrs[h5schema.ATTR_FORMAT_VERSION]
    ds = SeldDataset(old, features / "normalization.json", StreamConfig())
    assert ds.clip_ids == ["fold3_room0_mix000"] and ds[0]["doa"].shape == (4, 250, 64)
