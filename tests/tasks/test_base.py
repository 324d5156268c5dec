"""The task contract: ``SeldTask.evaluation_step`` is where several source views of a clip
(``streams.src_eval: mean_lr``) become one prediction and one loss, and the engine scores that."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset, default_collate

from seld.train.config import TrainConfig
from seld.train.engine import Trainer
from tests.train.toy import ToyDataset, ToyTask


class TwoViews(Dataset):
    """Toy clips with two source views (the clip and its frequency-flipped copy), as ``mean_lr`` gives L and R."""

    def __init__(self, n: int):
        self.clips = ToyDataset(n, seed=1)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int):
        item = self.clips[i]
        return {**item, "src_views": torch.stack([item["src"], item["src"].flip(-1)])}


def test_evaluation_step_is_the_mean_of_the_views_and_of_their_losses():
    torch.manual_seed(0)
    task = ToyTask(dropout=0.0).eval()
    batch = default_collate([TwoViews(4)[i] for i in range(4)])
    with torch.no_grad():
        out = task.evaluation_step(batch)
        a = task.step({**batch, "src": batch["src_views"][:, 0]})
        b = task.step({**batch, "src": batch["src_views"][:, 1]})
        single = task.evaluation_step({k: v for k, v in batch.items() if k != "src_views"})
    assert not torch.allclose(a.output, b.output)  # the views give different outputs
    torch.testing.assert_close(out.output, (a.output + b.output) / 2, rtol=0, atol=1e-7)
    assert float(out.loss) == pytest.approx(float(a.loss + b.loss) / 2, rel=1e-6)
    assert torch.equal(single.output, a.output)  # one view: the step itself


def test_the_engine_scores_the_tasks_view_mean(tmp_path):
    torch.manual_seed(0)
    cfg = TrainConfig(out_dir=str(tmp_path), epochs=1, batch_size=4, num_workers=0, device="cpu", progress=False,
                      tensorboard=False)
    trainer = Trainer(ToyTask(dropout=0.0), ToyDataset(8), cfg, val_set=TwoViews(4))
    preds, _, loss = trainer.predict(trainer.val_set)
    batch = default_collate([TwoViews(4)[i] for i in range(4)])
    with torch.no_grad():
        want = trainer.task.eval().evaluation_step(batch)
    for i, cid in enumerate(batch["clip_id"]):
        torch.testing.assert_close(torch.from_numpy(preds[cid]), want.output[i], rtol=0, atol=1e-7)
    assert loss == pytest.approx(float(want.loss), rel=1e-6)
    trainer.close()
