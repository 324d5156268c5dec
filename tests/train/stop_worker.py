"""Run by test_stop: train the toy task (with dropout) and send this process a signal mid-epoch.

    python stop_worker.py OUT BATCH EPOCHS [SIGNAL FETCH [RANK]]

SIGNAL (USR1, TERM or INT) is raised in this process when the dataset serves its FETCH-th item
(counting from 1), so it lands while a batch is being loaded, the way a real preemption warning
does, but at a known place; with RANK only that rank of a torchrun job signals itself. Exits like
``seld pretrain``: 75 after a preemption signal, 130 after Ctrl-C, each with one line.
"""
import os
import signal
import sys
from pathlib import Path

import torch

from seld.train.config import TrainConfig
from seld.train.engine import Trainer
from seld.train.stopping import TrainingInterrupted, TrainingPreempted
from tests.train.toy import ToyDataset, ToyTask


class SignallingDataset(ToyDataset):
    def __init__(self, signame: str | None, fetch: int):
        super().__init__(16)
        self.signum = getattr(signal, f"SIG{signame}") if signame else None
        self.fetch = fetch
        self.calls = 0

    def __getitem__(self, i):
        self.calls += 1
        if self.signum is not None and self.calls == self.fetch:
            signal.raise_signal(self.signum)
        return super().__getitem__(i)


out, batch, epochs = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
signame = sys.argv[4] if len(sys.argv) > 4 else None
fetch = int(sys.argv[5]) if len(sys.argv) > 5 else 0
if len(sys.argv) > 6 and os.environ.get("RANK", "0") != sys.argv[6]:
    signame = None
torch.manual_seed(0)
cfg = TrainConfig(out_dir=str(out), epochs=epochs, batch_size=batch, lr=1e-2, num_workers=0, device="cpu",
                  progress=False, tensorboard=False, resume="auto", seed=5)
trainer = Trainer(ToyTask(dropout=0.2), SignallingDataset(signame, fetch), cfg, val_set=ToyDataset(8, seed=1))
try:
    trainer.fit()
except (TrainingPreempted, TrainingInterrupted) as exc:
    print(f"stopped: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
finally:
    trainer.close()
