"""train.ema_decay: a moving average of the weights, used for validation and the best checkpoints,
carried in last.pt so a resume continues it exactly; off by default."""
from pathlib import Path

import pytest
import torch

from seld.checkpoint import load_checkpoint
from seld.errors import ConfigError
from seld.train.config import TrainConfig
from seld.train.engine import Trainer
from tests.train.toy import ToyDataset, ToyTask


def _trainer(out: Path, **kw) -> Trainer:
    base = dict(out_dir=str(out), epochs=2, batch_size=4, lr=1e-2, num_workers=0, device="cpu", progress=False,
                tensorboard=False, seed=7, resume="auto", ema_decay=0.9)
    base.update(kw)
    torch.manual_seed(123)
    return Trainer(ToyTask(), ToyDataset(), TrainConfig(**base), val_set=ToyDataset(8, seed=1))


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")
def test_average_follows_the_formula_step_by_step(tmp_path):
    tr = _trainer(tmp_path, epochs=1)
    expected = {k: v.clone() for k, v in tr.task.state_dict().items()}
    real_step = tr.optimizer.step

    def step_and_track(*a, **k):
        out = real_step(*a, **k)
        n = tr.global_step  # the engine increments it after updating the average
        d = min(0.9, (1 + n) / (10 + n))
        for key, v in tr.task.state_dict().items():
            expected[key] = d * expected[key] + (1 - d) * v
        return out

    tr.optimizer.step = step_and_track
    tr.fit()
    assert tr.global_step == 4
    for key, v in expected.items():
        torch.testing.assert_close(tr.ema[key], v, rtol=1e-6, atol=1e-7)
    # and the average is not the weights (4 steps at lr 1e-2 moved them)
    raw = tr.task.state_dict()
    assert max(float((tr.ema[k] - raw[k]).abs().max()) for k in raw) > 1e-3


def test_validation_and_best_checkpoint_use_the_average_and_leave_the_weights(tmp_path):
    tr = _trainer(tmp_path, epochs=1)
    tr.fit()
    raw = {k: v.clone() for k, v in tr.task.state_dict().items()}
    record = tr.validate()
    for k, v in tr.task.state_dict().items():
        assert torch.equal(v, raw[k]), k  # validation put the raw weights back
    with tr.averaged_weights():
        _, _, loss_avg = tr.predict(tr.val_set)
    _, _, loss_raw = tr.predict(tr.val_set)
    assert record["val_loss"] == pytest.approx(loss_avg) and loss_avg != pytest.approx(loss_raw)
    best = load_checkpoint(tmp_path / "checkpoints" / "best_loss.pt")
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    for k in raw:
        assert torch.equal(best["model"][k], tr.ema[k]), k  # what validation scored
        assert torch.equal(last["model"][k], raw[k]) and torch.equal(last["ema"][k], tr.ema[k]), k


def test_resume_continues_the_average_exactly(tmp_path):
    straight = _trainer(tmp_path / "a")
    straight.fit()
    first = _trainer(tmp_path / "b", epochs=1)
    first.fit()
    resumed = _trainer(tmp_path / "b")
    assert resumed.resumed and resumed.global_step == 4
    resumed.fit()
    for k, v in straight.ema.items():
        assert torch.equal(resumed.ema[k], v), k
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in straight.history]


def test_off_by_default_and_bad_decay_named(tmp_path):
    tr = _trainer(tmp_path, ema_decay=None, epochs=1)
    assert tr.ema is None
    tr.fit()
    assert "ema" not in load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    with pytest.raises(ConfigError, match="train.ema_decay must be in"):
        _trainer(tmp_path / "bad", ema_decay=1.0)



class _TaskWithFrozenPart(ToyTask):
    """A toy task with a frozen block outside the optimiser (as a fine-tuning task's text encoder)
    and a BatchNorm (float buffers that move without the optimiser, and an integer counter)."""

    def __init__(self):
        super().__init__()
        self.frozen = torch.nn.Linear(64, 64)
        self.frozen.requires_grad_(False)
        self.norm = torch.nn.BatchNorm1d(64)

    def step(self, batch):
        self.norm(batch["src"][:, 0].reshape(-1, 64))  # running statistics move
        return super().step(batch)


_CUDA = pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(),
                                                                         reason="needs a CUDA device")])


@pytest.mark.parametrize("device", ["cpu", _CUDA])
def test_average_skips_only_what_cannot_move_and_matches_lerp_on_every_tensor_bitwise(tmp_path, device):
    torch.manual_seed(123)
    tr = Trainer(_TaskWithFrozenPart(), ToyDataset(), TrainConfig(
        out_dir=str(tmp_path), epochs=1, batch_size=4, lr=1e-2, num_workers=0, device=device, progress=False,
        tensorboard=False, seed=7, ema_decay=0.9), val_set=ToyDataset(8, seed=1))
    averaged, _, counters = tr.averager.pairs
    ids = {id(t) for t in averaged}
    assert id(tr.ema["frozen.weight"]) not in ids and id(tr.ema["frozen.bias"]) not in ids
    assert {id(tr.ema[k]) for k in ("net.0.weight", "norm.weight", "norm.running_mean", "norm.running_var")} <= ids
    assert [id(e) for e, _ in counters] == [id(tr.ema["norm.num_batches_tracked"])]
    # beside the engine: the old rule, lerp_ on every floating tensor one by one
    expected = {k: v.clone() for k, v in tr.task.state_dict().items()}
    engine_update = tr._update_ema

    def update_and_track():
        engine_update()
        d = min(0.9, (1 + tr.global_step) / (10 + tr.global_step))
        for key, v in tr.task.state_dict().items():
            expected[key].lerp_(v, 1.0 - d) if v.is_floating_point() else expected[key].copy_(v)

    tr._update_ema = update_and_track
    tr.fit()
    assert tr.global_step == 4
    for key, v in expected.items():
        assert torch.equal(tr.ema[key], v), key
    assert tr.ema["norm.running_mean"].device.type == device
    assert not torch.equal(tr.ema["norm.running_mean"], torch.zeros(64, device=device))  # the buffers did move
    assert int(tr.ema["norm.num_batches_tracked"]) == 4
