"""Pre-training and fine-tuning stages on a tiny simulated feature set (issues 5 and 6).

Real runs through ``run_pretraining`` / ``run_finetuning`` / the engine on CPU: learning,
bitwise resume, checkpoints that rebuild the model, start-up errors, the eight head/encoder
combinations, frozen encoder weights and learning rates. The learning numbers are printed
(``pytest -s``).
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.data import default_collate

from seld.checkpoint import load_checkpoint
from seld.cli import main
from seld.config import load_config, to_dict
from seld.constants import SYNTH_TEST_SPLIT, SYNTH_TRAIN_SPLIT
from seld.errors import CheckpointError, ConfigError, DataError
from seld.models.text_encoders import TextEncoderConfig
from seld.tasks.finetune import build_finetune_task, run_finetuning
from seld.tasks.finetune_task import FinetuneTask
from seld.tasks.loading import load_task
from seld.tasks.pretrain import PretrainConfig, build_pretrain_task, run_pretraining
from seld.tasks.runner import data_record
from seld.train.data import build_dataset
from seld.train.engine import Trainer, seed_everything
from tests.models.tiny import EMBED_DIM, tiny_beats_encoder, tiny_tokenizer
from tests.train.conftest import (
    MINILM_WIDTH,
    finetune_config,
    pretrain_config,
    pretrained_checkpoint,
    single_thread,
    small_tokenizer,
)


def _full_batch(cfg, splits=(SYNTH_TRAIN_SPLIT,)) -> dict:
    """Every clip of ``splits`` as one evaluation batch (source stream = logmel_mid)."""
    ds = build_dataset(cfg.data, list(splits), train=False, seed=0)
    return default_collate([ds[i] for i in range(len(ds))])


@torch.no_grad()
def _eval_logs(task, batch) -> dict[str, float]:
    was_training = task.training
    task.eval()
    out = task.step(batch)
    task.train(was_training)
    return {"loss": float(out.loss), **out.logs}


def _model_state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


# ============================================================================ issue 5: pre-training
LEARN_EPOCHS = 60
VALIDATE_EVERY = 10


@pytest.fixture(scope="module")
def learned(sim, tmp_path_factory):
    """A 60-epoch pre-training of the small tokenizer on the 12 training clips (validated, TensorBoard on).

    The random L/R source choice is off so the training input is the evaluation input; the loss is
    measured on all 12 clips in eval mode at the seeded initial weights and after training.
    """
    out = tmp_path_factory.mktemp("learned")
    cfg = pretrain_config(
        sim, out, small_tokenizer(d_model=32), val=True, streams={"src_train_choices": []},
        epochs=LEARN_EPOCHS, lr=2e-3, validate_every_epochs=VALIDATE_EVERY, tensorboard=True, log_every_steps=3,
    )
    batch = _full_batch(cfg)
    with single_thread():  # module fixtures run before the per-test thread limit
        seed_everything(cfg.train.seed)  # run_pretraining seeds the same way before building the task
        before = _eval_logs(build_pretrain_task(cfg, data_record(cfg.data)), batch)["loss"]
        trainer = run_pretraining(cfg)
        after = _eval_logs(trainer.task, batch)["loss"]
    return {"cfg": cfg, "trainer": trainer, "out": out, "batch": batch, "before": before, "after": after}


def test_pretraining_overfits_tiny_set(learned):
    hist = learned["trainer"].history
    first, last = hist[0]["train_loss"], hist[-1]["train_loss"]
    before, after = learned["before"], learned["after"]
    print(f"\npre-training ADPIT, {LEARN_EPOCHS} epochs on 12 clips: train loss epoch 1 {first:.4f} -> "
          f"epoch {len(hist)} {last:.4f}; eval loss on the training clips {before:.4f} -> {after:.4f} "
          f"({100 * (1 - after / before):.1f}% lower)")
    assert len(hist) == LEARN_EPOCHS
    assert after < 0.2 * before
    assert last < 0.3 * first


def test_pretraining_checkpoints_load_and_rebuild_the_model(learned):
    ckpt_dir = learned["out"] / "checkpoints"
    for name in ("last", "best_f", "best_loss"):
        ckpt = torch.load(ckpt_dir / f"{name}.pt", map_location="cpu", weights_only=True)
        assert ckpt["task"]["stage"] == "pretrain"
        assert set(ckpt["task"]["normalization"]) >= {"logmel_mid", "ivy", "direct_logmel"}
        assert ckpt["task"]["features"]["wpe"]["taps"] == 5  # the front end travels with the model
    last = load_checkpoint(ckpt_dir / "last.pt")
    assert last["progress"]["epoch"] == LEARN_EPOCHS and last["progress"]["global_step"] == LEARN_EPOCHS * 3
    best = load_checkpoint(ckpt_dir / "best_loss.pt")
    val_losses = [h["val_loss"] for h in learned["trainer"].history if "val_loss" in h]
    assert len(val_losses) == LEARN_EPOCHS // VALIDATE_EVERY and best["best"]["loss"] == pytest.approx(min(val_losses))

    loaded = load_task(ckpt_dir / "last.pt")
    assert loaded.stage == "pretrain" and not loaded.task.training
    assert loaded.streams.src_train_choices == []
    batch = learned["batch"]
    task = learned["trainer"].task.eval()
    with torch.no_grad():
        want = task.predict(batch["src"], batch["doa"], batch["dist"])
        got = loaded.task.predict(batch["src"], batch["doa"], batch["dist"])
    assert got.shape == (12, 50, 117)
    assert torch.equal(got, want)


def test_tensorboard_gets_train_loss_and_val_f(learned):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = list((learned["out"] / "tensorboard").glob("events.out.tfevents.*"))
    assert files
    acc = EventAccumulator(str(learned["out"] / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"train/loss", "train/adpit", "val/F", "val/loss", "lr/all"} <= set(tags)
    train = acc.Scalars("train/loss")
    assert [e.step for e in train] == list(range(3, LEARN_EPOCHS * 3 + 1, 3))
    assert train[-1].value < 0.35 * train[0].value  # per-log-step values are noisier than epoch means
    val_f = acc.Scalars("val/F")
    assert [e.step for e in val_f] == list(range(VALIDATE_EVERY, LEARN_EPOCHS + 1, VALIDATE_EVERY))
    assert all(0.0 <= e.value <= 1.0 for e in val_f)


def test_initial_weights_follow_train_seed(sim, tmp_path):
    states = []
    for name, global_seed in (("a", 1), ("b", 2)):
        torch.manual_seed(global_seed)  # whatever the process RNG, train.seed decides
        run_pretraining(pretrain_config(sim, tmp_path / name, max_steps=1))
        states.append(_model_state(tmp_path / name / "checkpoints" / "last.pt"))
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


def test_pretraining_resume_is_bitwise_identical(sim, tmp_path):
    # dropout 0.1 in every conformer and the random L/R source choice: the RNG state matters
    def cfg(out: Path, **kw) -> PretrainConfig:
        return pretrain_config(sim, out, small_tokenizer(d_model=16, dropout=0.1), epochs=2, **kw)

    run_pretraining(cfg(tmp_path / "full"))
    run_pretraining(cfg(tmp_path / "split", max_steps=4))  # 3 steps per epoch: stops mid epoch 2
    stopped = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert stopped["progress"] == {"epoch": 1, "step_in_epoch": 1, "global_step": 4}
    torch.manual_seed(1234)
    resumed = run_pretraining(cfg(tmp_path / "split", resume="auto"))
    assert resumed.global_step == 6 and resumed.epoch == 2
    full = _model_state(tmp_path / "full" / "checkpoints" / "last.pt")
    again = _model_state(tmp_path / "split" / "checkpoints" / "last.pt")
    assert full.keys() == again.keys()
    for k in full:
        assert torch.equal(full[k], again[k]), k
    assert any(not torch.equal(again[k], stopped["model"][k]) for k in again)  # the resumed run did train


def test_channels_last_trains_the_same_weights_and_its_checkpoint_loads_anywhere(sim, tmp_path):
    """``train.channels_last`` stores conv kernels channels-last and changes only summation order."""
    def cfg(out: Path, **kw) -> PretrainConfig:
        return pretrain_config(sim, out, small_tokenizer(d_model=16, dropout=0.1), epochs=2, **kw)

    plain = run_pretraining(cfg(tmp_path / "plain"))
    fast = run_pretraining(cfg(tmp_path / "cl", channels_last=True))
    convs = [m.weight for m in fast.task.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in convs
                         if w.shape[1] > 1 and w.shape[2:] != (1, 1))
    a = _model_state(tmp_path / "plain" / "checkpoints" / "last.pt")
    b = _model_state(tmp_path / "cl" / "checkpoints" / "last.pt")
    ref = cfg(tmp_path / "x")
    seed_everything(plain.cfg.seed)  # run_pretraining seeds the same way before building the task
    init = build_pretrain_task(ref, data_record(ref.data)).state_dict()
    assert a.keys() == b.keys() == init.keys()
    floats = [k for k in a if a[k].is_floating_point()]
    trained = max(float((a[k] - init[k]).abs().max()) for k in floats)
    apart = max(float((b[k] - a[k]).abs().max()) for k in floats)
    # Adam turns rounding-level gradient differences into up to lr-sized steps on near-zero gradients, so
    # not bit-equal: the runs end 2.5e-4 apart where training moved the weights by 0.57 (0.04 %)
    print(f"\nchannels-last vs default after 6 steps: weights apart {apart:.2e}, moved by training {trained:.2e}")
    assert trained > 1e-2 and apart < 1e-2 * trained, (apart, trained)
    assert [h["train_loss"] for h in fast.history] == pytest.approx([h["train_loss"] for h in plain.history], rel=1e-4)
    # a channels-last checkpoint loads into a default-layout model (and predicts the same)
    loaded = load_task(tmp_path / "cl" / "checkpoints" / "last.pt")
    batch = _full_batch(ref)
    with torch.no_grad():
        want = plain.task.eval().predict(batch["src"], batch["doa"], batch["dist"])
        got = loaded.task.predict(batch["src"], batch["doa"], batch["dist"])
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------------------- start-up errors
def _yaml(cfg: PretrainConfig, path: Path, **edits) -> Path:
    """Write ``cfg`` as YAML with dotted-key ``edits`` applied to the dict."""
    data = to_dict(cfg)
    for dotted, value in edits.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _bad_pretrain_yaml(kind: str, sim, tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """(YAML path, out_dir, words the error must contain) for each start-up error."""
    out = tmp_path / "run"
    cfg = pretrain_config(sim, out, max_steps=1)
    if kind == "encoder":
        path = _yaml(cfg, tmp_path / "cnn.yml", **{"model.tokenizer.source_encoder": "cnn"})
        return path, out, ["cnn.yml", "source_encoder 'cnn'", "valid names: beats, rcc"]
    if kind == "channel":
        path = _yaml(cfg, tmp_path / "chan.yml", **{"data.streams.doa": ["logmel_l", "logmel_r", "ipd_cos", "ild"]})
        return path, out, [str(sim.features / f"{SYNTH_TRAIN_SPLIT}.h5"), "ipd_cos", "not in the file"]
    assert kind == "beats"
    cfg.model.tokenizer = tiny_tokenizer("beats", beats=tiny_beats_encoder(checkpoint="/nonexistent.pt"))
    return _yaml(cfg, tmp_path / "beats.yml"), out, ["/nonexistent.pt", "not found"]


def test_unknown_source_encoder_is_a_config_error(sim, tmp_path):
    path, _, words = _bad_pretrain_yaml("encoder", sim, tmp_path)
    with pytest.raises(ConfigError) as exc:
        load_config(path, PretrainConfig)
    for w in words:
        assert w in str(exc.value)


def test_missing_feature_channel_stops_before_training(sim, tmp_path):
    path, out, words = _bad_pretrain_yaml("channel", sim, tmp_path)
    cfg = load_config(path, PretrainConfig)
    with pytest.raises(DataError) as exc:
        run_pretraining(cfg)
    for w in words:
        assert w in str(exc.value)
    assert not out.exists()  # no trainer, no checkpoint folder


def test_missing_beats_checkpoint_stops_before_training(sim, tmp_path):
    path, out, words = _bad_pretrain_yaml("beats", sim, tmp_path)
    cfg = load_config(path, PretrainConfig)
    assert cfg.model.tokenizer.beats.checkpoint == "/nonexistent.pt"
    with pytest.raises((CheckpointError, ConfigError)) as exc:
        run_pretraining(cfg)
    for w in words:
        assert w in str(exc.value)
    assert not out.exists()


@pytest.mark.parametrize("kind", ["encoder", "channel", "beats"])
def test_pretrain_cli_reports_startup_errors(kind, sim, tmp_path, capsys):
    path, out, words = _bad_pretrain_yaml(kind, sim, tmp_path)
    assert main(["pretrain", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("seld pretrain: error: ")
    for w in words:
        assert w in err
    assert "Traceback" not in err and not out.exists()


# ============================================================================ issue 6: fine-tuning
def test_minilm_finetuning_step_runs_offline(sim, tmp_path_factory, tmp_path):
    pre = pretrained_checkpoint(tmp_path_factory, "rcc", embed_dim=MINILM_WIDTH)
    cfg = finetune_config(sim, tmp_path / "ft", pre, text_encoder=TextEncoderConfig(kind="bert", name="minilm"),
                          head="grep", max_steps=1)
    trainer = run_finetuning(cfg)
    task = trainer.task
    assert isinstance(task, FinetuneTask)
    assert task.text_encoder.width == MINILM_WIDTH and task.text_encoder.out_dim == MINILM_WIDTH
    assert trainer.global_step == 1
    batch = _full_batch(cfg, (SYNTH_TEST_SPLIT,))
    logs = _eval_logs(task, batch)
    assert all(math.isfinite(v) for v in logs.values())
    assert logs["embed"] > 0 and logs["adpit"] > 0


COMBOS = [(src, kind, head) for src in ("rcc", "beats") for kind in ("clip", "hf_clip", "bert")
          for head in ("grep", "trep")]


@pytest.mark.parametrize("src, kind, head", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_every_head_encoder_combination_trains_one_step(src, kind, head, sim, tmp_path_factory, tmp_path):
    pre = pretrained_checkpoint(tmp_path_factory, src)
    cfg = finetune_config(sim, tmp_path / "ft", pre, kind, head, max_steps=1)
    pre_state = _model_state(pre)
    if head == "trep":
        assert cfg.model.head.init_from_pretrain
        seed_everything(0)
        task = build_finetune_task(cfg)
        assert torch.equal(task.head.linear.weight, pre_state["model.head.linear.weight"])
        assert torch.equal(task.head.linear.bias, pre_state["model.head.linear.bias"])
    trainer = run_finetuning(cfg)
    assert trainer.global_step == 1
    ckpt = load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.pt")
    assert ckpt["task"]["stage"] == "finetune" and ckpt["task"]["model"]["head"]["type"] == head
    assert ckpt["task"]["model"]["tokenizer"]["source_encoder"] == src
    # the tokenizer started from the pre-training weights: one Adam step moves each by at most tokenizer_lr
    params = dict(trainer.task.tokenizer.named_parameters())
    assert params
    for name, p in params.items():
        assert (p.detach() - pre_state[f"model.tokenizer.{name}"]).abs().max() <= 1.1e-6, name  # + float32 rounding
    out = trainer.task.eval().predict(*(_full_batch(cfg, (SYNTH_TEST_SPLIT,))[k][:2] for k in ("src", "doa", "dist")))
    assert out.shape == (2, 50, 117) and torch.isfinite(out).all()


def test_encoder_frozen_while_tokenizer_and_head_learn(sim, tmp_path_factory, tmp_path):
    cfg = finetune_config(sim, tmp_path / "ft", pretrained_checkpoint(tmp_path_factory), "bert", "grep", max_steps=1)
    seed_everything(0)
    task = build_finetune_task(cfg, data_record(cfg.data))
    before = {k: v.detach().clone() for k, v in task.state_dict().items()}
    params = {f"{prefix}{n}" for prefix, module in (("tokenizer.", task.tokenizer), ("head.", task.head))
              for n, p in module.named_parameters() if p.requires_grad}
    trainer = Trainer(task, build_dataset(cfg.data, cfg.data.train_splits, train=True, seed=0), cfg.train)
    trainer.fit()
    assert trainer.global_step == 1
    after = task.state_dict()
    enc = [k for k in before if k.startswith("text_encoder.")]
    assert len(enc) > 10
    for k in enc:
        assert torch.equal(before[k], after[k]), k
    for prefix, module in (("tokenizer.", task.tokenizer), ("head.", task.head)):
        trainable = [prefix + n for n, p in module.named_parameters() if p.requires_grad]
        assert trainable
        unchanged = [k for k in trainable if torch.equal(before[k], after[k])]
        # only biases whose gradient is zero by construction may stay: a conv bias before BatchNorm,
        # the attention-pooling score bias (softmax ignores a shift)
        assert all(k.endswith("depthwise.bias") or k.endswith("pool.score.bias") for k in unchanged), unchanged
        assert len(unchanged) < 0.2 * len(trainable)
    # the tokenizer moved by about tokenizer_lr (Adam's first step is lr * sign(grad)), the head by about lr
    tok_step = max((after[k] - before[k]).abs().max().item() for k in params if k.startswith("tokenizer."))
    head_step = max((after[k] - before[k]).abs().max().item() for k in params if k.startswith("head."))
    assert tok_step == pytest.approx(1e-6, rel=0.05) and head_step == pytest.approx(1e-3, rel=0.05)


def test_finetuning_lowers_both_losses(sim, tmp_path_factory, tmp_path):
    epochs = 10
    cfg = finetune_config(sim, tmp_path / "ft", pretrained_checkpoint(tmp_path_factory), "bert", "grep",
                          epochs=epochs, batch_size=4, lr=3e-3)
    cfg.tokenizer_lr = 1e-3  # the tokenizer must move for the embedding loss to fall
    cfg.loss.embed_weight = 1.0
    batch = _full_batch(cfg)
    seed_everything(0)
    task = build_finetune_task(cfg, data_record(cfg.data))
    before = _eval_logs(task, batch)
    trainer = Trainer(task, build_dataset(cfg.data, cfg.data.train_splits, train=True, seed=0), cfg.train)
    trainer.fit()
    after = _eval_logs(task, batch)
    hist = trainer.history
    print(f"\nfine-tuning RCC-BERT(tiny)-GREP, {epochs} epochs on 12 clips (eval template, training clips): "
          f"adpit {before['adpit']:.4f} -> {after['adpit']:.4f}, embed {before['embed']:.3e} -> "
          f"{after['embed']:.3e}; train loss epoch 1 {hist[0]['train_loss']:.4f} -> epoch {epochs} "
          f"{hist[-1]['train_loss']:.4f}")
    assert after["adpit"] < 0.9 * before["adpit"]
    assert after["embed"] < 0.8 * before["embed"]
    assert hist[-1]["train_loss"] < 0.9 * hist[0]["train_loss"]


def test_finetuning_resume_is_bitwise_identical(sim, tmp_path_factory, tmp_path):
    """Training draws a template per clip from the global RNG: the checkpoint's RNG state must restore it."""
    pre = pretrained_checkpoint(tmp_path_factory)

    def cfg(out: Path, **kw):
        return finetune_config(sim, out, pre, "bert", "trep", epochs=2, batch_size=4, **kw)

    run_finetuning(cfg(tmp_path / "full"))
    run_finetuning(cfg(tmp_path / "split", max_steps=4))
    torch.manual_seed(99)
    resumed = run_finetuning(cfg(tmp_path / "split", resume="auto"))
    assert resumed.global_step == 6
    full = _model_state(tmp_path / "full" / "checkpoints" / "last.pt")
    again = _model_state(tmp_path / "split" / "checkpoints" / "last.pt")
    for k in full:
        assert torch.equal(full[k], again[k]), k


