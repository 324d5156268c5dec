"""Tiny model configs shared by the model tests (from :mod:`seld.models.tiny`) and random inputs of
the real size."""
from __future__ import annotations

import torch

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
