"""The no-language control (kind ``none``): no text encoder at all, the heads read the audio tokens."""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from seld.errors import ConfigError
from seld.models.text_encoders.base import EncoderOutput, FrozenTextEncoder
from seld.models.text_encoders.config import TextEncoderConfig
from seld.text.tokenization import TemplateBatch


class _NoTemplates:
    """The template side of :class:`NoLanguageEncoder`: one empty row per template (nothing is read)."""

    name = "none"

    def encode_templates(self, templates: Sequence[str]) -> TemplateBatch:
        n = len(templates)
        return TemplateBatch(torch.zeros(n, 1, dtype=torch.long), torch.ones(n, 1, dtype=torch.long),
                             torch.zeros(n, 3, dtype=torch.long), torch.zeros(n, dtype=torch.long))

    @staticmethod
    def fits(sentence: str) -> bool:
        return True


class NoLanguageEncoder(FrozenTextEncoder):
    """``kind: none``, the no-language control: no text encoder at all. A is the mean of the three
    tokens ``(N, width)`` and TREP reads the tokens themselves, so a head on top has exactly the
    trainable size it has on a real encoder of the tokens' width (``model_config: {width: N}``, filled
    in by the fine-tuning builder). There is no sentence embedding: use it with ``loss.embed_weight: 0``."""

    embeds_sentences = False

    def __init__(self, cfg: TextEncoderConfig) -> None:
        super().__init__()
        width = (cfg.model_config or {}).get("width")
        if not isinstance(width, int) or width < 1 or set(cfg.model_config or {}) != {"width"}:
            raise ConfigError(f"text encoder kind 'none' needs model_config {{width: N}} (the tokens' width), got {cfg.model_config}")
        if cfg.path or cfg.random_init:
            raise ConfigError("text encoder kind 'none' has no weights: 'path' and 'init: random' do not apply")
        self.width = self.out_dim = width
        self.tokenizer = _NoTemplates()  # type: ignore[assignment]
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)  # .device without parameters

    def forward_injected(self, batch: TemplateBatch, tokens: torch.Tensor) -> EncoderOutput:
        return EncoderOutput(pooled=tokens.mean(dim=-2), hidden=tokens, slot_hidden=tokens)

    def encode_text(self, sentences: Sequence[str], pooling: Optional[str] = None) -> torch.Tensor:
        raise ConfigError("text encoder kind 'none' (no language) embeds no sentences: set loss.embed_weight 0")
