"""Fine-tuning recipe option head_warmup_steps: only the head learns during the warm-up, the count
survives a resume and the checkpoint rebuilds with it."""
from __future__ import annotations

import dataclasses

import torch

from seld.tasks.finetune import FinetuneConfig, build_finetune_task
from seld.tasks.loading import load_task
from seld.tasks.runner import data_record
from seld.train.data import build_dataset
from seld.train.engine import Trainer, seed_everything
from tests.train.conftest import finetune_config, pretrained_checkpoint


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


def _fit(cfg: FinetuneConfig, task) -> Trainer:
    trainer = Trainer(task, build_dataset(cfg.data, cfg.data.train_splits, train=True, seed=0), cfg.train)
    trainer.fit()
    trainer.close()
    return trainer


def test_head_warmup_freezes_the_tokenizer_then_releases_it(sim, tmp_path_factory, tmp_path):
    pre = pretrained_checkpoint(tmp_path_factory)
    cfg = finetune_config(sim, tmp_path / "ft", pre, "bert", "grep", max_steps=2, resume="auto")
    cfg = dataclasses.replace(cfg, head_warmup_steps=2, tokenizer_lr=1e-3)
    seed_everything(0)
    task = build_finetune_task(cfg, data_record(cfg.data))
    tok0, head0 = _params(task.tokenizer), _params(task.head)
    _fit(cfg, task)
    assert int(task.warmup_steps_done) == 2
    for n, p in _params(task.tokenizer).items():
        assert torch.equal(p, tok0[n]), n  # no gradient reached the tokenizer
    assert sum(not torch.equal(p, head0[n]) for n, p in _params(task.head).items()) == len(head0)

    # resume for a third step: the warm-up is over, so the tokenizer moves (by about its lr)
    cfg3 = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_steps=3))
    seed_everything(0)
    task3 = build_finetune_task(cfg3, data_record(cfg3.data))
    trainer = _fit(cfg3, task3)
    assert trainer.global_step == 3 and int(task3.warmup_steps_done) == 2
    tok2 = _params(task.tokenizer)
    moved = max((p - tok2[n]).abs().max().item() for n, p in _params(task3.tokenizer).items())
    assert 0.5e-3 < moved < 2e-3

    loaded = load_task(tmp_path / "ft" / "checkpoints" / "last.pt")
    assert loaded.task.head_warmup_steps == 2 and int(loaded.task.warmup_steps_done) == 2


def test_without_warmup_the_tokenizer_learns_from_the_first_step(sim, tmp_path_factory, tmp_path):
    cfg = finetune_config(sim, tmp_path / "ft", pretrained_checkpoint(tmp_path_factory), "bert", "grep", max_steps=1)
    cfg = dataclasses.replace(cfg, tokenizer_lr=1e-3)
    seed_everything(0)
    task = build_finetune_task(cfg, data_record(cfg.data))
    tok0 = _params(task.tokenizer)
    _fit(cfg, task)
    assert not hasattr(task, "warmup_steps_done")  # the authors' recipe keeps the state dict as it was
    assert max((p - tok0[n]).abs().max().item() for n, p in _params(task.tokenizer).items()) > 0.5e-3


def test_train_templates_restrict_the_training_draws(sim, tmp_path_factory, tmp_path):
    import pytest

    from seld.text.templates import TEMPLATES

    cfg = finetune_config(sim, tmp_path / "ft", pretrained_checkpoint(tmp_path_factory), "bert", "grep")
    fixed = build_finetune_task(dataclasses.replace(cfg, train_templates=[1, 3]), data_record(cfg.data)).train()
    default = build_finetune_task(cfg, data_record(cfg.data)).train()
    torch.manual_seed(0)
    assert set(fixed._choose_templates(200)) == {TEMPLATES[1], TEMPLATES[3]}
    torch.manual_seed(0)
    drawn = default._choose_templates(200)
    assert len(set(drawn)) > 40
    torch.manual_seed(0)  # the default keeps the authors' draws exactly (same RNG calls as before)
    assert drawn == [TEMPLATES[i] for i in torch.randint(len(TEMPLATES), (200,)).tolist()]
    assert set(fixed.eval()._choose_templates(5)) == {TEMPLATES[cfg.eval_template]}
    with pytest.raises(ValueError, match="train_templates"):
        dataclasses.replace(cfg, train_templates=[])


