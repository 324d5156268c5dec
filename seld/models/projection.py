"""Projection P_audio / P_doa / P_dist (spec section 5): MLP then pooling over the frequency rows.

Two poolings (``tokenizer.pooling``):

* ``attention`` (default, the seed's "attentive pooling"): a learned score per row, softmax over the
  rows, weighted sum. Ours: the authors' code meant this but computes the next one.
* ``sum``: a plain sum over the rows. This is what the authors' code computes: its softmax runs over
  an axis of size 1, so every weight is 1 (spec section 8).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from seld.errors import ConfigError

Pooling = Literal["attention", "sum"]
POOLINGS: tuple[str, ...] = ("attention", "sum")


class AttentivePooling(nn.Module):
    """Softmax-weighted sum over the rows, weights from a learned linear score: ``(..., rows, d)`` -> ``(..., d)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Pooling weights ``(..., rows)`` (sum to 1 over rows)."""
        return torch.softmax(self.score(x).squeeze(-1), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., rows, d)`` -> ``(..., d)``."""
        return (self.weights(x).unsqueeze(-1) * x).sum(dim=-2)


class SumPooling(nn.Module):
    """Plain sum over the rows (the authors' code): ``(..., rows, d)`` -> ``(..., d)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., rows, d)`` -> ``(..., d)``."""
        return x.sum(dim=-2)


class Projection(nn.Module):
    """Linear(in, in) -> GELU -> Linear(in, embed_dim) per row, then pooling: ``(B, T, rows, in)`` -> ``(B, T, embed_dim)``."""

    def __init__(self, in_dim: int, embed_dim: int, pooling: str = "attention") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"projection: unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
        self.in_dim = in_dim
        self.embed_dim = embed_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, embed_dim))
        self.pool: nn.Module = AttentivePooling(embed_dim) if pooling == "attention" else SumPooling()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, T, rows, in_dim)`` -> one token per frame ``(batch, T, embed_dim)``."""
        if x.dim() != 4 or x.shape[-1] != self.in_dim:
            raise ValueError(f"projection expects (batch, T, rows, {self.in_dim}), got shape {tuple(x.shape)}")
        return self.pool(self.mlp(x))
