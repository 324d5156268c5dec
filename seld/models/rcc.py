"""Residual CNN-Conformer (RCC) encoder (spec section 5): the DOA and distance encoders, and one source encoder.

    (batch, C_in, 250, 64) -> BatchNorm per (input channel, mel bin): C_in x 64 features (spec section 8)
      -> 4 residual blocks (channels 64, 128, 256, 512; pools (5,2), (1,2), (1,2), (1,2))
      -> (batch, 512, 50, 4)
      -> 2 conformer blocks over time, each of the 4 frequency rows a separate sequence
      -> (batch, 50 frames, 4 rows, 512)

A residual block is two Conv3x3-BN-ReLU (main branch) plus Conv1x1-BN (residual branch), summed and
scaled by 1/sqrt(2) so the sum keeps the variance of one branch, then average-pooled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from seld.errors import CheckpointError, ConfigError
from seld.models.conformer import ConformerConfig, ConformerStack


@dataclass
class RCCConfig:
    """An RCC encoder; the last entry of ``channels`` is its output width (must equal the tokenizer's d_model)."""

    in_channels: int = 1
    n_mels: int = 64
    """Mel bins of the input; the input BatchNorm has one mean/variance per (channel, mel bin)."""
    channels: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    pools: list[tuple[int, int]] = field(default_factory=lambda: [(5, 2), (1, 2), (1, 2), (1, 2)])  # (time, freq)
    num_conformers: int = 2
    conformer: ConformerConfig = field(default_factory=ConformerConfig)

    def __post_init__(self) -> None:
        if self.in_channels < 1:
            raise ConfigError(f"rcc: in_channels must be >= 1, got {self.in_channels}")
        if self.n_mels < 1:
            raise ConfigError(f"rcc: n_mels must be >= 1, got {self.n_mels}")
        if not self.channels or any(c < 1 for c in self.channels):
            raise ConfigError(f"rcc: channels must be a non-empty list of positive widths, got {self.channels}")
        if len(self.pools) != len(self.channels):
            raise ConfigError(
                f"rcc: need one (time, freq) pool per block: {len(self.channels)} channels but {len(self.pools)} pools"
            )
        for i, pool in enumerate(self.pools):
            if len(pool) != 2 or any(int(p) < 1 for p in pool):
                raise ConfigError(f"rcc: pools[{i}] must be two positive integers (time, freq), got {pool}")
        self.pools = [(int(p[0]), int(p[1])) for p in self.pools]
        if self.num_conformers < 0:
            raise ConfigError(f"rcc: num_conformers must be >= 0, got {self.num_conformers}")

    @property
    def out_dim(self) -> int:
        """Width of the encoder output."""
        return self.channels[-1]

    def downsampling(self) -> tuple[int, int]:
        """Total (time, freq) pooling factor of the CNN."""
        return math.prod(p[0] for p in self.pools), math.prod(p[1] for p in self.pools)


class ChannelMelBatchNorm(nn.BatchNorm1d):
    """BatchNorm with one mean/variance per (input channel, mel bin): ``(B, C, T, F)`` -> same shape.

    Statistics run over batch and time; feature index ``c * F + f``. This is the authors' input
    normalisation (spec section 8). A state dict from the old per-channel layout (``C`` features
    instead of ``C * F``) is refused with a CheckpointError saying so: it is never reshaped.
    """

    def __init__(self, channels: int, n_mels: int) -> None:
        super().__init__(channels * n_mels)
        self.channels = channels
        self.n_mels = n_mels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """``(B, C, T, F)`` -> ``(B, C, T, F)`` normalised per (channel, mel bin)."""
        b, c, t, f = x.shape
        if (c, f) != (self.channels, self.n_mels):
            raise ValueError(
                f"input BatchNorm expects {self.channels} channels x {self.n_mels} mel bins, got shape {tuple(x.shape)}"
            )
        y = super().forward(x.transpose(2, 3).reshape(b, c * f, t))  # (B, C*F, T)
        return y.reshape(b, c, f, t).transpose(2, 3)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):  # type: ignore[no-untyped-def]
        weight = state_dict.get(prefix + "weight")
        if weight is not None and weight.shape == (self.channels,) and self.channels != self.num_features:
            raise CheckpointError(
                f"'{prefix.rstrip('.')}' in this checkpoint is the old input BatchNorm with one statistic per input "
                f"channel ({self.channels}); this version normalises per (channel, mel bin) "
                f"({self.channels} x {self.n_mels} = {self.num_features}) as the authors do. The two are not "
                "convertible: retrain the tokenizer (or use a textseld version from before this change)"
            )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)


class ResidualConvBlock(nn.Module):
    """Conv3x3-BN-ReLU x2 plus Conv1x1-BN shortcut, summed / sqrt(2), then AvgPool; ``(B, Ci, T, F) -> (B, Co, T/pt, F/pf)``."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int]) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.pool = nn.AvgPool2d(kernel_size=pool, stride=pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, Ci, T, F)`` -> ``(B, Co, T // pool_t, F // pool_f)``."""
        return self.pool((self.main(x) + self.residual(x)) * (1.0 / math.sqrt(2.0)))


class RCCEncoder(nn.Module):
    """RCC encoder: ``(batch, in_channels, T, F)`` -> ``(batch, T / 5, F / 16, channels[-1])`` with default pools."""

    #: the multi-feature attention includes this encoder's stream when it is the source encoder
    fuse_by_default = True

    def __init__(self, cfg: RCCConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_norm = ChannelMelBatchNorm(cfg.in_channels, cfg.n_mels)
        widths = [cfg.in_channels, *cfg.channels]
        self.blocks = nn.Sequential(
            *[ResidualConvBlock(widths[i], widths[i + 1], cfg.pools[i]) for i in range(len(cfg.channels))]
        )
        self.conformers = ConformerStack(cfg.out_dim, cfg.conformer, cfg.num_conformers)

    @classmethod
    def from_config(cls, cfg: RCCConfig, d_model: int | None = None, load_pretrained: bool = True) -> "RCCEncoder":
        """An RCC encoder; ``d_model`` (when given) must equal ``cfg.channels[-1]``; RCC has no pre-trained weights."""
        if d_model is not None and cfg.out_dim != d_model:
            raise ConfigError(f"rcc: channels[-1] = {cfg.out_dim} must equal the tokenizer d_model = {d_model}")
        return cls(cfg)

    @property
    def out_dim(self) -> int:
        """Width of each output token."""
        return self.cfg.out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, T, F)`` -> ``(batch, T', F', out_dim)`` (T' = 50, F' = 4 for 250 x 64 input)."""
        if x.dim() != 4 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(
                f"RCC encoder expects (batch, {self.cfg.in_channels}, time, freq), got shape {tuple(x.shape)}"
            )
        pt, pf = self.cfg.downsampling()
        if x.shape[2] % pt or x.shape[3] % pf:
            raise ValueError(
                f"RCC encoder input (time, freq) = {tuple(x.shape[2:])} is not divisible by its pooling ({pt}, {pf})"
            )
        y = self.blocks(self.input_norm(x))  # (B, D, T', F')
        b, d, t, f = y.shape
        rows = y.permute(0, 3, 2, 1).reshape(b * f, t, d)  # each frequency row is its own time sequence
        rows = self.conformers(rows)
        return rows.reshape(b, f, t, d).permute(0, 2, 1, 3).contiguous()