def test_finetuning_from_a_finetuning_checkpoint_is_refused(sim, tmp_path_factory, tmp_path):
    from tests.train.conftest import finetuned_checkpoint

    wrong = finetuned_checkpoint(tmp_path_factory, "bert", "grep")
    out = tmp_path / "ft"
    with pytest.raises(CheckpointError, match="not a pre-training checkpoint \\(stage 'finetune'\\)"):
        run_finetuning(finetune_config(sim, out, wrong, "bert", "grep", max_steps=1))
    assert not out.exists()


def test_learning_rates_per_parameter_group(sim, tmp_path_factory, tmp_path):
    pre = pretrained_checkpoint(tmp_path_factory)
    for pretrained, tok_lr in ((pre, 1e-6), (None, 2e-3)):
        cfg = finetune_config(sim, tmp_path / f"ft{pretrained is None}", pretrained, "clip", "trep", lr=2e-3)
        assert cfg.tokenizer_lr == 1e-6  # the default
        task = build_finetune_task(cfg)
        trainer = Trainer(task, build_dataset(cfg.data, cfg.data.train_splits, train=True, seed=0), cfg.train)
        groups = {g["name"]: g for g in trainer.optimizer.param_groups}
        assert set(groups) == {"tokenizer", "head"}
        assert groups["tokenizer"]["lr"] == tok_lr and groups["head"]["lr"] == 2e-3
        in_groups = {id(p) for g in groups.values() for p in g["params"]}
        assert {id(p) for p in task.tokenizer.parameters() if p.requires_grad} <= in_groups
        assert {id(p) for p in task.head.parameters()} <= in_groups
        assert not in_groups & {id(p) for p in task.text_encoder.parameters()}
        trainer.close()


