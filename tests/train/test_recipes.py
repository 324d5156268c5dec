"""Optimisation recipes of the engine (issue 9 item 5): Adam/AdamW, per-group weight decay, the
per-step cosine and MultiStep schedules against torch's own schedulers, gradient clipping, and a
bit-exact mid-epoch resume across a MultiStep milestone."""
import math
from pathlib import Path

import pytest
import torch

from seld.checkpoint import load_checkpoint
from seld.config import read_config_file
from seld.train.config import SchedulerConfig, TrainConfig
from seld.train.engine import Trainer
from seld.train.optim import build_optimizer, lr_factor
from tests.train.toy import ToyDataset, ToyTask

ROOT = Path(__file__).resolve().parents[2]
SPE = 4  # ToyDataset(16) with batch 4


def _cfg(out: Path, **kw) -> TrainConfig:
    base = dict(out_dir=str(out), epochs=3, batch_size=4, lr=1e-2, num_workers=0, device="cpu", progress=False,
                tensorboard=False, seed=7, resume="never")
    base.update(kw)
    return TrainConfig(**base)


def _trainer(out: Path, **kw) -> Trainer:
    torch.manual_seed(123)
    return Trainer(ToyTask(), ToyDataset(), _cfg(out, **kw), val_set=ToyDataset(8, seed=1))


