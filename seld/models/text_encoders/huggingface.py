"""What the Hugging Face encoders (``hf_clip``, ``bert``) share: loading a model from a tiny
``model_config``, a ``save_pretrained`` folder, a hub name or the bundled MiniLM (or only its
``config.json``, for the seeded random twin), and the tokenizer read from the same source."""
from __future__ import annotations

from typing import Any

import torch

from seld.errors import CheckpointError, ConfigError
from seld.models.text_encoders.base import FrozenTextEncoder, existing_path, weights_rng
from seld.models.text_encoders.config import MINILM_NAME, TextEncoderConfig, minilm_path
from seld.text.tokenization import TemplateTokenizer


def load_hf_model(cfg: TextEncoderConfig, config_cls: Any, model_cls: Any, what: str) -> tuple[Any, str, list[str]]:
    """A Hugging Face model of ``cfg`` (``kind`` hf_clip or bert): random from ``model_config``, else
    from ``path`` / the hub name / the MiniLM package (``init: random``: that source's config.json
    only, seeded random weights); returns (model, source, weight keys the source lacks)."""
    name = cfg.resolved_name
    if cfg.quick_gelu is not None:
        raise ConfigError(f"text encoder key 'quick_gelu' applies to kind 'clip' only ({cfg.kind} reads its config.json)")
    if cfg.model_config is not None:
        if cfg.path:
            raise ConfigError(f"{cfg.kind}: give either 'model_config' (random init) or 'path', not both")
        with weights_rng(cfg):
            return model_cls(config_cls(**cfg.model_config)), name, []
    if cfg.path:
        source = existing_path(cfg.path, f"{cfg.kind} text encoder {name!r}", want_dir=True)
    elif cfg.kind == "bert" and name == MINILM_NAME:
        source = str(minilm_path())
    else:
        source = name
    try:
        if cfg.random_init:
            config = config_cls.from_pretrained(source)
            with weights_rng(cfg):
                model = model_cls(config)
            # a text tower saved without its projection (CLIPTextModel) pools without it, pre-trained or not
            missing = ["text_projection.weight"] if (config.architectures or []) == ["CLIPTextModel"] else []
            return model, source, missing
        model, info = model_cls.from_pretrained(source, output_loading_info=True)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot load {what} {source!r} (offline? give 'path'): {err}") from err
    return model, source, list(info.get("missing_keys", []))


class HFTextEncoder(FrozenTextEncoder):
    """A frozen Hugging Face text model (``self.model``) with its tokenizer; ``name`` is where it came from.

    Subclasses call ``super().__init__`` with their transformers config and model classes, then
    set ``width`` and ``out_dim`` from ``self.model`` and call :meth:`_freeze`.
    """

    def __init__(self, cfg: TextEncoderConfig, config_cls: Any, model_cls: Any, what: str) -> None:
        super().__init__()
        model, source, missing = load_hf_model(cfg, config_cls, model_cls, what)
        self.name = source
        self.model = model
        self.missing_keys = missing  # weight keys the source lacks (a bare CLIP text tower's projection)
        max_length = int(model.config.max_position_embeddings)
        self.tokenizer = TemplateTokenizer.from_hf_pretrained(cfg.tokenizer or source, max_length=max_length)
        self.pooling = cfg.pooling

    @property
    def num_embeddings(self) -> int:
        return int(self.model.get_input_embeddings().num_embeddings)

    def _word_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(input_ids)
