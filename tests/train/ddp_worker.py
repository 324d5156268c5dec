"""Train the toy task (no dropout) for 2 steps with a given per-process batch.

Run as a script (``ddp_worker.py OUT BATCH``, under torchrun by test_engine and test_multinode) or
called in-process (:func:`train_toy`) for the one-process reference of the same global batch.
"""
import sys
from pathlib import Path

import torch

from seld.train.config import TrainConfig
from seld.train.engine import Trainer
from tests.train.toy import ToyDataset, ToyTask


def train_toy(out: Path, batch: int) -> None:
    """Seed 0, save the initial weights to ``out/init.pt``, train 2 steps; ``last.pt`` holds the result."""
    torch.manual_seed(0)
    task = ToyTask(dropout=0.0)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(task.state_dict(), out / "init.pt")
    cfg = TrainConfig(out_dir=str(out), epochs=1, batch_size=batch, lr=1e-2, num_workers=0, device="cpu",
                      progress=False, tensorboard=False, max_steps=2, resume="never")
    trainer = Trainer(task, ToyDataset(16), cfg)
    trainer.fit()
    trainer.close()


if __name__ == "__main__":
    train_toy(Path(sys.argv[1]), int(sys.argv[2]))
