"""The pre-training model (spec section 5): tokenizer + pre-training head, trained with ADPIT."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from seld.models.heads import PretrainHead
from seld.models.tokenizer import Tokenizer, TokenizerConfig


@dataclass
class ModelConfig:
    """The pre-training model; the head's width comes from ``tokenizer.embed_dim``."""

    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)


class PretrainModel(nn.Module):
    """``(src, doa, dist)`` -> activated multi-ACCDOA ``(batch, 50, 117)`` via tokens ``(batch, 50, 3, embed_dim)``."""

    def __init__(self, cfg: ModelConfig, load_pretrained: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = Tokenizer(cfg.tokenizer, load_pretrained=load_pretrained)
        self.head = PretrainHead(cfg.tokenizer.embed_dim)

    @classmethod
    def from_config(cls, cfg: ModelConfig, load_pretrained: bool = True) -> "PretrainModel":
        """The model; ``load_pretrained=False`` skips reading a BEATs checkpoint (e.g. before loading a saved model)."""
        return cls(cfg, load_pretrained=load_pretrained)

    def forward(self, src: torch.Tensor, doa: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """``src (B, C_src, 250, 64)``, ``doa``, ``dist`` -> ``(B, 50, 117)`` (tanh x, y; ReLU distance)."""
        return self.head(self.tokenizer(src, doa, dist))
