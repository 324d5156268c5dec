"""Tiny model configs shared by the model tests (from :mod:`seld.models.tiny`) and random inputs of
the real size."""
from __future__ import annotations

import torch

from seld.models.beats import BEATs
from seld.models.tiny import (  # noqa: F401 - re-exported for the tests
    D_MODEL,
    EMBED_DIM,
    F_IN,
    T_IN,
    tiny_beats,
    tiny_beats_encoder,
    tiny_conformer,
    tiny_rcc,
    tiny_tokenizer,
)


def inputs(batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random (src, doa, dist) feature maps of the real size."""
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, 1, T_IN, F_IN, generator=g),
        torch.randn(batch, 4, T_IN, F_IN, generator=g),
        torch.randn(batch, 2, T_IN, F_IN, generator=g),
    )


def randomise_gates(model: BEATs) -> None:
    """Make the position bias and its gates of a BEATs far from their init so the tests exercise them."""
    with torch.no_grad():
        for layer in model.encoder.layers:
            attn = layer.self_attn
            attn.grep_a.uniform_(0.5, 1.5)
            attn.grep_linear.weight.normal_(0.0, 0.3)
            attn.relative_attention_bias.weight.normal_(0.0, 1.0)


def tiny_beats_model(seed: int = 7) -> BEATs:
    """A :func:`tiny_beats` model seeded with ``seed``, gates randomised, in eval mode."""
    torch.manual_seed(seed)
    model = BEATs(tiny_beats())
    randomise_gates(model)
    return model.eval()
