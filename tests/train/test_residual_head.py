"""``model.head.residual``: the pre-training head stays as the tokens' direct path, the GREP / TREP
head's output layer starts at zero, so a new fine-tuning run starts exactly at its tokenizer.

Tiny pre-training checkpoint + tiny BERT encoder on the simulated set.
"""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import default_collate

from seld.constants import SYNTH_TRAIN_SPLIT
from seld.errors import ConfigError
from seld.models.heads import HeadConfig
from seld.train import stages
from seld.train.data import build_dataset
from seld.train.stages import _pretrained_parts, load_task, run_finetuning
from tests.train.conftest import finetune_config, pretrained_checkpoint


def _residual_config(sim, out, pre, head: str, **train):
    cfg = finetune_config(sim, out, pre, "bert", head, **train)
    cfg.model.head = HeadConfig(type=head, residual=True)
    cfg.tokenizer_lr = 1e-3
    return cfg


def _eval_batch(cfg):
    ds = build_dataset(cfg.data, [SYNTH_TRAIN_SPLIT], train=False, seed=0)
    return default_collate([ds[i] for i in range(len(ds))])


@pytest.mark.parametrize("head", ["grep", "trep"])
def test_a_new_residual_run_starts_exactly_at_its_tokenizer(sim, tmp_path_factory, tmp_path, monkeypatch, head):
    pre = pretrained_checkpoint(tmp_path_factory)
    cfg = _residual_config(sim, tmp_path / "ft", pre, head, epochs=1)
    monkeypatch.setattr(stages.Trainer, "fit", lambda self: [])  # stop before the first step
    task = run_finetuning(cfg).task.eval()
    _, pre_model = _pretrained_parts(str(pre))
    pre_model.eval()
    batch = _eval_batch(cfg)
    with torch.no_grad():
        ours = task.predict(batch["src"], batch["doa"], batch["dist"])
        theirs = pre_model(batch["src"], batch["doa"], batch["dist"])
    assert ours.shape == theirs.shape == (12, 50, 117)
    assert (ours - theirs).abs().max() < 1e-6
    assert theirs.abs().max() > 1e-3  # a real output, not two zeros
    out_layer = task.head.output_layer
    assert not out_layer.weight.any() and not out_layer.bias.any()
    assert torch.equal(task.token_head.linear.weight, pre_model.head.linear.weight)
    # the direct path is pre-trained: it learns at the tokenizer's rate, the text head at train.lr
    groups = {g["name"]: g for g in task.param_groups(lr=5e-3)}
    assert groups["tokenizer"]["lr"] == 1e-3 and groups["head"]["lr"] == 5e-3
    tok_ids = {id(p) for p in groups["tokenizer"]["params"]}
    assert all(id(p) in tok_ids for p in task.token_head.parameters())
    assert not any(id(p) in tok_ids for p in task.head.parameters())


def test_the_text_head_learns_and_the_checkpoint_rebuilds_the_residual_model(sim, tmp_path_factory, tmp_path):
    pre = pretrained_checkpoint(tmp_path_factory)
    cfg = _residual_config(sim, tmp_path / "ft", pre, "grep", max_steps=4)
    cfg.train.lr = 1e-2
    task = run_finetuning(cfg).task.eval()
    out_layer = task.head.output_layer
    assert out_layer.weight.abs().max() > 1e-4  # the text encoder's read-out moved off zero
    _, pre_model = _pretrained_parts(str(pre))
    assert not torch.equal(task.token_head.linear.weight, pre_model.head.linear.weight)  # trained too

    loaded = load_task(tmp_path / "ft" / "checkpoints" / "last.pt")  # inference / evaluate path
    assert loaded.task.token_head is not None
    batch = _eval_batch(cfg)
    with torch.no_grad():
        a = task.predict(batch["src"], batch["doa"], batch["dist"])
        b = loaded.task.predict(batch["src"], batch["doa"], batch["dist"])
        # the text path now changes the output: without it the model is the tokens' path alone
        tokens_only = task.token_head(task.tokenizer(batch["src"], batch["doa"], batch["dist"]))
        direct = task.predict_direct_path(batch["src"], batch["doa"], batch["dist"])
    assert (a - b).abs().max() < 1e-6
    assert (a - tokens_only).abs().max() > 1e-4
    assert torch.equal(direct, tokens_only)  # what the benchmark compares with to measure the text path


def test_direct_path_alone_needs_a_residual_model(sim, tmp_path_factory):
    from tests.train.conftest import finetuned_checkpoint

    task = load_task(finetuned_checkpoint(tmp_path_factory, "bert", "grep")).task
    x = torch.zeros(1, 1, 64, 50)
    with pytest.raises(ValueError, match="no direct path"):
        task.predict_direct_path(x, x, x)


def test_residual_with_a_least_squares_head_is_a_config_error():
    with pytest.raises(ConfigError, match="head.residual .* head.init must be random"):
        HeadConfig(type="grep", residual=True, init="lstsq")
