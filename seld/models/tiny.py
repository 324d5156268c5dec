"""Tiny configs of every model part: the real structure at a small width, fast on a CPU.

Used by the tests, the smoke runs and the benchmarks' ``tiny`` settings (``scripts/bench/``); the
tiny text encoders are :func:`seld.models.text_encoders.tiny_text_encoder_config`.
"""
from __future__ import annotations

from seld.models.beats import BEATsConfig
from seld.models.beats_source import BeatsEncoderConfig
from seld.models.conformer import ConformerConfig
from seld.models.fusion import FusionConfig
from seld.models.rcc import RCCConfig
from seld.models.tokenizer import TokenizerConfig

D_MODEL = 16
EMBED_DIM = 12
T_IN, F_IN = 250, 64  # real input size: 250 STFT frames x 64 mel


def tiny_conformer(dropout: float = 0.0) -> ConformerConfig:
    """A conformer block of 2 heads, FFN x2 and a 5-tap convolution."""
    return ConformerConfig(num_heads=2, ffn_mult=2, kernel_size=5, dropout=dropout)


def tiny_rcc(in_channels: int, n_mels: int = F_IN) -> RCCConfig:
    """An RCC encoder of channels 4-8-8-``D_MODEL`` and one conformer block."""
    return RCCConfig(in_channels=in_channels, n_mels=n_mels, channels=[4, 8, 8, D_MODEL], num_conformers=1,
                     conformer=tiny_conformer())


def tiny_beats(**overrides) -> BEATsConfig:
    """A 2-layer BEATs of width 32 (random weights); ``overrides`` replace any field."""
    values = dict(
        encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=4,
        embed_dim=24, conv_pos=16, conv_pos_groups=4, num_buckets=32, max_distance=64,
    )
    values.update(overrides)
    return BEATsConfig(**values)


def tiny_beats_encoder(**overrides) -> BeatsEncoderConfig:
    """The BEATs source encoder over :func:`tiny_beats`, reading layers 1 and 2."""
    values = dict(layers=[1, 2], beats=tiny_beats())
    values.update(overrides)
    return BeatsEncoderConfig(**values)


def tiny_tokenizer(source: str = "rcc", **overrides) -> TokenizerConfig:
    """The three-stream tokenizer with ``source`` (``rcc`` | ``beats``) as its source encoder, width
    ``D_MODEL``, embeddings of ``EMBED_DIM`` and one fusion block."""
    values = dict(
        source_encoder=source, rcc=tiny_rcc(1), beats=tiny_beats_encoder(), doa=tiny_rcc(4), dist=tiny_rcc(2),
        d_model=D_MODEL, embed_dim=EMBED_DIM, fusion=FusionConfig(num_blocks=1, conformer=tiny_conformer()),
    )
    values.update(overrides)
    return TokenizerConfig(**values)
