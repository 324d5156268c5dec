"""Run by test_engine: train the toy task (no dropout) for 2 steps with a given per-process batch."""
import sys
from pathlib import Path

import torch

from seld.train.engine import TrainConfig, Trainer
from tests.train.toy import ToyDataset, ToyTask

out, batch = Path(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
task = ToyTask(dropout=0.0)
out.mkdir(parents=True, exist_ok=True)
torch.save(task.state_dict(), out / "init.pt")
cfg = TrainConfig(out_dir=str(out), epochs=1, batch_size=batch, lr=1e-2, num_workers=0, device="cpu",
                  progress=False, tensorboard=False, max_steps=2, resume="never")
trainer = Trainer(task, ToyDataset(16), cfg)
trainer.fit()
trainer.close()
