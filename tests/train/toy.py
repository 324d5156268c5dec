"""A tiny task and dataset that exercise the engine without the real models (fast, with dropout)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from seld.accdoa import activate_output
from seld.tasks.base import SeldTask, StepOutput


class ToyDataset(Dataset):
    def __init__(self, n: int = 16, seed: int = 0):
        rng = np.random.default_rng(seed)
        # each clip's features are a per-clip pattern plus noise, so the mapping is learnable
        patterns = rng.standard_normal((n, 1, 1, 64))
        self.x = (patterns + 0.1 * rng.standard_normal((n, 1, 250, 64))).astype(np.float32)
        self.t = np.zeros((n, 50, 6, 4, 13), dtype=np.float32)
        for i in range(n):
            cls = i % 13
            az = np.deg2rad(rng.uniform(-90, 90))
            self.t[i, :, 0, :, cls] = [1.0, np.cos(az), np.sin(az), rng.uniform(1, 4)]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        x = torch.from_numpy(self.x[i])
        return {"src": x, "doa": x, "dist": x, "target": torch.from_numpy(self.t[i]), "clip_id": f"clip{i:03d}"}


class ToyTask(SeldTask):
    def __init__(self, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(dropout), nn.Linear(64, 117))

    def step(self, batch: dict[str, Any]) -> StepOutput:
        x = batch["src"][:, 0].reshape(-1, 50, 5, 64).mean(2)  # (B, 50, 64)
        out = activate_output(self.net(x))
        tgt = batch["target"]
        act, vals = tgt[:, :, 0, :1], tgt[:, :, 0, 1:]  # (B,50,1,13), (B,50,3,13)
        pred = out.reshape(*out.shape[:2], 3, 3, 13)[:, :, 0]
        loss = ((pred - act * vals) ** 2).mean()
        return StepOutput(loss=loss, output=out, logs={"mse": float(loss.detach())})
