"""``seld.tasks.STAGES`` is the one table of training stages: the CLI's training commands, the
requeue handling, ``load_task`` and the benchmark all read it, so a stage that is only a module and
one entry of it (``tests/tasks/toy_stage.py``) trains through the benchmark and loads back."""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest
import torch

from seld.cli import build_parser
from seld.commands import COMMANDS, TRAIN_COMMAND
from seld.errors import CheckpointError
from seld.tasks import STAGES, Stage
from tests.scripts import load_script

TOY = Stage("tests.tasks.toy_stage", "Train the toy task.", "(none)")


def test_the_training_commands_are_the_stages():
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices
    training = {name for name, p in choices.items() if p.get_default("_run").__module__ == TRAIN_COMMAND}
    assert training == set(STAGES) == {"pretrain", "finetune", "baseline"}
    assert {name for name, module in COMMANDS.items() if module == TRAIN_COMMAND} == set(STAGES)
    for name, stage in STAGES.items():
        assert choices[name].description == stage.help  # seld <stage> --help says what the table says


@pytest.mark.parametrize("name", list(STAGES))
def test_each_stage_module_gives_its_schema_builder_runner_and_rebuild(name):
    parts = STAGES[name].parts()
    assert parts is importlib.import_module(STAGES[name].module).PARTS and dataclasses.is_dataclass(parts.schema)
    assert parts.build.__module__ == parts.run.__module__ == parts.rebuild.__module__ == STAGES[name].module
    cfg = parts.schema()
    assert cfg.train.out_dir and cfg.data.features_dir  # every stage trains with the engine on features


def test_a_stage_added_to_the_table_trains_in_the_benchmark_and_loads_back(tmp_path, monkeypatch):
    from seld.tasks.loading import load_task

    monkeypatch.setitem(STAGES, "toy", TOY)
    bench = load_script("scripts/experiments/synthetic_benchmark.py", "synthetic_benchmark")
    cfg_dir = tmp_path / "configs"
    cfg_dir.mkdir()
    (cfg_dir / "toy.yml").write_text("train:\n  epochs: 2\n  batch_size: 4\n  lr: 0.01\n  num_workers: 0\n"
                                     "  device: cpu\n  tensorboard: false\n")
    run = bench.Run("toy", "Toy stage", "toy", "toy.yml", "baseline")
    seed_dir = tmp_path / "seed0"
    info = bench.train_run(run, seed_dir, seed=3, minutes=5.0, cfg_dir=cfg_dir, extra=[])
    assert info["steps"] == 8 and info["epochs"] == 2  # 16 toy clips in batches of 4, two epochs
    last = seed_dir / "runs" / "toy" / "checkpoints" / "last.pt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["config"]["train"]["seed"] == 3 and saved["task"]["stage"] == "toy"  # the benchmark's overrides
    loaded = load_task(last)
    assert loaded.stage == "toy" and type(loaded.task).__name__ == "ToyStageTask" and not loaded.task.training
    for k, v in loaded.task.state_dict().items():
        assert torch.equal(v, saved["model"][k]), k
    monkeypatch.delitem(STAGES, "toy")
    with pytest.raises(CheckpointError, match=r"last.pt: unknown training stage 'toy' \(expected 'pretrain', "
                                              r"'finetune' or 'baseline'\)"):
        load_task(last)


def test_a_checkpoint_without_a_stage_is_refused_naming_the_stages(tmp_path: Path):
    from seld.checkpoint import save_checkpoint
    from seld.tasks.loading import load_task

    path = save_checkpoint(tmp_path / "foreign.pt", {"model": {}, "task": {}})
    with pytest.raises(CheckpointError, match=r"foreign.pt: unknown training stage None \(expected 'pretrain', "
                                              r"'finetune' or 'baseline'\)"):
        load_task(path)
