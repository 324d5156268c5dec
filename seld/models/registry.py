"""Name -> class maps that configs select from; adding a variant is one file and one line here."""
from __future__ import annotations

from torch import nn

from seld.errors import ConfigError
from seld.models.beats import BeatsSourceEncoder
from seld.models.heads import GrepHead, TrepHead
from seld.models.rcc import RCCEncoder

#: source encoders (``tokenizer.source_encoder``); the tokenizer config has a sub-config of the same name
SOURCE_ENCODERS: dict[str, type[nn.Module]] = {
    "rcc": RCCEncoder,
    "beats": BeatsSourceEncoder,
}

#: fine-tuning prediction heads (``head.type``)
HEADS: dict[str, type[nn.Module]] = {
    "grep": GrepHead,
    "trep": TrepHead,
}


def _lookup(table: dict[str, type[nn.Module]], name: str, what: str) -> type[nn.Module]:
    if name not in table:
        raise ConfigError(f"unknown {what} {name!r}; valid names: {', '.join(sorted(table))}")
    return table[name]


def get_source_encoder(name: str) -> type[nn.Module]:
    """The source encoder class registered as ``name``; ConfigError listing valid names otherwise."""
    return _lookup(SOURCE_ENCODERS, name, "source encoder")


def get_head(name: str) -> type[nn.Module]:
    """The head class registered as ``name``; ConfigError listing valid names otherwise."""
    return _lookup(HEADS, name, "head")
