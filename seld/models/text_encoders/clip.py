"""CLIP's text tower, frozen, through open_clip (kind ``clip``) or Hugging Face (kind ``hf_clip``).

``clip``: default ``ViT-B-16`` with ``pretrained: openai`` (width 512, 12 layers, context 77,
causal mask); the vision tower is dropped. ``hf_clip``: ``CLIPTextModelWithProjection`` (default
``openai/clip-vit-base-patch16``); a checkpoint without ``text_projection`` pools without it.
Both add the positional embedding to the injected word embeddings, run the causal transformer and
pool at the end-of-text position the tokenizer found, never at "the largest id" (the placeholder
ids are larger than CLIP's end token), then apply the text projection. Sequences are padded to the
longest in the batch: with the causal mask, positions up to EOT do not see the padding.
"""
from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from seld.errors import CheckpointError, ConfigError
from seld.models.text_encoders.base import FrozenTextEncoder, existing_path, weights_rng
from seld.models.text_encoders.config import TextEncoderConfig
from seld.models.text_encoders.huggingface import HFTextEncoder
from seld.text.tokenization import TemplateTokenizer

log = logging.getLogger(__name__)

TINY_VISION_CFG: dict[str, Any] = {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16, "head_width": 32}
"""Vision tower built alongside a ``clip`` ``model_config`` that gives none (it is discarded anyway)."""


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
            weights = existing_path(cfg.path, f"clip text encoder {name!r}", want_dir=False) if cfg.path else cfg.pretrained
        try:
            with weights_rng(cfg):
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
        self, embeds: torch.Tensor, attention_mask: torch.Tensor, eot_positions: torch.Tensor, pooling: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        length = embeds.shape[1]
        if length > self.positional_embedding.shape[0]:
            raise ValueError(f"{length} tokens exceed CLIP's context of {self.positional_embedding.shape[0]}")
        cast_dtype = self.transformer.get_cast_dtype()
        x = embeds.to(cast_dtype) + self.positional_embedding[:length].to(cast_dtype)
        # Causal mask only: right padding cannot reach positions <= EOT, so no padding mask is needed.
        x = self.transformer(x, attn_mask=self.attn_mask[:length, :length])
        hidden = self.ln_final(x)
        pooled = self._pool(hidden, attention_mask, eot_positions, pooling)
        if isinstance(self.text_projection, nn.Linear):
            pooled = self.text_projection(pooled)
        elif self.text_projection is not None:
            pooled = pooled @ self.text_projection
        return pooled, hidden


class HFClipTextEncoder(HFTextEncoder):
    """CLIP text tower from Hugging Face ``CLIPTextModelWithProjection``, pooled at EOT + projection."""

    def __init__(self, cfg: TextEncoderConfig) -> None:
        from transformers import CLIPTextConfig, CLIPTextModelWithProjection

        super().__init__(cfg, CLIPTextConfig, CLIPTextModelWithProjection, "CLIP text model")
        self.use_projection = not any("text_projection" in k for k in self.missing_keys)
        if not self.use_projection:
            log.warning("%s has no text_projection weights: pooling without projection", self.name)
        text_cfg = self.model.text_model.config
        self.width = int(text_cfg.hidden_size)
        self.out_dim = int(text_cfg.projection_dim) if self.use_projection else self.width
        self._freeze()

    def _encode_embeddings(
        self, embeds: torch.Tensor, attention_mask: torch.Tensor, eot_positions: torch.Tensor, pooling: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from transformers.masking_utils import create_causal_mask

        tm = self.model.text_model
        # The same steps as CLIPTextModel.forward, entered after the token lookup.
        hidden = tm.embeddings(inputs_embeds=embeds)
        mask = create_causal_mask(**_causal_mask_kwargs(create_causal_mask, tm.config, hidden, attention_mask))
        hidden = tm.encoder(inputs_embeds=hidden, attention_mask=mask, is_causal=True).last_hidden_state
        hidden = tm.final_layer_norm(hidden)
        # Explicit EOT position: HF's own pooling (argmax id, or first eos id) is not trusted with added ids.
        pooled = self._pool(hidden, attention_mask, eot_positions, pooling)
        if self.use_projection:
            pooled = self.model.text_projection(pooled)
        return pooled, hidden
