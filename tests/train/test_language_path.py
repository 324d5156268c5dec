"""Issue 27's fine-tuning options: the live language path (``projection_lr`` with a held tokenizer),
the alignment losses (``loss.embed``) wired into the step, and the random-weight text encoder
(``model.text_encoder.init: random``) rebuilt from a checkpoint."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import default_collate

from seld.checkpoint import load_checkpoint
from seld.losses import cosine_alignment_loss, infonce_alignment_loss, sentence_groups
from seld.models.text_encoders import TextEncoderConfig, build_text_encoder, minilm_path
from seld.tasks.finetune import FinetuneConfig, FinetuneLossConfig, build_finetune_task
from seld.tasks.loading import load_task
from seld.tasks.runner import data_record
from seld.text.sentences import frame_sentences
from seld.text.templates import TEMPLATES
from seld.train.data import build_dataset
from seld.train.engine import Trainer, seed_everything
from tests.train.conftest import finetune_config, pretrained_checkpoint, single_thread, text_encoder_config


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _batch(cfg: FinetuneConfig, n: int = 2) -> dict:
    ds = build_dataset(cfg.data, cfg.data.train_splits, train=False, seed=0)
    return default_collate([ds[i] for i in range(n)])


def _fit(cfg: FinetuneConfig, task) -> Trainer:
    trainer = Trainer(task, build_dataset(cfg.data, cfg.data.train_splits, train=True, seed=0), cfg.train,
                      resolved_config=cfg)  # stored in the checkpoint, as by run_finetuning
    trainer.fit()
    trainer.close()
    return trainer


def _live(sim, tmp_path_factory, tmp_path, **loss) -> FinetuneConfig:
    cfg = finetune_config(sim, tmp_path / "ft", pretrained_checkpoint(tmp_path_factory), "bert", "grep", max_steps=2)
    return dataclasses.replace(cfg, tokenizer_lr=0.0, projection_lr=1e-3,
                               loss=FinetuneLossConfig(**{"embed": "infonce", **loss}))


def test_live_projections_learn_through_the_frozen_encoder_the_rest_held(sim, tmp_path_factory, tmp_path):
    cfg = _live(sim, tmp_path_factory, tmp_path)
    seed_everything(0)
    task = build_finetune_task(cfg, data_record(cfg.data))
    assert task.frozen_tokenizer and task.live_projections
    trainable = {n for n, p in task.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in task.named_parameters()
                         if n.startswith(("tokenizer.projections.", "head.", "temperature."))}
    # one backward pass: gradients reach the projections through the frozen encoder, nothing before them
    task.train()
    task.step(_batch(cfg)).loss.backward()
    grads = {n: p.grad for n, p in task.named_parameters()}
    proj = [n for n in grads if n.startswith("tokenizer.projections.")]
    assert proj and all(grads[n] is not None and float(grads[n].abs().sum()) > 0 for n in proj)
    assert all(grads[n] is None for n in grads if n.startswith(("tokenizer.", "text_encoder.")) and n not in proj)
    assert grads["temperature.log_scale"] is not None
    task.zero_grad(set_to_none=True)

    before = _params(task)
    trainer = _fit(cfg, task)
    assert {g["name"]: g["lr"] for g in trainer.optimizer.param_groups} == {
        "projections": 1e-3, "head": cfg.train.lr, "temperature": cfg.train.lr}
    assert next(g for g in trainer.optimizer.param_groups if g["name"] == "temperature")["weight_decay"] == 0.0
    after = _params(task)
    moved = {n for n in after if not torch.equal(after[n], before[n])}
    assert {n for n in proj if n.endswith("weight")} <= moved
    assert "temperature.log_scale" in moved
    assert not {n for n in moved if n.startswith(("text_encoder.",)) or (n.startswith("tokenizer.") and n not in proj)}

    # the checkpoint rebuilds the same trainable set and the same weights (temperature included)
    loaded = load_task(tmp_path / "ft" / "checkpoints" / "last.pt").task
    assert loaded.live_projections and loaded.temperature is not None
    assert {n for n, p in loaded.named_parameters() if p.requires_grad} == trainable
    got = loaded.state_dict()
    assert all(torch.equal(v, got[k]) for k, v in task.state_dict().items())


def test_embed_losses_are_what_the_step_logs(sim, tmp_path_factory, tmp_path):
    """``loss.embed`` cosine and infonce: the step's alignment term recomputed from A, the ground-truth
    sentences of the evaluation template and the task's temperature."""
    for embed in ("cosine", "infonce"):
        cfg = _live(sim, tmp_path_factory, tmp_path, embed=embed, temperature=0.2)
        task = build_finetune_task(cfg, data_record(cfg.data)).eval()
        batch = _batch(cfg, 3)
        with torch.no_grad():
            logs = task.step(batch).logs
            a = task.embed(batch["src"], batch["doa"], batch["dist"])  # (3, 50, D)
        tmpl = TEMPLATES[cfg.eval_template]
        sentences = [s for t in batch["target"].numpy() for s in frame_sentences(t, tmpl, task.text_encoder.tokenizer.fits)]
        if embed == "cosine":
            gt = task.gt_cache.embed(sentences).reshape(a.shape)
            want = cosine_alignment_loss(a, gt)
        else:
            distinct, index = sentence_groups(sentences)
            assert 1 < len(distinct) < len(sentences)  # duplicates in the batch: the case that matters
            want = infonce_alignment_loss(a.reshape(-1, a.shape[-1]), task.gt_cache.embed(distinct), index, 1 / 0.2)
            assert logs["temperature"] == pytest.approx(0.2)
        assert logs["embed"] == pytest.approx(float(want), rel=1e-5)


