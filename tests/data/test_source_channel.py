"""Source channel at evaluation (``data.streams.src_eval``: mid | l | r | mean_lr) on a hand-made merged file."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from seld.data.dataset import SeldDataset, StreamConfig, source_view_batches

CHANNELS = ["logmel_l", "logmel_r", "logmel_mid", "ivy", "ild", "direct_logmel", "reverb_logmel"]


@pytest.fixture(scope="module")
def merged(tmp_path_factory) -> Path:
    """3 clips; channel c of clip n is filled with the value 10 * n + c (easy to recognise)."""
    path = tmp_path_factory.mktemp("src") / "split.h5"
    feats = np.stack([np.stack([np.full((10, 8), 10 * n + c, np.float32) for c in range(len(CHANNELS))]) for n in range(3)])
    with h5py.File(path, "w") as f:
        f["features"] = feats
        f["targets"] = np.zeros((3, 50, 6, 4, 13), np.float32)
        f["clip_ids"] = np.array([b"a", b"b", b"c"])
        f.attrs["channels"] = CHANNELS
    return path


def _value(x: torch.Tensor) -> int:
    assert torch.all(x == x.flatten()[0])
    return int(x.flatten()[0])


@pytest.mark.parametrize("option, channel", [("mid", "logmel_mid"), ("l", "logmel_l"), ("r", "logmel_r")])
def test_single_view_options_feed_that_channel(merged, option, channel):
    ds = SeldDataset(merged, None, StreamConfig(src_eval=option), train=False)
    item = ds[1]
    assert item["src"].shape == (1, 10, 8) and "src_views" not in item
    assert _value(item["src"]) == 10 + CHANNELS.index(channel)


def test_mean_lr_gives_both_views_and_batches_split_per_view(merged):
    streams = StreamConfig(src_eval="mean_lr")
    assert "logmel_mid" not in streams.required_channels(train=False)  # mid is not read at all
    ds = SeldDataset(merged, None, streams, train=False)
    item = ds[2]
    assert item["src_views"].shape == (2, 1, 10, 8)
    assert [_value(v) for v in item["src_views"]] == [20 + 0, 20 + 1]  # L then R
    batch = next(iter(DataLoader(ds, batch_size=3)))
    views = source_view_batches(batch)
    assert len(views) == 2 and all("src_views" not in v for v in views)
    assert [[_value(x) for x in v["src"]] for v in views] == [[0, 10, 20], [1, 11, 21]]
    assert views[0]["doa"] is batch["doa"]
    # the mean over views of a linear "model" equals the model on the mean input: (L + R) / 2
    mean = torch.stack([v["src"].mean(dim=(1, 2, 3)) for v in views]).mean(0)
    torch.testing.assert_close(mean, torch.tensor([0.5, 10.5, 20.5]))
    # a single-view batch comes back as it is
    single = next(iter(DataLoader(SeldDataset(merged, None, StreamConfig(), train=False), batch_size=3)))
    assert source_view_batches(single) == [single]


def test_training_ignores_src_eval_and_fixed_source_ignores_it_too(merged):
    train = SeldDataset(merged, None, StreamConfig(src_eval="mean_lr"), train=True)
    assert "src_views" not in train[0] and _value(train[0]["src"]) in (0, 1)  # L or R drawn
    fixed = StreamConfig(src=["logmel_mid"], src_train_choices=[], src_eval="l")  # no random choice: src throughout
    assert fixed.eval_source_views() == [["logmel_mid"]]
    assert _value(SeldDataset(merged, None, fixed, train=False)[0]["src"]) == CHANNELS.index("logmel_mid")
    with pytest.raises(ValueError, match="src_eval must be one of mid, l, r, mean_lr"):
        StreamConfig(src_eval="left")  # type: ignore[arg-type]