def test_take_frames_picks_each_clips_own_frames():
    from seld.tasks.finetune_task import take_frames

    x = torch.arange(2 * 5 * 3).reshape(2, 5, 3)
    frames = torch.tensor([[0, 4], [1, 2]])
    got = take_frames(x, frames)
    assert got.shape == (2, 2, 3)
    assert torch.equal(got[0], x[0, [0, 4]]) and torch.equal(got[1], x[1, [1, 2]])


def test_train_frames_subsample_the_text_encoder_frames_in_training_only(sim, tmp_path_factory, tmp_path):
    import pytest

    from seld.losses import adpit_loss
    from seld.tasks.finetune_task import take_frames

    cfg = finetune_config(sim, tmp_path / "ft", pretrained_checkpoint(tmp_path_factory), "bert", "grep")
    cfg = dataclasses.replace(cfg, train_frames=3)
    task = build_finetune_task(cfg, data_record(cfg.data)).train()
    ds = build_dataset(cfg.data, cfg.data.train_splits, train=True, seed=0)
    items = [ds[i] for i in range(2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("src", "doa", "dist", "target")}
    frames_total = batch["target"].shape[1]

    torch.manual_seed(5)
    out = task.step(batch)
    assert out.output.shape == (2, 3, 117)
    # the same draws again: templates first, then the frames; the loss is on exactly those frames
    torch.manual_seed(5)
    task._choose_templates(2)
    frames = torch.rand(2, frames_total).argsort(dim=1)[:, :3].sort(dim=1).values
    assert all(len(set(f.tolist())) == 3 for f in frames)
    expected = adpit_loss(out.output.float(), take_frames(batch["target"], frames))
    assert out.logs["adpit"] == pytest.approx(float(expected.detach()), rel=1e-6)

    task.eval()  # validation / inference: every frame
    with torch.no_grad():
        assert task.step(batch).output.shape == (2, frames_total, 117)
        assert task.predict(batch["src"], batch["doa"], batch["dist"]).shape == (2, frames_total, 117)
    with pytest.raises(ValueError, match="train_frames"):
        dataclasses.replace(cfg, train_frames=0)


def test_mean_pooling_is_trained_and_restored_from_the_checkpoint(sim, tmp_path_factory, tmp_path):
    """model.text_encoder.pooling=mean: the checkpoint rebuilds with it (not the default token), and
    the reloaded model predicts what the trained one does."""
    from torch.utils.data import default_collate

    from tests.train.conftest import text_encoder_config

    pre = pretrained_checkpoint(tmp_path_factory)
    te = dataclasses.replace(text_encoder_config("bert"), pooling="mean")
    cfg = finetune_config(sim, tmp_path / "ft", pre, "bert", "grep", text_encoder=te, max_steps=1)
    seed_everything(0)
    task = build_finetune_task(cfg, data_record(cfg.data))
    assert task.text_encoder.pooling == "mean"
    _fit(cfg, task)
    loaded = load_task(tmp_path / "ft" / "checkpoints" / "last.pt").task.eval()
    assert loaded.text_encoder.pooling == "mean"
    ds = build_dataset(cfg.data, cfg.data.val_splits or cfg.data.train_splits, train=False, seed=0)
    batch = default_collate([ds[i] for i in range(2)])
    with torch.no_grad():
        want = task.eval().predict(batch["src"], batch["doa"], batch["dist"])
        got = loaded.predict(batch["src"], batch["doa"], batch["dist"])
        a_mean = loaded.embed(batch["src"], batch["doa"], batch["dist"])
        loaded.text_encoder.pooling = "token"
        a_token = loaded.embed(batch["src"], batch["doa"], batch["dist"])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert (a_mean - a_token).abs().max() > 1e-3  # the option changes A
