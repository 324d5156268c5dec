"""Model selection on held-out data (issue 9 item 7) and resume refusals at the stage level
(issue 13 item 9): rooms held out of the training splits, test splits scored once with
``best_f.pt``, and an architecture or data change refused before any state is loaded."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from seld.config import load_config, to_dict
from seld.constants import SYNTH_TEST_SPLIT, SYNTH_TRAIN_SPLIT
from seld.errors import ConfigError
from seld.tasks.loading import load_task
from seld.tasks.pretrain import PretrainConfig, run_pretraining
from seld.train.data import (
    ValFromTrainConfig, build_dataset, build_stage_datasets, clip_ids_of, make_validator, room_of, split_by_room,
)
from tests.train.conftest import pretrain_config, single_thread, small_tokenizer


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def _ids() -> list[str]:
    """Clip ids of 10 rooms with 2..11 clips each (DCASE naming), plus a synthetic fold1 room 4."""
    ids = []
    for k, room in enumerate([2, 4, 6, 7, 8, 9, 21, 22, 23, 24]):
        ids += [f"fold3_room{room}_mix{m:03d}" for m in range(2 + k)]
    return ids + [f"fold1_room4_mix{m:03d}_ov1" for m in range(5)]


def test_split_by_room_holds_out_whole_rooms_deterministically():
    ids = _ids()
    train, val = split_by_room(ids, 0.1, seed=0)
    assert sorted(train + val) == list(range(len(ids)))
    train_rooms, val_rooms = {room_of(ids[i]) for i in train}, {room_of(ids[i]) for i in val}
    assert train_rooms.isdisjoint(val_rooms) and val_rooms
    assert 0.1 * len(ids) <= len(val) < 0.1 * len(ids) + 11  # whole rooms: at most one room past the share
    assert split_by_room(ids, 0.1, seed=0) == (train, val)
    assert len({tuple(split_by_room(ids, 0.1, seed=s)[1]) for s in range(5)}) > 1  # the seed matters
    assert room_of("fold1_room4_mix000_ov1") != room_of("fold3_room4_mix000")  # folds name different rooms
    _, most = split_by_room(ids, 0.99, seed=0)
    assert len({room_of(ids[i]) for i in most}) == 10  # one of the 11 rooms always trains


def test_split_by_room_errors_name_the_problem():
    with pytest.raises(ConfigError, match="'mix001.wav'"):
        split_by_room(["fold3_room1_mix000", "mix001.wav"], 0.1, 0)
    with pytest.raises(ConfigError, match="at least 2 rooms"):
        split_by_room(["fold3_room1_mix000", "fold3_room1_mix001"], 0.1, 0)


def test_val_from_train_and_val_splits_together_is_a_config_error(tmp_path):
    path = tmp_path / "p.yml"
    path.write_text(yaml.safe_dump({"data": {"val_splits": ["dev-test-sony"], "val_from_train": {"fraction": 0.1}}}))
    with pytest.raises(ConfigError, match=r"p\.yml.*set val_splits: \[\]"):
        load_config(path, PretrainConfig)


def _held_out_cfg(sim, out: Path, **train) -> PretrainConfig:
    cfg = pretrain_config(sim, out, small_tokenizer(d_model=16), **train)
    cfg.data.val_splits, cfg.data.test_splits = [], [SYNTH_TEST_SPLIT]
    cfg.data.val_from_train = ValFromTrainConfig(fraction=0.25, seed=0)
    return cfg


def test_held_out_rooms_are_never_trained_on(sim, tmp_path):
    cfg = _held_out_cfg(sim, tmp_path / "run")
    train, val, test = build_stage_datasets(cfg.data, seed=0)
    train_ids, val_ids = train.clip_ids, val.clip_ids
    assert sorted(train_ids + val_ids) == sorted(clip_ids_of(build_dataset(cfg.data, [SYNTH_TRAIN_SPLIT], False, 0)))
    assert {room_of(c) for c in train_ids}.isdisjoint({room_of(c) for c in val_ids})
    assert len(val_ids) >= 0.25 * 12 and len(test) == 4
    assert train.dataset.train and not val.dataset.train  # held-out clips are read as evaluation items
    train.set_epoch(3)
    assert train.dataset.epoch == 3


def test_test_splits_scored_once_with_best_f(sim, tmp_path):
    out = tmp_path / "run"
    cfg = _held_out_cfg(sim, out, epochs=2, tensorboard=True, lr=2e-3)
    trainer = run_pretraining(cfg)
    scores = json.loads((out / "test_scores.json").read_text())
    best = torch.load(out / "checkpoints" / "best_f.pt", weights_only=True)
    assert scores["checkpoint"] == "best_f" and scores["splits"] == [SYNTH_TEST_SPLIT] and scores["clips"] == 4
    steps = 2 * (len(trainer.train_set) // 4)
    assert scores["epoch"] == best["progress"]["epoch"] and scores["run_global_step"] == trainer.global_step == steps
    # parity: the loss and scores of best_f.pt rebuilt from its file (and not those of the last weights)
    ds = build_dataset(cfg.data, [SYNTH_TEST_SPLIT], train=False, seed=0)
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    for name in ("best_f", "last"):
        loaded = load_task(out / "checkpoints" / f"{name}.pt")
        with torch.no_grad():
            out_b = loaded.task.step(batch)
        if name == "last":
            assert abs(float(out_b.loss) - scores["loss"]) > 1e-5  # the two checkpoints are told apart
            continue
        assert scores["loss"] == pytest.approx(float(out_b.loss), abs=1e-6)
        preds = dict(zip(batch["clip_id"], out_b.output.numpy()))
        want = make_validator(cfg.metrics)(preds, dict(zip(batch["clip_id"], batch["target"].numpy())))
        for k in ("F", "DOAE", "RDE"):
            assert scores[k] == pytest.approx(want[k], abs=1e-6) or (np.isnan(scores[k]) and np.isnan(want[k])), k
    # the trainer keeps its last weights after scoring
    last = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(v, last[k]) for k, v in trainer.task.state_dict().items())
    # a finished run started again does not score (or log) a second time
    before = (out / "test_scores.json").stat().st_mtime_ns
    again = _held_out_cfg(sim, out, epochs=2, tensorboard=True, lr=2e-3, resume="auto")
    run_pretraining(again)
    assert (out / "test_scores.json").stat().st_mtime_ns == before
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("test/F")] == [scores["epoch"]]
    assert [e.step for e in acc.Scalars("val/F")] == [1, 2]


def test_resume_with_another_architecture_or_data_is_refused_before_loading(sim, tmp_path):
    out = tmp_path / "run"
    run_pretraining(pretrain_config(sim, out, small_tokenizer(d_model=16), max_steps=1))
    saved = (out / "config.resolved.yml").read_text()
    changed = pretrain_config(sim, out, small_tokenizer(d_model=32), resume="auto",
                              streams={"src_train_choices": []})
    with pytest.raises(ConfigError) as err:
        run_pretraining(changed)
    msg = str(err.value)
    assert "model.tokenizer.d_model: 16 -> 32" in msg and "data.streams.src_train_choices" in msg
    assert "missing keys" not in msg and "train.resume=never" in msg
    assert (out / "config.resolved.yml").read_text() == saved  # the refused start wrote nothing
    assert to_dict(changed)["train"]["resume"] == "auto"
