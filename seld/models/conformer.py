"""Macaron conformer block (Gulati et al., 2020), used by the RCC encoder and the multi-feature attention.

One block, pre-norm throughout::

    x = x + 1/2 * FFN(x)        # half-step feed-forward
    x = x + MHSA(x)             # relative positional multi-head self-attention (default)
    x = x + Conv(x)             # pointwise -> GLU -> depthwise (k) -> BN -> SiLU -> pointwise
    x = x + 1/2 * FFN(x)        # half-step feed-forward
    x = LayerNorm(x)

The attention (``attention: rel``, default; spec section 8) is Conformer / Transformer-XL relative
positional self-attention, as in the authors' code: for query i and key j of head h,

    score(i, j) = [(q_i + u) . k_j + (q_i + v) . (W_pos r_{i-j})] / sqrt(d_head)

with r_{i-j} the sinusoidal embedding of the relative distance i - j (even dims sin, odd dims cos,
frequencies 10000^(-2k/d_model)), W_pos a bias-free projection, u and v learned per-head biases,
then softmax over j, dropout, the weighted sum of values and an output projection.
``attention: plain`` is torch's MultiheadAttention with no positional information (then only the
depthwise convolution gives the block a sense of order, as in torchaudio's conformer).
Input and output ``(batch, seq, d_model)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

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
    attention: Literal["rel", "plain"] = "rel"
    """``rel``: relative positional MHSA (Conformer / Transformer-XL, the authors' code);
    ``plain``: MHSA without positional encoding (this project's earlier default)."""

    def __post_init__(self) -> None:
        if self.attention not in ("rel", "plain"):
            raise ConfigError(f"conformer: attention must be 'rel' or 'plain', got {self.attention!r}")
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


def relative_position_encoding(length: int, d_model: int, device: torch.device | None = None,
                               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sinusoidal embeddings of the relative positions ``length-1, ..., 0, ..., -(length-1)``: ``(2*length-1, d_model)``.

    Row ``p`` encodes position ``length - 1 - p``; even dims ``sin(pos * w_k)``, odd dims ``cos(pos * w_k)``,
    ``w_k = 10000^(-2k / d_model)``.
    """
    pos = torch.arange(length - 1, -length, -1, device=device, dtype=torch.float64).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float64) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(2 * length - 1, d_model, device=device, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
    return pe.to(dtype)


class RelPositionMultiHeadAttention(nn.Module):
    """Relative positional multi-head self-attention (see the module docstring): ``(B, T, d)`` -> ``(B, T, d)``."""

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.d_model, self.num_heads, self.d_head = d_model, num_heads, d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        # no key bias: it would add the same score to every key of a query, which softmax ignores
        # (its gradient is exactly zero)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model)
        self.pos_proj = nn.Linear(d_model, d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model)
        self.pos_bias_u = nn.Parameter(torch.empty(num_heads, self.d_head))
        self.pos_bias_v = nn.Parameter(torch.empty(num_heads, self.d_head))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x (B, T, d)``; ``key_padding_mask (B, T)`` bool, True = padding (never attended to) -> ``(B, T, d)``."""
        b, t, _ = x.shape
        h, dh = self.num_heads, self.d_head
        q = self.q_proj(x).view(b, t, h, dh)
        k = self.k_proj(x).view(b, t, h, dh).transpose(1, 2)  # (B, h, T, dh)
        v = self.v_proj(x).view(b, t, h, dh).transpose(1, 2)
        pos = relative_position_encoding(t, self.d_model, x.device, x.dtype)
        p = self.pos_proj(pos).view(2 * t - 1, h, dh).transpose(0, 1)  # (h, 2T-1, dh)
        content = (q + self.pos_bias_u).transpose(1, 2) @ k.transpose(-2, -1)  # (B, h, T, T)
        position = (q + self.pos_bias_v).transpose(1, 2) @ p.transpose(-2, -1)  # (B, h, T, 2T-1)
        ar = torch.arange(t, device=x.device)
        index = (ar.unsqueeze(0) - ar.unsqueeze(1) + t - 1).expand(b, h, t, t)  # [i, j] -> row of distance i - j
        scores = (content + position.gather(-1, index)) / math.sqrt(dh)
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        attn = self.dropout(torch.softmax(scores, dim=-1))
        return self.out_proj((attn @ v).transpose(1, 2).reshape(b, t, self.d_model))


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
        self.relative = cfg.attention == "rel"
        self.attn: nn.Module = (
            RelPositionMultiHeadAttention(d_model, cfg.num_heads, cfg.dropout)
            if self.relative
            else nn.MultiheadAttention(d_model, cfg.num_heads, dropout=cfg.dropout, batch_first=True)
        )
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
        y = self.attn(y) if self.relative else self.attn(y, y, y, need_weights=False)[0]
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