def test_missing_pretrained_checkpoint_is_a_config_error(sim, tmp_path):
    out = tmp_path / "ft"
    cfg = finetune_config(sim, out, tmp_path / "nope" / "best_f.pt", "bert", "grep", max_steps=1)
    with pytest.raises(ConfigError, match="model.pretrained: checkpoint not found: .*nope/best_f.pt"):
        run_finetuning(cfg)
    assert not out.exists()


def test_embed_dim_mismatch_is_a_config_error(sim, tmp_path_factory, tmp_path):
    from seld.models.text_encoders import tiny_text_encoder_config

    out = tmp_path / "ft"
    cfg = finetune_config(sim, out, pretrained_checkpoint(tmp_path_factory), "bert", "grep",
                          text_encoder=tiny_text_encoder_config("bert", width=32), max_steps=1)
    with pytest.raises(ConfigError, match=f"tokenizer embed_dim {EMBED_DIM} != text encoder width 32"):
        run_finetuning(cfg)
    assert not out.exists()


def test_clip_architecture_only_keeps_quickgelu_of_the_openai_tag():
    from seld.models.text_encoders import TextEncoderConfig
    from seld.tasks.finetune import architecture_only

    openai = architecture_only(TextEncoderConfig(kind="clip", name="ViT-B-16", pretrained="openai", path="/x.pt"))
    assert (openai.quick_gelu, openai.pretrained, openai.path) == (True, None, None)
    plain = architecture_only(TextEncoderConfig(kind="clip", name="ViT-B-16", pretrained=None))
    assert plain.quick_gelu is False
    explicit = architecture_only(TextEncoderConfig(kind="clip", name="ViT-B-16", pretrained="openai", quick_gelu=False))
    assert explicit.quick_gelu is False


def test_streams_not_matching_the_pretrained_tokenizer_is_a_config_error(sim, tmp_path_factory, tmp_path):
    cfg = finetune_config(sim, tmp_path / "ft", pretrained_checkpoint(tmp_path_factory), "bert", "grep")
    cfg.data.streams.doa = ["logmel_l", "logmel_r", "ivy"]  # the tokenizer was pre-trained on 4 DOA channels
    with pytest.raises(ConfigError, match=r"data.streams give 1/3/2 channels \(src/doa/dist\) but the tokenizer takes 1/4/2"):
        build_finetune_task(cfg, data_record(cfg.data))
