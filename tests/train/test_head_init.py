"""``model.head.init: lstsq``: the GREP / TREP head starts as the ridge fit of the pre-training head's raw outputs.

Tiny pre-training checkpoint + tiny BERT encoder on the simulated set: the fit written into the
head is checked against the closed form / numpy's least squares on the same data, a resumed run
keeps the checkpoint's weights, and misuse is a clear ConfigError.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from seld.accdoa import activate_output
from seld.constants import SYNTH_TRAIN_SPLIT
from seld.errors import ConfigError
from seld.models.heads import HeadConfig
from seld.tasks import finetune as finetune_stage
from seld.tasks.finetune import _pretrained_parts, run_finetuning
from seld.train.data import build_dataset
from seld.train.engine import Trainer
from seld.train.head_init import collect_fit_data, ridge_fit
from tests.train.conftest import finetune_config, pretrained_checkpoint


def _lstsq_config(sim, out, pre, **kw):
    cfg = finetune_config(sim, out, pre, "bert", "grep", **kw)
    cfg.model.head = HeadConfig(type="grep", init="lstsq", lstsq_ridge=1e-3)
    return cfg


def _closed_form(a: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    x = np.concatenate([a, np.ones((len(a), 1))], 1)
    gram = x.T @ x
    return np.linalg.solve(gram + ridge * np.mean(np.diag(gram)) * np.eye(len(gram)), x.T @ y)


def test_lstsq_init_sets_the_head_to_the_ridge_solution(sim, tmp_path_factory, tmp_path, monkeypatch):
    pre = pretrained_checkpoint(tmp_path_factory)
    cfg = _lstsq_config(sim, tmp_path / "ft", pre, epochs=1)
    monkeypatch.setattr(Trainer, "fit", lambda self: [])  # stop right after the init
    task = run_finetuning(cfg).task
    _, pre_model = _pretrained_parts(str(pre))
    train_ds = build_dataset(cfg.data, [SYNTH_TRAIN_SPLIT], train=False, seed=0)
    a, y = collect_fit_data(task, pre_model.head, train_ds)
    assert a.shape == (12 * 50, task.text_encoder.out_dim) and y.shape == (12 * 50, 117)

    wb = _closed_form(a.double().numpy(), y.double().numpy(), 1e-3)
    w, b = ridge_fit(a, y, 1e-3)
    np.testing.assert_allclose(torch.cat([w, b[None]]).numpy(), wb, rtol=1e-8, atol=1e-10)
    # ridge = least squares on the augmented system [X; sqrt(lam) I] [W; b] = [Y; 0]
    x = np.concatenate([a.double().numpy(), np.ones((len(a), 1))], 1)
    lam = 1e-3 * np.mean(np.sum(x * x, 0))
    x_aug = np.concatenate([x, np.sqrt(lam) * np.eye(x.shape[1])])
    y_aug = np.concatenate([y.double().numpy(), np.zeros((x.shape[1], y.shape[1]))])
    np.testing.assert_allclose(np.linalg.lstsq(x_aug, y_aug, rcond=None)[0], wb, rtol=1e-6, atol=1e-8)
    assert np.abs(wb[:-1]).max() > 1e-3  # the fit uses A, not only the bias

    fit = torch.from_numpy(x @ wb)  # the ridge solution's raw output on the training frames
    first = task.head.mlp[0]
    assert torch.equal(first.weight, torch.eye(first.in_features)) and not first.bias.any()
    with torch.no_grad():
        raw = task.head.mlp.eval()(a)
    assert (raw.double() - fit).abs().max() < 1e-5
    # and through the whole model (evaluation template): the activated fit, clip by clip
    batch = default_collate([train_ds[i] for i in range(len(train_ds))])
    with torch.no_grad():
        out = task.eval().predict(batch["src"], batch["doa"], batch["dist"])
    assert (out.reshape(-1, 117) - activate_output(fit.float())).abs().max() < 1e-5


def test_resumed_run_does_not_refit(sim, tmp_path_factory, tmp_path, monkeypatch):
    pre = pretrained_checkpoint(tmp_path_factory)
    calls, clock = [], {"now": 0.0}
    fit = finetune_stage.fit_head

    def counted_fit(*a, **k):
        calls.append(1)
        clock["now"] += 100.0  # the fit "takes" 100 s on the stage's clock
        return fit(*a, **k)

    monkeypatch.setattr(finetune_stage, "fit_head", counted_fit)
    monkeypatch.setattr(finetune_stage, "time", SimpleNamespace(monotonic=lambda: clock["now"]))
    out = tmp_path / "ft"
    run_finetuning(_lstsq_config(sim, out, pre, epochs=1, max_steps=1))
    assert calls == [1]
    last = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    assert last["elapsed_seconds"] >= 100.0  # the fit's time is part of the run's train.max_minutes budget
    saved = last["model"]
    monkeypatch.setattr(Trainer, "fit", lambda self: [])
    resumed = run_finetuning(_lstsq_config(sim, out, pre, epochs=1, max_steps=1, resume="auto"))
    assert resumed.resumed and calls == [1]
    for k, v in resumed.task.head.state_dict().items():
        assert torch.equal(v, saved[f"head.{k}"]), k


def test_lstsq_init_misuse_is_a_config_error(sim, tmp_path):
    with pytest.raises(ConfigError, match="head.init=lstsq needs head.activation=none"):
        HeadConfig(type="grep", init="lstsq", activation="gelu")
    HeadConfig(type="trep", init="lstsq", activation="gelu")  # the activation is GREP's; TREP is one Linear
    with pytest.raises(ConfigError, match="head.init: unknown value 'ridge'"):
        HeadConfig(init="ridge")
    out = tmp_path / "ft"
    with pytest.raises(ConfigError, match="model.head.init=lstsq needs model.pretrained"):
        run_finetuning(_lstsq_config(sim, out, None, max_steps=1))
    assert not out.exists()


def test_lstsq_init_of_a_trep_head_fits_the_hidden_states_at_the_tokens(sim, tmp_path_factory, tmp_path, monkeypatch):
    pre = pretrained_checkpoint(tmp_path_factory)
    cfg = finetune_config(sim, tmp_path / "ft", pre, "bert", "trep", epochs=1)
    cfg.model.head = HeadConfig(type="trep", init="lstsq", lstsq_ridge=1e-3)
    monkeypatch.setattr(Trainer, "fit", lambda self: [])  # stop right after the init
    task = run_finetuning(cfg).task
    _, pre_model = _pretrained_parts(str(pre))
    train_ds = build_dataset(cfg.data, [SYNTH_TRAIN_SPLIT], train=False, seed=0)
    x, y = collect_fit_data(task, pre_model.head, train_ds)
    width = task.text_encoder.width
    assert x.shape == (12 * 50, 3 * width) and y.shape == (12 * 50, 117)
    wb = _closed_form(x.double().numpy(), y.double().numpy(), 1e-3)
    np.testing.assert_allclose(task.head.linear.weight.detach().double().numpy(), wb[:-1].T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(task.head.linear.bias.detach().double().numpy(), wb[-1], rtol=1e-5, atol=1e-6)
    # not the pre-training head's weights any more (init_from_pretrain is replaced by the fit)
    assert not torch.allclose(task.head.linear.weight, pre_model.head.linear.weight)
    batch = default_collate([train_ds[i] for i in range(len(train_ds))])
    fit = torch.from_numpy(np.concatenate([x.double().numpy(), np.ones((len(x), 1))], 1) @ wb)
    with torch.no_grad():
        out = task.eval().predict(batch["src"], batch["doa"], batch["dist"])
    assert (out.reshape(-1, 117) - activate_output(fit.float())).abs().max() < 1e-4


def test_lstsq_fit_over_the_training_templates(sim, tmp_path_factory, tmp_path, monkeypatch):
    """``lstsq_templates: train``: each clip is read with one of ``train_templates`` (seeded), so the
    fit's rows are A under those templates, and the head written is that fit."""
    from seld.text.templates import TEMPLATES

    pre = pretrained_checkpoint(tmp_path_factory)
    cfg = _lstsq_config(sim, tmp_path / "ft", pre, epochs=1)
    cfg.model.head.lstsq_templates = "train"
    cfg.train_templates = [3, 7]
    monkeypatch.setattr(Trainer, "fit", lambda self: [])
    task = run_finetuning(cfg).task
    _, pre_model = _pretrained_parts(str(pre))
    train_ds = build_dataset(cfg.data, [SYNTH_TRAIN_SPLIT], train=False, seed=0)
    a_eval, y = collect_fit_data(task, pre_model.head, train_ds)
    a_train, y_train = collect_fit_data(task, pre_model.head, train_ds, templates=[3, 7], seed=cfg.train.seed)
    torch.testing.assert_close(y_train, y)  # the target is the pre-training head's: no template
    assert (a_train - a_eval).abs().max() > 1e-3  # other templates than the evaluation one
    # clip by clip, A equals the encoder's output under template 3 or 7, and both occur
    batch = default_collate([train_ds[i] for i in range(len(train_ds))])
    with torch.no_grad():
        tokens = task.eval().tokenizer(batch["src"], batch["doa"], batch["dist"])
        by_template = {i: task.head_input(tokens, [TEMPLATES[i]] * len(train_ds))[0] for i in (3, 7)}
    used = set()
    rows = a_train.reshape(len(train_ds), 50, -1)
    for clip in range(len(train_ds)):
        match = [i for i, x in by_template.items() if (x[clip] - rows[clip]).abs().max() < 1e-5]
        assert len(match) == 1, f"clip {clip}: A matches templates {match}"
        used.add(match[0])
    assert used == {3, 7}
    # the head holds the ridge fit of these rows (and not of the evaluation template's)
    wb = _closed_form(a_train.double().numpy(), y.double().numpy(), 1e-3)
    np.testing.assert_allclose(task.head.mlp[-1].weight.detach().double().numpy(), wb[:-1].T, rtol=1e-5, atol=1e-6)
    again, _ = collect_fit_data(task, pre_model.head, train_ds, templates=[3, 7], seed=cfg.train.seed)
    assert torch.equal(again, a_train)  # seeded
    with pytest.raises(ConfigError, match="lstsq_templates: unknown value 'all'"):
        HeadConfig(init="lstsq", lstsq_templates="all")