def test_default_configs_keep_their_groups_and_state(sim, tmp_path_factory, tmp_path):
    pre = pretrained_checkpoint(tmp_path_factory)
    cfg = finetune_config(sim, tmp_path / "ft", pre, "bert", "grep")
    for tok_lr, names in ((1e-6, ["tokenizer", "head"]), (0.0, ["head"])):
        task = build_finetune_task(dataclasses.replace(cfg, tokenizer_lr=tok_lr))
        assert [g["name"] for g in task.param_groups(1e-3)] == names
        assert task.temperature is None and not task.live_projections
        assert not any(k.startswith("temperature") for k in task.state_dict())
    # projection_lr with a learning tokenizer: its own group; 0: held while the rest learns
    task = build_finetune_task(dataclasses.replace(cfg, tokenizer_lr=1e-6, projection_lr=1e-4))
    groups = {g["name"]: g for g in task.param_groups(1e-3)}
    assert (groups["tokenizer"]["lr"], groups["projections"]["lr"]) == (1e-6, 1e-4)
    assert {id(p) for p in groups["projections"]["params"]} == {id(p) for p in task.tokenizer.projections.parameters()}
    assert not {id(p) for p in groups["tokenizer"]["params"]} & {id(p) for p in task.tokenizer.projections.parameters()}
    held = build_finetune_task(dataclasses.replace(cfg, tokenizer_lr=1e-6, projection_lr=0.0))
    assert not any(p.requires_grad for p in held.tokenizer.projections.parameters())
    assert [g["name"] for g in held.param_groups(1e-3)] == ["tokenizer", "head"]


def test_nonsense_combinations_are_named_errors(sim, tmp_path_factory, tmp_path):
    pre = pretrained_checkpoint(tmp_path_factory)
    cfg = finetune_config(sim, tmp_path / "ft", pre, "bert", "grep")
    scratch = finetune_config(sim, tmp_path / "ft", None, "bert", "grep")
    with pytest.raises(ValueError, match="projection_lr.*model.pretrained"):
        dataclasses.replace(scratch, projection_lr=1e-4)
    with pytest.raises(ValueError, match="projection_lr must be >= 0"):
        dataclasses.replace(cfg, projection_lr=-1.0)
    with pytest.raises(ValueError, match="loss.embed infonce.*projection_lr > 0"):
        dataclasses.replace(cfg, tokenizer_lr=0.0, loss=FinetuneLossConfig(embed="infonce"))
    with pytest.raises(ValueError, match="adpit_weight > 0.*projection_lr > 0"):
        dataclasses.replace(cfg, tokenizer_lr=0.0, loss=FinetuneLossConfig(adpit_weight=0.0))
    dataclasses.replace(cfg, tokenizer_lr=0.0, projection_lr=1e-4, loss=FinetuneLossConfig(adpit_weight=0.0, embed="infonce"))
    with pytest.raises(ValueError, match="loss.embed: unknown alignment loss 'l2'; valid: mae, cosine, infonce"):
        FinetuneLossConfig(embed="l2")
    with pytest.raises(ValueError, match="infonce_direction"):
        FinetuneLossConfig(infonce_direction="text_to_audio")
    with pytest.raises(ValueError, match="temperature must be >= 0.01"):
        FinetuneLossConfig(temperature=0.001)


