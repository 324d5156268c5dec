"""Parameter counts of a model, part by part (one implementation for ``scripts/bench/model_summary.py``,
``python pretraining/models.py`` and ``python finetuning/models.py``)."""
from __future__ import annotations

from typing import Optional

from torch import nn


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(total, trainable) number of parameter values; shared parameters count once."""
    total = trainable = 0
    for p in module.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return total, trainable


def tokenizer_parts(tokenizer: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of each part of a :class:`~seld.models.tokenizer.Tokenizer`, then the whole tokenizer."""
    cfg = tokenizer.cfg
    return [
        (f"source encoder ({cfg.source_encoder})", tokenizer.source_encoder),
        ("doa encoder (rcc)", tokenizer.doa_encoder),
        ("distance encoder (rcc)", tokenizer.dist_encoder),
        (f"multi-feature attention {tokenizer.fused_streams}", tokenizer.fusion),
        (f"projections x3 ({cfg.pooling} pooling)", tokenizer.projections),
        ("tokenizer", tokenizer),
    ]


def pretrain_parts(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Parts of a :class:`~seld.models.pretrain.PretrainModel`: the tokenizer's, the head, the whole model."""
    return [*tokenizer_parts(model.tokenizer), ("pre-training head", model.head), ("pre-training model", model)]


def finetune_parts(tokenizer: nn.Module, text_encoder: Optional[nn.Module], head: nn.Module,
                   head_name: str, token_head: Optional[nn.Module] = None) -> list[tuple[str, nn.Module]]:
    """Parts of a fine-tuning model (tokenizer, frozen text encoder, head, and with ``model.head.residual``
    the pre-training head kept as the tokens' direct path); ``text_encoder`` None = not built."""
    parts = [*tokenizer_parts(tokenizer)]
    if text_encoder is not None:
        parts.append((f"text encoder ({type(text_encoder).__name__}, frozen)", text_encoder))
    parts.append((f"{head_name} head", head))
    if token_head is not None:
        parts.append(("pre-training head (residual path)", token_head))
    whole = nn.ModuleList([m for m in (tokenizer, text_encoder, head, token_head) if m is not None])
    parts.append(("fine-tuning model" + ("" if text_encoder is not None else " (without the text encoder)"), whole))
    return parts


def part_counts(parts: list[tuple[str, nn.Module]]) -> list[tuple[str, int, int]]:
    """(name, total, trainable) of each part."""
    return [(name, *count_parameters(m)) for name, m in parts]


def format_counts(rows: list[tuple[str, int, int]]) -> str:
    """A table ``part | total | trainable | frozen``."""
    lines = [f"{'part':56s} {'total':>14s} {'trainable':>14s} {'frozen':>14s}"]
    for name, total, trainable in rows:
        lines.append(f"{name:56s} {total:14,d} {trainable:14,d} {total - trainable:14,d}")
    return "\n".join(lines)
