"""Name -> class maps that configs select from; adding a variant is one file and one line here.

Imports only downward: the heads' table lives in :mod:`seld.models.heads` and the text encoders'
in :mod:`seld.models.text_encoders` (both re-exported here, each beside its classes), the lookup
helper in :mod:`seld.models.lookup`, so nothing below imports this module.
"""
from __future__ import annotations

from torch import nn

from seld.models.beats_source import BeatsSourceEncoder
from seld.models.heads import HEADS, get_head
from seld.models.lookup import lookup
from seld.models.rcc import RCCEncoder
from seld.models.text_encoders import TEXT_ENCODERS, get_text_encoder

#: source encoders (``tokenizer.source_encoder``); the tokenizer config has a sub-config of the same name
SOURCE_ENCODERS: dict[str, type[nn.Module]] = {
    "rcc": RCCEncoder,
    "beats": BeatsSourceEncoder,
}

__all__ = ["HEADS", "SOURCE_ENCODERS", "TEXT_ENCODERS", "get_head", "get_source_encoder", "get_text_encoder"]


def get_source_encoder(name: str) -> type[nn.Module]:
    """The source encoder class registered as ``name``; ConfigError listing valid names otherwise."""
    return lookup(SOURCE_ENCODERS, name, "source encoder")
