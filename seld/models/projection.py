"""Projection P_audio / P_doa / P_dist (spec section 5): MLP then attentive pooling over the frequency rows."""
from __future__ import annotations

import torch
from torch import nn


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


class Projection(nn.Module):
    """Linear(in, in) -> GELU -> Linear(in, embed_dim) per row, then attentive pooling: ``(B, T, rows, in)`` -> ``(B, T, embed_dim)``."""

    def __init__(self, in_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.embed_dim = embed_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, embed_dim))
        self.pool = AttentivePooling(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, T, rows, in_dim)`` -> one token per frame ``(batch, T, embed_dim)``."""
        if x.dim() != 4 or x.shape[-1] != self.in_dim:
            raise ValueError(f"projection expects (batch, T, rows, {self.in_dim}), got shape {tuple(x.shape)}")
        return self.pool(self.mlp(x))