def test_random_text_encoder_checkpoint_rebuilds_the_twin(sim, tmp_path_factory, tmp_path):
    """A fine-tuning with ``init: random`` over a saved BERT folder: the checkpoint stores the frozen
    encoder's weights, which are the twin's (drawn from init_seed, not the folder's), and load_task
    rebuilds the same twin from the recorded config bit for bit before loading them."""
    from transformers import BertConfig, BertModel

    folder = tmp_path / "bert"
    torch.manual_seed(100)
    BertModel(BertConfig(**text_encoder_config("bert").model_config)).save_pretrained(folder)
    te = TextEncoderConfig(kind="bert", path=str(folder), tokenizer=str(minilm_path()), init="random", init_seed=5)
    cfg = finetune_config(sim, tmp_path / "ft", pretrained_checkpoint(tmp_path_factory), text_encoder=te, max_steps=1)
    seed_everything(0)
    task = build_finetune_task(cfg, data_record(cfg.data))
    _fit(cfg, task)
    ckpt = tmp_path / "ft" / "checkpoints" / "last.pt"
    stored = {k[len("text_encoder."):]: v for k, v in load_checkpoint(ckpt)["model"].items() if k.startswith("text_encoder.")}
    assert stored and stored.keys() == task.text_encoder.state_dict().keys()
    rebuilt = build_text_encoder(te).state_dict()
    pretrained = build_text_encoder(dataclasses.replace(te, init="pretrained")).state_dict()
    assert all(torch.equal(stored[k], rebuilt[k]) for k in stored)  # the seed alone gives the same weights
    assert not torch.equal(stored["model.embeddings.word_embeddings.weight"], pretrained["model.embeddings.word_embeddings.weight"])
    loaded = load_task(ckpt).task
    assert loaded.text_encoder.state_dict().keys() == stored.keys()
    assert all(torch.equal(v, stored[k]) for k, v in loaded.text_encoder.state_dict().items())
    assert load_checkpoint(ckpt)["task"]["model"]["text_encoder"]["init"] == "random"


@pytest.mark.parametrize("head", ["grep", "trep"])
def test_no_language_control_has_the_heads_trainable_size_without_an_encoder(sim, tmp_path_factory, tmp_path, head):
    from seld.tasks.finetune import run_finetuning

    pre = pretrained_checkpoint(tmp_path_factory)
    with_text = build_finetune_task(finetune_config(sim, tmp_path / "a", pre, "bert", head), None)
    cfg = finetune_config(sim, tmp_path / "none", pre, "bert", head, max_steps=2)
    model = dataclasses.replace(cfg.model, text_encoder=TextEncoderConfig(kind="none"))
    cfg = dataclasses.replace(cfg, model=model, loss=FinetuneLossConfig(embed_weight=0.0))
    task = build_finetune_task(cfg, data_record(cfg.data))
    trainable = {n: p.shape for n, p in task.named_parameters() if p.requires_grad}
    assert trainable == {n: p.shape for n, p in with_text.named_parameters()
                         if p.requires_grad and not n.startswith("text_encoder.")}
    assert not any(n.startswith("text_encoder.") for n, _ in task.named_parameters())
    # A is the mean of the three tokens; TREP reads the tokens themselves
    b = _batch(cfg)
    with torch.no_grad():
        task.eval()
        tokens = task.tokenizer(b["src"], b["doa"], b["dist"])
        assert torch.allclose(task.embed(b["src"], b["doa"], b["dist"]), tokens.mean(dim=2))
    task.train()
    out = task.step(b)
    assert set(out.logs) == {"adpit"} and torch.isfinite(out.loss)
    # trains, saves and loads back as the same control
    run_finetuning(cfg)
    loaded = load_task(tmp_path / "none" / "checkpoints" / "last.pt")
    assert loaded.task.text_encoder.embeds_sentences is False
    assert loaded.task.text_encoder.width == task.text_encoder.width
    with pytest.raises(ValueError, match="embed_weight 0"):
        dataclasses.replace(cfg, loss=FinetuneLossConfig(embed_weight=0.01))
