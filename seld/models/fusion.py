"""Segment embeddings + multi-feature attention (spec section 5): the streams attend to each other per frame.

Each fused stream gets a learned segment embedding added to all 4 rows of every frame; the streams'
rows are concatenated per frame (12 tokens with an RCC source, 8 with BEATs, which is left out), a
stack of conformer blocks runs across these tokens (sequence = one frame's tokens, batch = batch x
frames), and the result is split back per stream. Streams not fused pass through unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from seld.errors import ConfigError
from seld.models.conformer import ConformerConfig, ConformerStack


@dataclass
class FusionConfig:
    """The multi-feature attention: ``num_blocks`` conformer blocks across the streams' tokens (authors: 4)."""

    num_blocks: int = 2
    conformer: ConformerConfig = field(default_factory=ConformerConfig)

    def __post_init__(self) -> None:
        if self.num_blocks < 0:
            raise ConfigError(f"fusion: num_blocks must be >= 0, got {self.num_blocks}")


class MultiFeatureAttention(nn.Module):
    """Dict of stream -> ``(batch, T, rows, d)`` in, same dict (fused streams updated) out."""

    def __init__(self, streams: list[str], d_model: int, cfg: FusionConfig) -> None:
        super().__init__()
        if len(set(streams)) != len(streams):
            raise ConfigError(f"fusion: stream names must be unique, got {streams}")
        self.streams = list(streams)
        self.d_model = d_model
        self.segment_embedding = nn.Parameter(torch.randn(len(self.streams), d_model) * 0.02)
        self.blocks = ConformerStack(d_model, cfg.conformer, cfg.num_blocks)

    @classmethod
    def from_config(cls, cfg: FusionConfig, streams: list[str], d_model: int) -> "MultiFeatureAttention":
        """Fusion over ``streams`` of width ``d_model``."""
        return cls(streams, d_model, cfg)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{stream: (batch, T, rows, d)}`` -> same keys and shapes, the fused streams having attended to each other."""
        missing = [s for s in self.streams if s not in features]
        if missing:
            raise ValueError(f"fusion: missing streams {missing}; got {sorted(features)}")
        if not self.streams:
            return dict(features)
        xs = []
        for i, name in enumerate(self.streams):
            x = features[name]
            if x.dim() != 4 or x.shape[-1] != self.d_model:
                raise ValueError(f"fusion: stream '{name}' must be (batch, T, rows, {self.d_model}), got {tuple(x.shape)}")
            xs.append(x + self.segment_embedding[i])
        if len({tuple(x.shape[:2]) for x in xs}) != 1:
            raise ValueError(f"fusion: streams disagree on (batch, T): { {s: tuple(x.shape) for s, x in zip(self.streams, xs)} }")
        rows = [x.shape[2] for x in xs]
        joint = torch.cat(xs, dim=2)  # (B, T, sum(rows), d)
        b, t, n, d = joint.shape
        joint = self.blocks(joint.reshape(b * t, n, d)).reshape(b, t, n, d)
        out = dict(features)
        for name, part in zip(self.streams, torch.split(joint, rows, dim=2)):
            out[name] = part
        return out
