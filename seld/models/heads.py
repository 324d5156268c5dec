"""SELD prediction heads: all return the activated multi-ACCDOA output ``(batch, 50, 117)`` (tanh x, y; ReLU distance).

* ``PretrainHead`` (pre-training, spec section 5): concatenated tokens ``3 * embed_dim`` -> Linear -> 117.
* ``GrepHead`` (GREP, spec section 6): pooled embedding A -> Linear(E, E) -> [activation] -> Linear(E, 117);
  default activation ``none`` (two plain Linear layers, as the authors' fine-tuning code).
* ``TrepHead`` (TREP): the text encoder's last hidden states at the three token positions,
  concatenated ``3 * embed_dim`` -> Linear -> 117 (the pre-training head's body, a sibling class); ``init_from``
  starts it from the pre-training head.

Every head also gives its raw (pre-activation) output, ``raw``; GREP and TREP name their last
layer, ``output_layer``: with ``HeadConfig.residual`` the fine-tuning model adds the raw output to
the pre-training head's raw output of the tokens before the activation (``seld.tasks.finetune``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
from torch import nn

from seld.accdoa import activate_output
from seld.constants import OUTPUT_DIM
from seld.errors import ConfigError
from seld.models.lookup import lookup

_ACTIVATIONS = {"none": nn.Identity, "gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}
"""GREP activations between its two Linear layers; ``none`` = the authors' two plain Linear layers."""


class _ConcatTokenHead(nn.Module):
    """Three vectors per frame ``(batch, T, 3, E)`` -> concat ``3E`` -> Linear(3E, 117) -> activated ``(batch, T, 117)``.

    The one body of :class:`PretrainHead` and :class:`TrepHead`: they are siblings, not one class, so
    ``isinstance`` still tells a pre-training head from a TREP head; the state dict is ``linear.*``.
    """

    name = "three-token head"
    """How shape errors name the head."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.linear = nn.Linear(3 * embed_dim, OUTPUT_DIM)

    def raw(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(batch, T, 3, embed_dim)`` -> ``(batch, T, 117)`` before the output activation."""
        if tokens.dim() != 4 or tokens.shape[-2:] != (3, self.embed_dim):
            raise ValueError(f"{self.name} expects (batch, T, 3, {self.embed_dim}), got shape {tuple(tokens.shape)}")
        return self.linear(tokens.flatten(-2))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(batch, T, 3, embed_dim)`` -> ``(batch, T, 117)`` activated."""
        return activate_output(self.raw(tokens))


class PretrainHead(_ConcatTokenHead):
    """Tokens ``(batch, T, 3, E)`` [source, doa, dist] -> concat ``3E`` -> Linear -> activated ``(batch, T, 117)``."""

    name = "pre-training head"


class TrepHead(_ConcatTokenHead):
    """Hidden states at the three token positions ``(batch, T, 3, E)`` -> Linear(3E, 117) -> activated ``(batch, T, 117)``."""

    name = "TREP head"

    def init_from(self, head: PretrainHead) -> "TrepHead":
        """Copy the pre-training head's weights (same layout: concat of [source, doa, dist]); returns self."""
        if not isinstance(head, PretrainHead) or head.linear.weight.shape != self.linear.weight.shape:
            got = tuple(head.linear.weight.shape) if isinstance(head, PretrainHead) else type(head).__name__
            raise ValueError(f"TREP head {tuple(self.linear.weight.shape)} cannot start from {got}")
        with torch.no_grad():
            self.linear.weight.copy_(head.linear.weight)
            self.linear.bias.copy_(head.linear.bias)
        return self

    @property
    def output_layer(self) -> nn.Linear:
        return self.linear


