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
from seld.tasks.finetune import _pretrained_parts, run_finetuning
from seld.tasks.loading import load_task
from seld.train.data import build_dataset
from seld.train.engine import Trainer
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
    monkeypatch.setattr(Trainer, "fit", lambda self: [])  # stop before the first step
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


@pytest.mark.parametrize("head", ["grep", "trep"])
def test_tokenizer_lr_zero_freezes_it_and_trains_the_head_exactly_as_gradients_at_lr_zero(
        sim, tmp_path_factory, tmp_path, head):
    """``tokenizer_lr: 0``: the tokenizer and the direct path leave the optimiser and no gradient is
    computed before the text head; the run is the same, bit for bit, as one that back-propagates into
    them and steps them at a learning rate of 0 (what the benchmark ran before), BatchNorm statistics
    included."""
    from seld.tasks.finetune import build_finetune_task
    from seld.tasks.runner import data_record
    from seld.train.engine import seed_everything

    pre = pretrained_checkpoint(tmp_path_factory)
    states, grads = [], []
    for frozen in (True, False):
        cfg = _residual_config(sim, tmp_path / f"ft{frozen}", pre, head, max_steps=3)
        cfg.tokenizer_lr = 0.0
        seed_everything(cfg.train.seed)
        task = build_finetune_task(cfg, data_record(cfg.data))
        assert task.frozen_tokenizer
        if not frozen:  # the old rule: gradients everywhere, the tokenizer's group at lr 0
            task.frozen_tokenizer = False
            task.tokenizer.requires_grad_(True)
            task.token_head.requires_grad_(True)
        trainer = Trainer(task, build_dataset(cfg.data, cfg.data.train_splits, train=True, seed=0), cfg.train)
        names = {g["name"] for g in trainer.optimizer.param_groups}
        assert names == ({"head"} if frozen else {"tokenizer", "head"})
        trainer.fit()
        assert trainer.global_step == 3
        grads.append([p.grad for p in [*task.tokenizer.parameters(), *task.token_head.parameters()]])
        states.append({k: v.clone() for k, v in task.state_dict().items()})
        trainer.close()
    assert all(g is None for g in grads[0])  # frozen: nothing computed there
    assert any(g is not None and g.abs().max() > 0 for g in grads[1])  # the old rule computed them
    assert states[0].keys() == states[1].keys()
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k
    _, pre_model = _pretrained_parts(str(pre))
    assert torch.equal(states[0]["token_head.linear.weight"], pre_model.head.linear.weight)  # held
    assert task.head.output_layer.weight.abs().max() > 0  # the text head learned
    # the checkpoint says so (its run's config): a loaded model counts the text head alone as trainable
    cfg = _residual_config(sim, tmp_path / "run", pre, head, max_steps=1)
    cfg.tokenizer_lr = 0.0
    run_finetuning(cfg)
    loaded = load_task(tmp_path / "run" / "checkpoints" / "last.pt").task
    assert loaded.frozen_tokenizer
    assert {n for n, p in loaded.named_parameters() if p.requires_grad} == {f"head.{n}" for n, _ in loaded.head.named_parameters()}
    # BatchNorm keeps its training behaviour, as with gradients at lr 0: the running statistics moved
    start = pre_model.tokenizer.state_dict()
    moved = [k for k, v in task.tokenizer.state_dict().items() if k.endswith("running_mean") and not torch.equal(v, start[k])]
    assert moved


def test_a_frozen_tokenizer_without_the_adpit_loss_or_a_negative_rate_is_named(tmp_path):
    from seld.config import from_dict
    from seld.errors import ConfigError as Err
    from seld.tasks.finetune import FinetuneConfig

    base = {"model": {"pretrained": str(tmp_path / "pre.pt")}, "tokenizer_lr": 0.0}
    assert from_dict(FinetuneConfig, base, source="ft.yml").tokenizer_lr == 0.0
    with pytest.raises(Err, match=r"ft.yml: .*tokenizer_lr 0 freezes the pre-trained tokenizer.*adpit_weight"):
        from_dict(FinetuneConfig, {**base, "loss": {"adpit_weight": 0.0}}, source="ft.yml")
    with pytest.raises(Err, match=r"ft.yml: .*tokenizer_lr must be >= 0"):
        from_dict(FinetuneConfig, {**base, "tokenizer_lr": -1e-4}, source="ft.yml")


def test_resuming_a_run_whose_optimiser_had_other_groups_names_both(sim, tmp_path_factory, tmp_path):
    """A last.pt written while the tokenizer was in the optimiser (gradients at lr 0, as before it was
    frozen) cannot give its optimiser state to a frozen run: a clear error, not torch's."""
    from seld.errors import CheckpointError
    from seld.tasks.finetune import build_finetune_task
    from seld.tasks.runner import data_record
    from seld.train.engine import seed_everything

    pre = pretrained_checkpoint(tmp_path_factory)
    cfg = _residual_config(sim, tmp_path / "ft", pre, "grep", max_steps=1, resume="auto")
    cfg.tokenizer_lr = 0.0
    seed_everything(0)
    task = build_finetune_task(cfg, data_record(cfg.data))
    task.frozen_tokenizer = False
    task.tokenizer.requires_grad_(True)
    task.token_head.requires_grad_(True)
    train_set = build_dataset(cfg.data, cfg.data.train_splits, train=True, seed=0)
    Trainer(task, train_set, cfg.train).fit()
    cfg.train.max_steps = 2
    with pytest.raises(CheckpointError, match=r"last.pt: its optimiser state does not fit this run: checkpoint groups "
                                              r"tokenizer \(\d+ tensors\), head \(\d+ tensors\), this run head"):
        Trainer(build_finetune_task(cfg, data_record(cfg.data)), train_set, cfg.train)


def test_frozen_tokenizer_eval_keeps_the_direct_path_exactly_the_pretrained_model(sim, tmp_path_factory, tmp_path):
    """``frozen_tokenizer_eval``: the held tokenizer runs as at evaluation in training too, so its
    BatchNorm statistics do not move and the direct path stays the pre-trained model bit for bit."""
    pre = pretrained_checkpoint(tmp_path_factory)
    cfg = _residual_config(sim, tmp_path / "ft", pre, "trep", max_steps=3)
    cfg.tokenizer_lr, cfg.frozen_tokenizer_eval = 0.0, True
    task = run_finetuning(cfg).task
    task.train()
    assert task.training and task.head.training and not task.tokenizer.training and not task.token_head.training
    _, pre_model = _pretrained_parts(str(pre))
    start = pre_model.tokenizer.state_dict()
    for k, v in task.tokenizer.state_dict().items():
        assert torch.equal(v, start[k]), k
    task.eval()
    pre_model.eval()
    batch = _eval_batch(cfg)
    with torch.no_grad():
        assert torch.equal(task.predict_direct_path(batch["src"], batch["doa"], batch["dist"]),
                           pre_model(batch["src"], batch["doa"], batch["dist"]))
    cfg.tokenizer_lr = 1e-4
    with pytest.raises(ValueError, match="frozen_tokenizer_eval needs tokenizer_lr 0"):
        cfg.__post_init__()
    cfg.tokenizer_lr, cfg.model.pretrained = 0.0, None  # nothing pre-trained to hold: said, not ignored
    with pytest.raises(ValueError, match="frozen_tokenizer_eval holds a pre-trained tokenizer.*model.pretrained is empty"):
        cfg.__post_init__()