def _torch_lrs(make_sched, steps: int, per_epoch: bool) -> list[float]:
    """Learning rate used at each optimiser step when torch's scheduler is stepped per epoch or per step."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_sched(opt)
    lrs = []
    for s in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if not per_epoch or (s + 1) % SPE == 0:
            sched.step()
    return lrs


def test_multistep_factor_matches_torch_multisteplr_stepped_per_epoch():
    cfg = SchedulerConfig(name="multistep", milestones=[10, 20, 30, 40, 45], gamma=0.1)
    steps = 50 * SPE
    ours = [lr_factor(cfg, s, steps, SPE) for s in range(steps)]
    ref = _torch_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [10, 20, 30, 40, 45], gamma=0.1), steps, True)
    assert ours == pytest.approx(ref, rel=1e-12, abs=0)
    assert ours[10 * SPE - 1] == 1.0 and ours[10 * SPE] == pytest.approx(0.1) and ours[-1] == pytest.approx(1e-5)


def test_cosine_factor_matches_torch_cosine_annealing_per_step():
    steps, m = 37, 0.05
    cfg = SchedulerConfig(name="cosine", min_factor=m)
    ours = [lr_factor(cfg, s, steps, SPE) for s in range(steps)]
    ref = _torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=steps - 1, eta_min=m), steps, False)
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)
    assert ours[0] == 1.0 and ours[-1] == pytest.approx(m)
    # with warm-up: linear to 1 over W steps, then the cosine over the remaining steps
    cfg = SchedulerConfig(name="cosine", warmup_steps=5, min_factor=m)
    f = [lr_factor(cfg, s, steps, SPE) for s in range(steps)]
    assert f[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0]) and f[5] == 1.0 and f[-1] == pytest.approx(m)
    s = 20
    assert f[s] == pytest.approx(m + (1 - m) * 0.5 * (1 + math.cos(math.pi * (s - 5) / (steps - 5 - 1))))


def test_cosine_spans_all_epochs_not_max_steps(tmp_path):
    tr = _trainer(tmp_path / "c", epochs=3, max_steps=4, scheduler=SchedulerConfig(name="cosine"))
    tr.fit()
    # 4 of 12 steps done: the lr is the cosine at step 4 of 12, not the end of a 4-step cosine
    assert tr.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 4 / 11)))


def test_scheduler_config_rejects_bad_milestones():
    with pytest.raises(ValueError, match="milestones must be increasing"):
        SchedulerConfig(name="multistep", milestones=[20, 10])


def test_weight_decay_per_group_and_adam_vs_adamw():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    groups = [{"params": [a], "lr": 0.1, "name": "x"}, {"params": [b], "lr": 0.1, "name": "y", "weight_decay": 0.5}]
    for name, kind in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        opt = build_optimizer(groups, TrainConfig(optimizer=name, weight_decay=1e-4))
        assert type(opt) is kind
        assert [g["weight_decay"] for g in opt.param_groups] == [1e-4, 0.5]
    # zero gradient, one step: Adam's L2 term moves p by lr (normalised gradient = 1); AdamW only decays
    for name, want in (("adam", 1 - 0.1), ("adamw", 1 - 0.1 * 0.5)):
        p = torch.nn.Parameter(torch.ones(1))
        opt = build_optimizer([{"params": [p], "lr": 0.1}], TrainConfig(optimizer=name, weight_decay=0.5))
        p.grad = torch.zeros(1)
        opt.step()
        assert float(p.detach()) == pytest.approx(want, rel=1e-5), name


def test_gradient_norm_is_clipped(tmp_path):
    norms: list[float] = []
    for clip in (None, 0.01):
        tr = _trainer(tmp_path / str(clip), epochs=1, grad_clip_norm=clip)
        seen: list[float] = []
        params = [p for g in tr.optimizer.param_groups for p in g["params"]]
        tr.optimizer.register_step_pre_hook(
            lambda *_: seen.append(float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))))
        tr.fit()
        assert len(seen) == SPE
        norms.append(max(seen))
    assert norms[0] > 0.05  # unclipped gradients of the toy task are well above the limit
    assert norms[1] == pytest.approx(0.01, rel=1e-4)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_multistep_resume_mid_epoch_is_bitwise_identical_after_the_milestone(tmp_path, optimizer):
    recipe = dict(epochs=3, optimizer=optimizer, weight_decay=1e-4, grad_clip_norm=0.05,
                  scheduler=SchedulerConfig(name="multistep", milestones=[1, 2], gamma=0.1))
    full = _trainer(tmp_path / "full", **recipe)
    full.fit()
    split = _trainer(tmp_path / "split", max_steps=6, **recipe)  # stops mid epoch 2, after milestone 1
    split.fit()
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["progress"]["global_step"] == 6
    assert split.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    torch.manual_seed(999)
    resumed = Trainer(ToyTask(), ToyDataset(), _cfg(tmp_path / "split", resume="auto", **recipe),
                      val_set=ToyDataset(8, seed=1))
    assert (resumed.epoch, resumed.step_in_epoch) == (1, 2)
    resumed.fit()
    assert resumed.global_step == 12 and resumed.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    for (k, a), b in zip(full.task.state_dict().items(), resumed.task.state_dict().values()):
        assert torch.equal(a, b), k
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]


PAPER_FINETUNE = ["BEATs-BERT-GREP", "BEATs-BERT-TREP", "BEATs-CLIP-GREP", "BEATs-CLIP-TREP",
                  "RCC-BERT-GREP", "RCC-BERT-TREP", "RCC-CLIP-GREP", "RCC-CLIP-TREP"]


@pytest.mark.parametrize("path", [f"configs/{n}.yml" for n in PAPER_FINETUNE] + ["finetuning/config.yml"])
def test_finetuning_configs_carry_the_authors_recipe(path):
    from seld.config import load_config
    from seld.tasks.finetune import FinetuneConfig

    cfg = load_config(ROOT / path, FinetuneConfig)
    t = cfg.train
    assert (t.optimizer, t.weight_decay, t.grad_clip_norm, t.lr, cfg.tokenizer_lr) == ("adam", 1e-4, 5.0, 1e-4, 1e-6)
    assert (t.scheduler.name, t.scheduler.milestones, t.scheduler.gamma) == ("multistep", [10, 20, 30, 40, 45], 0.1)
    assert cfg.data.val_from_train is None and cfg.data.val_splits == ["dev-test-sony", "dev-test-tau"]


@pytest.mark.parametrize("path", ["configs/pretrain_rcc.yml", "configs/pretrain_beats.yml", "pretraining/config.yml"])
def test_pretraining_configs_carry_the_recipe(path):
    from seld.config import load_config
    from seld.tasks.pretrain import PretrainConfig

    t = load_config(ROOT / path, PretrainConfig).train
    assert (t.optimizer, t.lr, t.batch_size, t.weight_decay, t.grad_clip_norm) == ("adam", 1e-4, 8, 1e-4, 5.0)
    assert (t.scheduler.name, t.scheduler.warmup_steps, t.scheduler.min_factor) == ("cosine", 0, 0.0)
    assert "scheduler" in read_config_file(ROOT / path)["train"]  # named by the file or its base