class GrepHead(nn.Module):
    """Pooled embedding A ``(batch, T, E)`` -> Linear(E, H) -> activation -> dropout -> Linear(H, 117) -> activated ``(batch, T, 117)``.

    ``activation="none"`` (default) gives the authors' two plain Linear layers (spec section 8).
    """

    def __init__(self, embed_dim: int, hidden_dim: Optional[int] = None, activation: str = "none", dropout: float = 0.0) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"GREP head: unknown activation {activation!r}; valid: {', '.join(_ACTIVATIONS)}")
        hidden = hidden_dim or embed_dim
        self.embed_dim = embed_dim
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, hidden), _ACTIVATIONS[activation](), nn.Dropout(dropout), nn.Linear(hidden, OUTPUT_DIM)
        )

    @property
    def output_layer(self) -> nn.Linear:
        layer = self.mlp[-1]
        assert isinstance(layer, nn.Linear)
        return layer

    def raw(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(batch, T, embed_dim)`` -> ``(batch, T, 117)`` before the output activation."""
        if pooled.dim() != 3 or pooled.shape[-1] != self.embed_dim:
            raise ValueError(f"GREP head expects (batch, T, {self.embed_dim}), got shape {tuple(pooled.shape)}")
        return self.mlp(pooled)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(batch, T, embed_dim)`` -> ``(batch, T, 117)`` activated."""
        return activate_output(self.raw(pooled))


#: fine-tuning prediction heads (``head.type``); :mod:`seld.models.registry` re-exports this table
HEADS: dict[str, type[nn.Module]] = {
    "grep": GrepHead,
    "trep": TrepHead,
}


def get_head(name: str) -> type[nn.Module]:
    """The head class registered as ``name``; ConfigError listing valid names otherwise."""
    return lookup(HEADS, name, "head")


@dataclass
class HeadConfig:
    """A fine-tuning head: ``type`` is ``grep`` or ``trep``; the other fields apply to GREP only."""

    type: str = "grep"
    hidden_dim: Optional[int] = None  # GREP hidden width; None = embed_dim
    activation: Literal["none", "gelu", "relu", "tanh"] = "none"
    """GREP activation between its two Linear layers; ``none`` = the authors' code (spec section 8)."""
    dropout: float = 0.0
    init_from_pretrain: bool = True  # TREP: start from the pre-training head when one is available
    init: Literal["random", "lstsq"] = "random"
    """Head start: ``random`` (PyTorch's Linear init for GREP, the pre-training head's weights for TREP
    with ``init_from_pretrain``; the paper's recipe) or ``lstsq``: before the first step of a new run
    (not on resume), the ridge regression from the head's input (GREP: the pooled embedding A; TREP:
    the hidden states at the three token positions; frozen tokenizer + text encoder, evaluation
    template, training clips) to the pre-training head's raw outputs is written into the head (GREP:
    the second Linear layer, the first = identity when ``hidden_dim`` is the embedding width), so the
    head starts near the tokenizer's level; needs ``model.pretrained``, and for GREP
    ``activation: none`` (see seld/train/head_init.py)."""
    lstsq_ridge: float = 1e-3
    """``init: lstsq``: ridge weight relative to the mean diagonal of ``[A, 1]'[A, 1]``."""
    lstsq_max_clips: Optional[int] = None
    """``init: lstsq``: fit on the first this many training clips (None: all)."""
    residual: bool = False
    """Recipe option (False = the paper's head): keep the pre-training head as a direct path from the
    tokens, ``output = activate(P(tokens) + H(text encoder states))``, with ``P`` the pre-training
    head's Linear (copied from ``model.pretrained``, trained at ``tokenizer_lr``) and ``H`` this GREP /
    TREP head, whose last layer starts at zero: a new run starts exactly at its tokenizer's outputs,
    and the text encoder's read-out is learnt as a correction. ``init`` must stay ``random``."""
    lstsq_templates: Literal["eval", "train"] = "eval"
    """``init: lstsq``: the template each training clip is read with for the fit: ``eval`` (the
    evaluation template for all) or ``train`` (one drawn per clip from the templates training draws
    from, ``train_templates``, seeded by ``train.seed``), so the fitted head starts on the inputs
    training will feed it."""

    def __post_init__(self) -> None:
        if self.type not in HEADS:
            raise ConfigError(f"head: unknown type {self.type!r}; valid: {', '.join(sorted(HEADS))}")
        if self.activation not in _ACTIVATIONS:
            raise ConfigError(f"head: unknown activation {self.activation!r}; valid: {', '.join(_ACTIVATIONS)}")
        if self.init not in ("random", "lstsq"):
            raise ConfigError(f"head.init: unknown value {self.init!r}; valid: random, lstsq")
        if self.init == "lstsq" and self.type == "grep" and self.activation != "none":
            raise ConfigError(f"head.init=lstsq needs head.activation=none (a linear GREP head), got {self.activation!r}")
        if self.residual and self.init != "random":
            raise ConfigError(f"head.residual starts the head's output layer at zero; head.init must be random, got {self.init!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"head.dropout must be in [0, 1), got {self.dropout}")
        if self.hidden_dim is not None and self.hidden_dim < 1:
            raise ConfigError(f"head.hidden_dim must be >= 1 or null (the embedding width), got {self.hidden_dim}")
        if not self.lstsq_ridge >= 0:
            raise ConfigError(f"head.lstsq_ridge must be >= 0, got {self.lstsq_ridge}")
        if self.lstsq_templates not in ("eval", "train"):
            raise ConfigError(f"head.lstsq_templates: unknown value {self.lstsq_templates!r}; valid: eval, train")
        if self.lstsq_max_clips is not None and self.lstsq_max_clips < 1:
            raise ConfigError(f"head.lstsq_max_clips must be >= 1 or null, got {self.lstsq_max_clips}")


def build_head(cfg: HeadConfig, embed_dim: int) -> nn.Module:
    """The head named by ``cfg.type`` for tokens of width ``embed_dim``."""
    cls = get_head(cfg.type)
    if cls is GrepHead:
        return GrepHead(embed_dim, cfg.hidden_dim, cfg.activation, cfg.dropout)
    return cls(embed_dim)
