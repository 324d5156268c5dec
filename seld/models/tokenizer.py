"""The tokenizer (spec section 5): three feature streams -> three tokens per 100 ms frame.

    src  (B, C_src, 250, 64) -> source encoder (rcc | beats) -> (B, 50, 4, d_model) --+
    doa  (B, C_doa, 250, 64) -> RCC                          -> (B, 50, 4, d_model) --+-> multi-feature attention
    dist (B, C_dist, 250, 64) -> RCC                         -> (B, 50, 4, d_model) --+   (source only if RCC)
      -> projections P_audio / P_doa / P_dist (MLP + pooling over the 4 rows: attention | sum)
      -> tokens (B, 50, 3, embed_dim) in the order [source, doa, dist]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from seld.errors import ConfigError
from seld.models.beats_source import BeatsEncoderConfig
from seld.models.fusion import FusionConfig, MultiFeatureAttention
from seld.models.projection import POOLINGS, Pooling, Projection
from seld.models.rcc import RCCConfig, RCCEncoder
from seld.models.registry import SOURCE_ENCODERS, get_source_encoder

#: token order along axis 2 of the tokenizer output
STREAMS: tuple[str, str, str] = ("source", "doa", "dist")


@dataclass
class TokenizerConfig:
    """The tokenizer. ``source_encoder`` names a registry entry and the sub-config of the same name."""

    source_encoder: str = "rcc"
    rcc: RCCConfig = field(default_factory=lambda: RCCConfig(in_channels=1))  # source encoder when "rcc"
    beats: BeatsEncoderConfig = field(default_factory=BeatsEncoderConfig)  # source encoder when "beats"
    doa: RCCConfig = field(default_factory=lambda: RCCConfig(in_channels=4))  # [logmel_l, logmel_r, ivy, ild]
    dist: RCCConfig = field(default_factory=lambda: RCCConfig(in_channels=2))  # [direct_logmel, reverb_logmel]
    d_model: int = 512  # width of every encoder output and of the multi-feature attention
    embed_dim: int = 512  # token width = the text encoder's width
    fusion: FusionConfig = field(default_factory=FusionConfig)
    fuse_source: Optional[bool] = None  # None: the source encoder's default (RCC yes, BEATs no)
    pooling: Pooling = "attention"
    """Projection pooling over the 4 rows: ``attention`` (softmax over rows; the seed) or ``sum``
    (what the authors' code computes, its softmax being over an axis of size 1)."""

    def __post_init__(self) -> None:
        if self.source_encoder not in SOURCE_ENCODERS:
            raise ConfigError(
                f"tokenizer: unknown source_encoder {self.source_encoder!r}; valid names: {', '.join(sorted(SOURCE_ENCODERS))}"
            )
        if self.d_model < 1 or self.embed_dim < 1:
            raise ConfigError(f"tokenizer: d_model and embed_dim must be positive, got {self.d_model}, {self.embed_dim}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"tokenizer: unknown pooling {self.pooling!r}; valid: {', '.join(POOLINGS)}")

    @property
    def source_config(self) -> RCCConfig | BeatsEncoderConfig:
        """The sub-config of the selected source encoder."""
        return getattr(self, self.source_encoder)


class Tokenizer(nn.Module):
    """``(src, doa, dist)`` feature maps -> tokens ``(batch, T', 3, embed_dim)`` [source, doa, dist]."""

    def __init__(self, cfg: TokenizerConfig, load_pretrained: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        encoder_cls = get_source_encoder(cfg.source_encoder)
        try:
            self.source_encoder = encoder_cls.from_config(cfg.source_config, cfg.d_model, load_pretrained=load_pretrained)
            self.doa_encoder = RCCEncoder.from_config(cfg.doa, cfg.d_model)
            self.dist_encoder = RCCEncoder.from_config(cfg.dist, cfg.d_model)
        except ConfigError as exc:
            raise ConfigError(f"tokenizer: {exc}") from exc
        fuse_source = encoder_cls.fuse_by_default if cfg.fuse_source is None else cfg.fuse_source
        self.fused_streams = [s for s in STREAMS if s != "source" or fuse_source]
        self.fusion = MultiFeatureAttention.from_config(cfg.fusion, self.fused_streams, cfg.d_model)
        self.projections = nn.ModuleDict({s: Projection(cfg.d_model, cfg.embed_dim, cfg.pooling) for s in STREAMS})

    @classmethod
    def from_config(cls, cfg: TokenizerConfig, load_pretrained: bool = True) -> "Tokenizer":
        """The tokenizer; ``load_pretrained=False`` skips reading a BEATs checkpoint (weights come from elsewhere)."""
        return cls(cfg, load_pretrained=load_pretrained)

    @property
    def embed_dim(self) -> int:
        """Token width."""
        return self.cfg.embed_dim

    def stream_features(self, src: torch.Tensor, doa: torch.Tensor, dist: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encoded and fused streams ``{source, doa, dist: (batch, T', rows, d_model)}`` before projection."""
        feats = {"source": self.source_encoder(src), "doa": self.doa_encoder(doa), "dist": self.dist_encoder(dist)}
        shapes = {k: tuple(v.shape) for k, v in feats.items()}
        if len(set(shapes.values())) != 1:
            raise ValueError(f"tokenizer: the three encoders give different shapes {shapes}; check the input sizes and pools")
        return self.fusion(feats)

    def project(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        """Streams ``{source, doa, dist: (batch, T', rows, d_model)}`` (:meth:`stream_features`) through
        P_audio / P_doa / P_dist -> tokens ``(batch, T', 3, embed_dim)``."""
        return torch.stack([self.projections[s](feats[s]) for s in STREAMS], dim=2)

    def forward(self, src: torch.Tensor, doa: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """``src (B, C_src, 250, 64)``, ``doa (B, C_doa, 250, 64)``, ``dist (B, C_dist, 250, 64)`` -> ``(B, 50, 3, embed_dim)``."""
        return self.project(self.stream_features(src, doa, dist))

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters that training updates (everything but the frozen BEATs transformer)."""
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_groups(self) -> dict[str, list[str]]:
        """Parameter names split into ``trainable`` and ``frozen``."""
        groups: dict[str, list[str]] = {"trainable": [], "frozen": []}
        for name, p in self.named_parameters():
            groups["trainable" if p.requires_grad else "frozen"].append(name)
        return groups


def build_tokenizer(cfg: TokenizerConfig, load_pretrained: bool = True) -> Tokenizer:
    """The tokenizer described by ``cfg``."""
    return Tokenizer.from_config(cfg, load_pretrained=load_pretrained)
