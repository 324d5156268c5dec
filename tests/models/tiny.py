"""Tiny model configs shared by the model tests (fast on CPU, same structure as the defaults)."""
from __future__ import annotations

import torch

from seld.models import BEATsConfig, BeatsEncoderConfig, ConformerConfig, FusionConfig, RCCConfig, TokenizerConfig

D_MODEL = 16
EMBED_DIM = 12
T_IN, F_IN = 250, 64  # real input size: 250 STFT frames x 64 mel


def tiny_conformer(dropout: float = 0.0) -> ConformerConfig:
    return ConformerConfig(num_heads=2, ffn_mult=2, kernel_size=5, dropout=dropout)


def tiny_rcc(in_channels: int, n_mels: int = F_IN) -> RCCConfig:
    return RCCConfig(in_channels=in_channels, n_mels=n_mels, channels=[4, 8, 8, D_MODEL], num_conformers=1,
                     conformer=tiny_conformer())


def tiny_beats(**overrides) -> BEATsConfig:
    values = dict(
        encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=4,
        embed_dim=24, conv_pos=16, conv_pos_groups=4, num_buckets=32, max_distance=64,
    )
    values.update(overrides)
    return BEATsConfig(**values)


def tiny_beats_encoder(**overrides) -> BeatsEncoderConfig:
    values = dict(layers=[1, 2], beats=tiny_beats())
    values.update(overrides)
    return BeatsEncoderConfig(**values)


def tiny_tokenizer(source: str = "rcc", **overrides) -> TokenizerConfig:
    values = dict(
        source_encoder=source, rcc=tiny_rcc(1), beats=tiny_beats_encoder(), doa=tiny_rcc(4), dist=tiny_rcc(2),
        d_model=D_MODEL, embed_dim=EMBED_DIM, fusion=FusionConfig(num_blocks=1, conformer=tiny_conformer()),
    )
    values.update(overrides)
    return TokenizerConfig(**values)


def inputs(batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random (src, doa, dist) feature maps of the real size."""
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, 1, T_IN, F_IN, generator=g),
        torch.randn(batch, 4, T_IN, F_IN, generator=g),
        torch.randn(batch, 2, T_IN, F_IN, generator=g),
    )
