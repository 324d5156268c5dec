"""The frozen text encoder contract: audio tokens injected at a template's placeholder slots
(:meth:`FrozenTextEncoder.forward_injected`), plain sentences encoded without gradient, weights
frozen and eval mode kept; plus what every concrete encoder's loading shares (:func:`weights_rng`,
:func:`existing_path`).

Injection: the template's ids go through the encoder's word-embedding table with the three
placeholder ids swapped for the pad id (they lie past the table, see :mod:`seld.text.tokenization`),
the rows at the slot positions are replaced by the audio tokens, and the result takes the encoder's
own embedding path (:meth:`FrozenTextEncoder._encode_embeddings`). Gradients flow through the frozen
weights to the injected tokens; where they do, on a CPU under bf16 autocast, attention runs as
plain matmul + softmax (sdpa's math backend): the fused CPU kernel's bf16 backward is several times
slower (``scripts/bench/bench_training.py --stages live``).
"""
from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch
from torch import nn

from seld.errors import CheckpointError, ConfigError
from seld.models.text_encoders.config import POOLINGS, TextEncoderConfig
from seld.text.tokenization import SentenceBatch, TemplateBatch, TemplateTokenizer


@dataclass
class EncoderOutput:
    """Output of an injected forward pass.

    ``pooled`` (N, out_dim): the audio-driven embedding A (CLIP: EOT state @ projection; BERT:
    [CLS] state; with pooling ``mean`` the token mean in their place). ``hidden`` (N, L, width):
    last hidden states (after CLIP's final LayerNorm; positions after EOT are padding).
    ``slot_hidden`` (N, 3, width): ``hidden`` at the (SRC, DOA, DIST) positions, the TREP head's input.
    """

    pooled: torch.Tensor
    hidden: torch.Tensor
    slot_hidden: torch.Tensor


@contextlib.contextmanager
def weights_rng(cfg: TextEncoderConfig) -> Iterator[None]:
    """With ``init: random``, draw the weights built inside from ``init_seed`` on a forked CPU RNG
    (the global RNG is restored afterwards); otherwise do nothing."""
    if not cfg.random_init:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.init_seed)
        yield


def existing_path(path: str, what: str, want_dir: bool) -> str:
    """``path`` (``~`` expanded) if it is a folder (``want_dir``) or a file; CheckpointError naming ``what`` otherwise."""
    p = Path(path).expanduser()
    if want_dir and not p.is_dir():
        raise CheckpointError(f"{what}: local model folder not found: {p}")
    if not want_dir and not p.is_file():
        raise CheckpointError(f"{what}: local checkpoint file not found: {p}")
    return str(p)


