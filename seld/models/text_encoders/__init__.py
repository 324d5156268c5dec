"""Frozen pre-trained text encoders with audio-token injection (spec section 6).

Four kinds, chosen by ``TextEncoderConfig.kind`` (table :data:`TEXT_ENCODERS`, re-exported by
:mod:`seld.models.registry` beside the other model tables), one file each:

- ``clip`` / ``hf_clip`` (:mod:`.clip`): CLIP's text tower through open_clip or Hugging Face,
  pooled at the end-of-text token, then the text projection.
- ``bert`` (:mod:`.bert`): any Hugging Face ``BertModel``, pooled at [CLS]; ``name: minilm`` is the
  offline all-MiniLM-L6-v2. :mod:`.huggingface` holds the loading ``hf_clip`` and ``bert`` share.
- ``none`` (:mod:`.no_language`): the no-language control, the heads read the audio tokens.

:mod:`.config` says which encoder and from where (and builds tiny configs for tests),
:mod:`.base` is the contract they share (injection at the template's slots, frozen weights),
:mod:`.cache` keeps the ground-truth sentence embeddings of the embedding loss.

``TextEncoderConfig.pooling: mean`` reads A as the mean of the last hidden states over the
sentence's tokens instead of at the token (an option; the seed pools at the token).
``TextEncoderConfig.init: random`` builds the random-weight twin of any of them (a control: what
the encoder's pre-training adds): the same architecture and tokenizer, weights drawn by the
library's own initialisation from ``init_seed``, nothing downloaded.
"""
from __future__ import annotations

from seld.models.lookup import lookup
from seld.models.text_encoders.base import EncoderOutput, FrozenTextEncoder
from seld.models.text_encoders.bert import BertTextEncoder, declared_pooling
from seld.models.text_encoders.cache import GroundTruthCache
from seld.models.text_encoders.clip import HFClipTextEncoder, OpenClipTextEncoder
from seld.models.text_encoders.config import (
    DEFAULT_NAMES,
    INITS,
    KIND_NAME,
    MINILM_NAME,
    POOLINGS,
    TextEncoderConfig,
    minilm_path,
    tiny_text_encoder_config,
)
from seld.models.text_encoders.no_language import NoLanguageEncoder

TEXT_ENCODERS: dict[str, type[FrozenTextEncoder]] = {
    "clip": OpenClipTextEncoder,
    "hf_clip": HFClipTextEncoder,
    "bert": BertTextEncoder,
    "none": NoLanguageEncoder,
}
"""``TextEncoderConfig.kind`` -> encoder class (the same kinds as :data:`DEFAULT_NAMES`)."""


def get_text_encoder(kind: str) -> type[FrozenTextEncoder]:
    """The text encoder class registered as ``kind``; ConfigError listing valid names otherwise."""
    return lookup(TEXT_ENCODERS, kind, KIND_NAME)


def build_text_encoder(cfg: TextEncoderConfig) -> FrozenTextEncoder:
    """Return the frozen text encoder ``cfg`` names; ConfigError listing the valid kinds otherwise."""
    return get_text_encoder(cfg.kind).from_config(cfg)


__all__ = [
    "BertTextEncoder", "DEFAULT_NAMES", "EncoderOutput", "FrozenTextEncoder", "GroundTruthCache", "HFClipTextEncoder",
    "INITS", "MINILM_NAME", "NoLanguageEncoder", "OpenClipTextEncoder", "POOLINGS", "TEXT_ENCODERS",
    "TextEncoderConfig", "build_text_encoder", "declared_pooling", "get_text_encoder", "minilm_path",
    "tiny_text_encoder_config",
]
