"""Macaron conformer block (Gulati et al., 2020), used by the RCC encoder and the multi-feature attention.

One block, pre-norm throughout::

    x = x + 1/2 * FFN(x)        # half-step feed-forward
    x = x + MHSA(x)             # multi-head self-attention
    x = x + Conv(x)             # pointwise -> GLU -> depthwise (k) -> BN -> SiLU -> pointwise
    x = x + 1/2 * FFN(x)        # half-step feed-forward
    x = LayerNorm(x)

The attention has no positional encoding: the depthwise convolution gives the block its sense of
order, as in torchaudio's conformer. Input and output ``(batch, seq, d_model)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seld.errors import ConfigError


@dataclass
class ConformerConfig:
    """Sizes of a conformer block; the model width ``d_model`` is given by the owner of the block."""

    num_heads: int = 8
    ffn_mult: int = 2  # feed-forward hidden width = ffn_mult * d_model (spec: FFN x2)
    kernel_size: int = 31  # depthwise convolution kernel (odd)
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.num_heads < 1 or self.ffn_mult < 1:
            raise ConfigError(f"conformer: num_heads and ffn_mult must be >= 1, got {self.num_heads}, {self.ffn_mult}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(f"conformer: kernel_size must be a positive odd number, got {self.kernel_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"conformer: dropout must be in [0, 1), got {self.dropout}")


class FeedForward(nn.Module):
    """Pre-norm feed-forward module: LN -> Linear(d, m*d) -> SiLU -> dropout -> Linear(m*d, d) -> dropout."""

    def __init__(self, d_model: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d_model),
            nn.Linear(d_model, hidden),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, d)`` -> ``(batch, seq, d)``."""
        return self.net(x)


class ConvModule(nn.Module):
    """Conformer convolution module: LN -> pointwise(2d) -> GLU -> depthwise(k) -> BN -> SiLU -> pointwise -> dropout."""

    def __init__(self, d_model: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Conv1d(d_model, 2 * d_model, kernel_size=1)
        self.glu = nn.GLU(dim=1)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model)
        self.batch_norm = nn.BatchNorm1d(d_model)
        self.activation = nn.SiLU()
        self.pointwise_out = nn.Conv1d(d_model, d_model, kernel_size=1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, d)`` -> ``(batch, seq, d)``."""
        y = self.layer_norm(x).transpose(1, 2)  # (batch, d, seq)
        y = self.glu(self.pointwise_in(y))
        y = self.activation(self.batch_norm(self.depthwise(y)))
        y = self.pointwise_out(y)
        return self.dropout(y.transpose(1, 2))


class ConformerBlock(nn.Module):
    """One macaron conformer block of width ``d_model``."""

    def __init__(self, d_model: int, cfg: ConformerConfig) -> None:
        super().__init__()
        if d_model % cfg.num_heads != 0:
            raise ConfigError(f"conformer: d_model {d_model} is not divisible by num_heads {cfg.num_heads}")
        self.d_model = d_model
        self.ffn1 = FeedForward(d_model, cfg.ffn_mult * d_model, cfg.dropout)
        self.attn_layer_norm = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, cfg.num_heads, dropout=cfg.dropout, batch_first=True)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.conv = ConvModule(d_model, cfg.kernel_size, cfg.dropout)
        self.ffn2 = FeedForward(d_model, cfg.ffn_mult * d_model, cfg.dropout)
        self.final_layer_norm = nn.LayerNorm(d_model)

    @classmethod
    def from_config(cls, cfg: ConformerConfig, d_model: int) -> "ConformerBlock":
        """A block of width ``d_model`` sized by ``cfg``."""
        return cls(d_model, cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, d_model)`` -> ``(batch, seq, d_model)``."""
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"conformer expects (batch, seq, {self.d_model}), got shape {tuple(x.shape)}")
        x = x + 0.5 * self.ffn1(x)
        y = self.attn_layer_norm(x)
        y, _ = self.attn(y, y, y, need_weights=False)
        x = x + self.attn_dropout(y)
        x = x + self.conv(x)
        x = x + 0.5 * self.ffn2(x)
        return self.final_layer_norm(x)


class ConformerStack(nn.Sequential):
    """``num_blocks`` conformer blocks applied in turn; ``(batch, seq, d)`` -> ``(batch, seq, d)``."""

    def __init__(self, d_model: int, cfg: ConformerConfig, num_blocks: int) -> None:
        if num_blocks < 0:
            raise ConfigError(f"conformer: number of blocks must be >= 0, got {num_blocks}")
        super().__init__(*[ConformerBlock(d_model, cfg) for _ in range(num_blocks)])