def _attention_backend(embeds: torch.Tensor) -> contextlib.AbstractContextManager:
    """sdpa's math backend where a backward pass will run through the encoder on a CPU in bf16
    autocast (the fused kernel's bf16 backward is the slow part there); elsewhere no change."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if (embeds.device.type == "cpu" and embeds.requires_grad and torch.is_grad_enabled()
            and torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16):
        return sdpa_kernel(SDPBackend.MATH)
    return contextlib.nullcontext()


class FrozenTextEncoder(nn.Module):
    """Base class: a frozen text encoder that accepts audio tokens at placeholder positions.

    Subclasses set ``width`` (token width = embed_dim), ``out_dim`` (pooled width), ``tokenizer``
    and ``pooling``, implement ``num_embeddings``, ``_word_embeddings`` and ``_encode_embeddings``
    (reading the pooled row with :meth:`_pool`), and call :meth:`_freeze` at the end of ``__init__``.
    """

    width: int
    out_dim: int
    tokenizer: TemplateTokenizer
    pooling: str = "token"
    sentence_pooling: str = "token"
    """The readout the encoder's pre-training gave whole sentences (what sentence similarity should
    use, whatever ``pooling`` the model reads A with): end-of-text for CLIP; for BERT the pooling a
    sentence-transformers folder declares (MiniLM: ``mean``), else the configured ``pooling``."""
    embeds_sentences: bool = True
    """Whether sentences have an embedding (the alignment loss, retrieval); False for ``kind: none``."""

    @classmethod
    def from_config(cls, cfg: TextEncoderConfig) -> "FrozenTextEncoder":
        """The encoder of this class described by ``cfg``."""
        return cls(cfg)

    @property
    def embed_dim(self) -> int:
        """Width of the audio tokens to inject (= ``width``)."""
        return self.width

    @property
    def device(self) -> torch.device:
        """Where the encoder's weights live (or its buffers, for an encoder without weights)."""
        return next(itertools.chain(self.parameters(), self.buffers())).device

    def _word_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Return the word embeddings (N, L, width) of ids (N, L)."""
        raise NotImplementedError

    def _encode_embeddings(
        self, embeds: torch.Tensor, attention_mask: torch.Tensor, eot_positions: torch.Tensor, pooling: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (pooled (N, out_dim), hidden (N, L, width)) for word embeddings (N, L, width), pooled by ``pooling``."""
        raise NotImplementedError

    @property
    def num_embeddings(self) -> int:
        """Rows of the word-embedding table."""
        raise NotImplementedError

    @staticmethod
    def _pool(hidden: torch.Tensor, attention_mask: torch.Tensor, token_positions: torch.Tensor,
              pooling: str) -> torch.Tensor:
        """Read (N, width) from ``hidden`` (N, L, width): at ``token_positions`` (N,) (pooling ``token``)
        or the mean over the positions where ``attention_mask`` is 1 (pooling ``mean``)."""
        if pooling == "mean":
            weight = attention_mask.to(hidden.dtype).unsqueeze(-1)
            return (hidden * weight).sum(1) / weight.sum(1).clamp_min(1.0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), token_positions]

    def _freeze(self) -> None:
        self.requires_grad_(False)
        super().train(False)
        bos, eot, pad = self.tokenizer.bos_id, self.tokenizer.eot_id, self.tokenizer.pad_id
        if max(bos, eot, pad) >= self.num_embeddings:
            raise ConfigError(
                f"tokenizer {self.tokenizer.name!r} uses ids up to {max(bos, eot, pad)} but the encoder's embedding "
                f"table has {self.num_embeddings} rows: tokenizer and model do not match"
            )

    def train(self, mode: bool = True) -> "FrozenTextEncoder":
        """Stay in eval mode whatever ``mode`` (frozen: no dropout, fixed statistics)."""
        return super().train(False)

    def forward_injected(self, batch: TemplateBatch, tokens: torch.Tensor) -> EncoderOutput:
        """Return the encoder outputs with ``tokens`` (N, 3, width) injected at the slots of ``batch`` (B, L).

        N must be a multiple of B: template ``b`` serves token rows ``b*k .. b*k + k - 1`` with
        ``k = N // B`` (e.g. one template per clip, k = 50 frames). Tokens shaped
        (B, T, 3, width), one template per clip, give outputs shaped (B, T, ...) likewise.
        """
        if tokens.dim() == 4:
            if tokens.shape[0] != len(batch):
                raise ValueError(f"tokens {tuple(tokens.shape)} need one template per clip, got {len(batch)}")
            b, t = tokens.shape[:2]
            out = self.forward_injected(batch, tokens.reshape(b * t, *tokens.shape[2:]))
            return EncoderOutput(
                pooled=out.pooled.reshape(b, t, -1),
                hidden=out.hidden.reshape(b, t, *out.hidden.shape[1:]),
                slot_hidden=out.slot_hidden.reshape(b, t, 3, -1),
            )
        if tokens.dim() != 3 or tokens.shape[1:] != (3, self.width):
            raise ValueError(f"tokens must be (N, 3, {self.width}) or (B, T, 3, {self.width}), got {tuple(tokens.shape)}")
        n, b = tokens.shape[0], len(batch)
        if b == 0 or n % b:
            raise ValueError(f"{n} token rows cannot be split over {b} templates (N must be a multiple of B)")
        batch = batch.to(tokens.device)
        ids, mask, slots, eot = batch.input_ids, batch.attention_mask, batch.slot_positions, batch.eot_positions
        if n != b:
            k = n // b
            ids, mask, slots, eot = (t.repeat_interleave(k, dim=0) for t in (ids, mask, slots, eot))
        # Placeholder ids lie past the embedding table: look up the pad row there, then overwrite it.
        ids = ids.scatter(1, slots, self.tokenizer.pad_id)
        embeds = self._word_embeddings(ids)
        index = slots.unsqueeze(-1).expand(-1, -1, self.width)
        embeds = embeds.scatter(1, index, tokens.to(embeds.dtype))
        with _attention_backend(embeds):
            pooled, hidden = self._encode_embeddings(embeds, mask, eot, self.pooling)
        return EncoderOutput(pooled=pooled, hidden=hidden, slot_hidden=hidden.gather(1, index))

    def forward(self, batch: TemplateBatch, tokens: torch.Tensor) -> EncoderOutput:
        """Same as :meth:`forward_injected`."""
        return self.forward_injected(batch, tokens)

    def encode_ids(self, batch: SentenceBatch, pooling: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (pooled (N, out_dim), hidden (N, L, width)) of tokenized sentences (with autograd),
        pooled by ``pooling`` (None = the encoder's own)."""
        if pooling is not None and pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
        ids, mask, eot = (t.to(self.device) for t in batch)
        if int(ids.max()) >= self.num_embeddings:
            raise ValueError(f"token id {int(ids.max())} is past the embedding table ({self.num_embeddings} rows)")
        return self._encode_embeddings(self._word_embeddings(ids), mask, eot, pooling or self.pooling)

    @torch.no_grad()
    def encode_text(self, sentences: Sequence[str], pooling: Optional[str] = None) -> torch.Tensor:
        """Return the pooled embeddings (N, out_dim) of plain sentences, without gradient; ``pooling``
        (``token`` | ``mean``) reads them another way than the model's own for this call."""
        return self.encode_ids(self.tokenizer.encode_sentences(list(sentences)), pooling)[0]
