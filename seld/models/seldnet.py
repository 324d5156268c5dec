"""The DCASE2025 Task 3 baseline, audio-only: a CRNN with self-attention and multi-ACCDOA output.

Written from the description of the official baseline (repository partha2409/DCASE2025_seld_baseline,
``model.py`` with the defaults of ``parameters.py``), so that it has the same layers and the same
parameter count when fed the same number of input channels:

* ``num_conv_blocks`` blocks of Conv2d 3x3 (padding 1) -> BatchNorm2d -> ReLU -> MaxPool2d
  (time, freq) -> Dropout2d; 64 filters; pools (5, 4), (1, 4), (1, 2):
  ``(B, C, 250, 64) -> (B, 64, 50, 2)``;
* frames ``(B, 50, 64 * 2)`` -> a 2-layer bidirectional GRU (128 per direction, dropout between
  layers) -> tanh -> the two directions multiplied elementwise -> ``(B, 50, 128)``;
* ``num_attn_layers`` x [multi-head self-attention (8 heads) + residual -> LayerNorm];
* ``num_fc_layers`` Linear(128, 128) (the official code applies no activation between them)
  -> Linear(128, 117).

Differences from the official code, both needed by our ADPIT loss and decoding: the output is
activated like every model of this package (tanh on x, y; ReLU on distance, see
:func:`seld.accdoa.activate_output`); the official model leaves it linear. The input channel
count is a parameter (the official code hard-codes 2 stereo log-mels).

With the default config and 4 input channels (log-mel L/R, ILD, IVy) the model has 735,413
parameters, the number the official formula gives for 4 channels (``param_count_formula``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from seld.accdoa import activate_output
from seld.constants import OUTPUT_DIM


@dataclass
class SeldnetConfig:
    """Layer sizes of the baseline CRNN (defaults: the official ``parameters.py``)."""

    in_channels: int = 4
    """Stacked input feature channels; set from the stream lists by the stage."""
    n_mels: int = 64
    conv_filters: int = 64
    t_pools: list[int] = field(default_factory=lambda: [5, 1, 1])
    """Time max-pool per conv block; their product must turn the feature frames into 50 label frames."""
    f_pools: list[int] = field(default_factory=lambda: [4, 4, 2])
    """Frequency max-pool per conv block."""
    dropout: float = 0.05
    rnn_size: int = 128
    """GRU hidden size per direction (= the attention and FC width)."""
    rnn_layers: int = 2
    attn_layers: int = 2
    attn_heads: int = 8
    fc_layers: int = 1
    fc_size: int = 128

    def __post_init__(self) -> None:
        if len(self.t_pools) != len(self.f_pools) or not self.t_pools:
            raise ValueError(f"t_pools {self.t_pools} and f_pools {self.f_pools} need one entry per conv block")
        if self.n_mels // _prod(self.f_pools) < 1:
            raise ValueError(f"f_pools {self.f_pools} pool {self.n_mels} mel bins to nothing")
        if self.rnn_size % self.attn_heads:
            raise ValueError(f"rnn_size {self.rnn_size} must be divisible by attn_heads {self.attn_heads}")
        if min(self.in_channels, self.conv_filters, self.rnn_size, self.rnn_layers) < 1:
            raise ValueError("in_channels, conv_filters, rnn_size and rnn_layers must be >= 1")


def _prod(values: list[int]) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


class ConvBlock(nn.Module):
    """Conv3x3 -> BatchNorm -> ReLU -> MaxPool (time, freq) -> Dropout2d."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int], dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = nn.MaxPool2d(pool)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, T, F) -> (B, C_out, T / pool_t, F / pool_f)``."""
        return self.dropout(self.pool(torch.relu(self.bn(self.conv(x)))))


class SeldNet(nn.Module):
    """Baseline CRNN: features ``(B, C, T, n_mels)`` -> activated multi-ACCDOA ``(B, T / prod(t_pools), 117)``."""

    def __init__(self, cfg: SeldnetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv_blocks = nn.ModuleList(
            ConvBlock(cfg.in_channels if i == 0 else cfg.conv_filters, cfg.conv_filters, (tp, fp), cfg.dropout)
            for i, (tp, fp) in enumerate(zip(cfg.t_pools, cfg.f_pools))
        )
        gru_in = cfg.conv_filters * (cfg.n_mels // _prod(cfg.f_pools))
        self.gru = nn.GRU(
            gru_in, cfg.rnn_size, num_layers=cfg.rnn_layers, batch_first=True,
            dropout=cfg.dropout if cfg.rnn_layers > 1 else 0.0, bidirectional=True,
        )
        self.attn = nn.ModuleList(
            nn.MultiheadAttention(cfg.rnn_size, cfg.attn_heads, dropout=cfg.dropout, batch_first=True)
            for _ in range(cfg.attn_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.rnn_size) for _ in range(cfg.attn_layers))
        widths = [cfg.rnn_size] + [cfg.fc_size] * cfg.fc_layers
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Linear(widths[-1], OUTPUT_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, n_mels)`` -> activated ``(B, T', 117)`` with ``T' = T / prod(t_pools)``."""
        if x.dim() != 4 or x.shape[1] != self.cfg.in_channels or x.shape[-1] != self.cfg.n_mels:
            raise ValueError(
                f"SeldNet expects (batch, {self.cfg.in_channels}, frames, {self.cfg.n_mels}), got {tuple(x.shape)}"
            )
        for block in self.conv_blocks:
            x = block(x)  # (B, F, T', M')
        x = x.transpose(1, 2).flatten(2)  # (B, T', F * M'): channel-major like the official view()
        x, _ = self.gru(x)
        x = torch.tanh(x)
        half = x.shape[-1] // 2
        x = x[..., half:] * x[..., :half]  # backward * forward direction
        for attn, norm in zip(self.attn, self.norms):
            y, _ = attn(x, x, x, need_weights=False)
            x = norm(x + y)
        for fc in self.fc:
            x = fc(x)  # no activation between FC layers (as the official model)
        return activate_output(self.out(x))


def param_count_formula(cfg: SeldnetConfig) -> int:
    """Parameters of the official layer layout, counted by hand (conv, BN, GRU, MHSA, LN, FC)."""
    k = 9  # 3x3 kernels
    n = 0
    c_in = cfg.in_channels
    for _ in cfg.t_pools:
        n += c_in * cfg.conv_filters * k + cfg.conv_filters  # conv weight + bias
        n += 2 * cfg.conv_filters  # BN affine
        c_in = cfg.conv_filters
    h = cfg.rnn_size
    gru_in = cfg.conv_filters * (cfg.n_mels // _prod(cfg.f_pools))
    for layer in range(cfg.rnn_layers):
        i = gru_in if layer == 0 else 2 * h
        n += 2 * 3 * (i * h + h * h + 2 * h)  # two directions, three gates, weights + two biases
    n += cfg.attn_layers * (3 * h * h + 3 * h + h * h + h + 2 * h)  # in-proj, out-proj, LayerNorm
    widths = [h] + [cfg.fc_size] * cfg.fc_layers
    n += sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    n += widths[-1] * OUTPUT_DIM + OUTPUT_DIM
    return n
