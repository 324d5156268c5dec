"""The fine-tuning recipe: the loss (``loss:``) and the switches that say how the pre-trained tokenizer
learns or is held and what a training step draws, checked together in one place.

:class:`FinetuneRecipe` is built from a ``FinetuneConfig`` (:meth:`~seld.tasks.finetune.FinetuneConfig.recipe`;
the YAML keys are the config's) and handed to :class:`~seld.tasks.finetune_task.FinetuneTask`.
A combination that makes no sense is refused when the recipe is built, naming the keys. A new
switch is a field here (with its check), a key in ``FinetuneConfig`` and its use in the task.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from seld.losses import EMBED_LOSSES, INFONCE_DIRECTIONS
from seld.text.templates import TEMPLATES


@dataclass
class FinetuneLossConfig:
    """``loss:``: ``embed_weight * embed(A, E_text(X_gt)) + adpit_weight * ADPIT``."""

    embed_weight: float = 0.01
    """Weight of the alignment term between A and the ground-truth sentence's embedding."""
    adpit_weight: float = 1.0
    embed: str = "mae"
    """The alignment term (:func:`seld.losses` ``*_alignment_loss``): ``mae`` (the paper's, mean
    absolute error of A and E_text(X_gt)), ``cosine`` (mean 1 - cos), or ``infonce``: a contrastive
    loss over the batch's frames (cosine logits over a learned temperature) in which frames with
    equal ground-truth sentences are never negatives: audio -> text is a softmax over the batch's
    distinct sentences, text -> audio counts every frame of the sentence as a positive."""
    infonce_direction: str = "symmetric"
    """``infonce``: ``symmetric`` (the mean of both directions, CLIP's) or ``audio_to_text``."""
    temperature: float = 0.07
    """``infonce``: initial temperature (CLIP's 0.07). It is learned as a log inverse temperature
    (a weight of the task, saved in checkpoints), clamped to >= 0.01."""
    temperature_lr: Optional[float] = None
    """``infonce``: learning rate of the temperature, in its own parameter group without weight
    decay (None: ``train.lr``; 0: held at ``temperature``)."""

    def __post_init__(self) -> None:
        for name in ("embed_weight", "adpit_weight"):
            if not getattr(self, name) >= 0:  # NaN fails too
                raise ValueError(f"loss.{name} must be >= 0, got {getattr(self, name)}")
        if self.embed_weight == 0 and self.adpit_weight == 0:
            raise ValueError("loss.embed_weight and loss.adpit_weight are both 0: the fine-tuning loss would be zero")
        if self.embed not in EMBED_LOSSES:
            raise ValueError(f"loss.embed: unknown alignment loss {self.embed!r}; valid: {', '.join(EMBED_LOSSES)}")
        if self.infonce_direction not in INFONCE_DIRECTIONS:
            raise ValueError(f"loss.infonce_direction: unknown {self.infonce_direction!r}; valid: {', '.join(INFONCE_DIRECTIONS)}")
        if not 0.01 <= self.temperature:
            raise ValueError(f"loss.temperature must be >= 0.01 (the clamp of the learned temperature), got {self.temperature}")
        if self.temperature_lr is not None and self.temperature_lr < 0:
            raise ValueError(f"loss.temperature_lr must be >= 0 or null (train.lr), got {self.temperature_lr}")


def freezes_tokenizer(tokenizer_lr: float, pretrained: Any) -> bool:
    """The one rule for a held tokenizer: ``tokenizer_lr`` 0 with a pre-trained one (``pretrained``:
    its checkpoint, or a truth value); a tokenizer trained from scratch learns at ``train.lr``."""
    return tokenizer_lr == 0 and bool(pretrained)


@dataclass(frozen=True)
class FinetuneRecipe:
    """How a fine-tuning trains, beyond its architecture; each field is the ``FinetuneConfig`` key
    named in its docstring (whose docstring says what it does)."""

    loss: FinetuneLossConfig = field(default_factory=FinetuneLossConfig)
    """``loss``."""
    pretrained_tokenizer: bool = False
    """``model.pretrained`` is set: the tokenizer comes from a pre-training checkpoint."""
    tokenizer_lr: float = 1e-6
    """``tokenizer_lr`` (0 holds a pre-trained tokenizer, :meth:`holds_tokenizer`)."""
    projection_lr: Optional[float] = None
    """``projection_lr``."""
    frozen_tokenizer_eval: bool = False
    """``frozen_tokenizer_eval``."""
    head_warmup_steps: int = 0
    """``head_warmup_steps``."""
    train_frames: Optional[int] = None
    """``train_frames``."""
    train_templates: Optional[list[int]] = None
    """``train_templates``."""
    eval_template: int = 1
    """``eval_template``."""
    residual_head: bool = False
    """``model.head.residual``: the pre-training head kept as a direct path from the tokens."""
    lstsq_head: bool = False
    """``model.head.init: lstsq``: the head fitted to the pre-training head before the first step."""
    language: bool = True
    """False for ``model.text_encoder.kind: none`` (the no-language control: no sentences embedded)."""

    def __post_init__(self) -> None:
        if not 0 <= self.eval_template < len(TEMPLATES):
            raise ValueError(f"eval_template must be in 0..{len(TEMPLATES) - 1}, got {self.eval_template}")
        bad = [i for i in self.train_templates or [] if not 0 <= i < len(TEMPLATES)]
        if bad or self.train_templates == []:
            raise ValueError(f"train_templates must be non-empty indices in 0..{len(TEMPLATES) - 1}, got {self.train_templates}")
        if self.head_warmup_steps < 0:
            raise ValueError(f"head_warmup_steps must be >= 0, got {self.head_warmup_steps}")
        if self.train_frames is not None and self.train_frames < 1:
            raise ValueError(f"train_frames must be >= 1 or null (every frame), got {self.train_frames}")
        if self.frozen_tokenizer_eval and self.tokenizer_lr != 0:
            raise ValueError(f"frozen_tokenizer_eval needs tokenizer_lr 0 (a frozen tokenizer), got tokenizer_lr {self.tokenizer_lr}")
        if self.frozen_tokenizer_eval and not self.pretrained_tokenizer:
            raise ValueError("frozen_tokenizer_eval holds a pre-trained tokenizer as at evaluation, but model.pretrained "
                             "is empty (a tokenizer trained from scratch learns at train.lr and is not held): set "
                             "model.pretrained to the pre-training checkpoint, or frozen_tokenizer_eval: false")
        if self.tokenizer_lr < 0:
            raise ValueError(f"tokenizer_lr must be >= 0 (0 freezes the pre-trained tokenizer), got {self.tokenizer_lr}")
        if self.projection_lr is not None:
            if self.projection_lr < 0:
                raise ValueError(f"projection_lr must be >= 0 or null (as tokenizer_lr), got {self.projection_lr}")
            if not self.pretrained_tokenizer:
                raise ValueError("projection_lr sets the rate of a pre-trained tokenizer's projections, but model.pretrained "
                                 "is empty (a tokenizer trained from scratch learns at train.lr, projections included): "
                                 "set model.pretrained, or projection_lr: null")
        if not self.language and (self.loss.embed_weight != 0 or self.loss.adpit_weight <= 0):
            raise ValueError("model.text_encoder.kind none (the no-language control) embeds no sentences: set "
                             f"loss.embed_weight 0 (got {self.loss.embed_weight}) and loss.adpit_weight > 0 "
                             f"(got {self.loss.adpit_weight})")
        tokens_held = self.holds_tokenizer and not self.projection_lr
        if tokens_held and self.loss.adpit_weight == 0:
            raise ValueError("tokenizer_lr 0 freezes the pre-trained tokenizer, so the embedding loss alone has nothing "
                             "to train (it depends on the tokens only): set loss.adpit_weight > 0, tokenizer_lr > 0 "
                             "or projection_lr > 0")
        if tokens_held and self.loss.embed != "mae" and self.loss.embed_weight > 0:
            raise ValueError(f"loss.embed {self.loss.embed} aligns the tokens with their sentences, but tokenizer_lr 0 "
                             "(projection_lr null or 0) holds every weight before the text encoder, so it would train "
                             "nothing: set projection_lr > 0 (the live language path) or tokenizer_lr > 0")

    @property
    def holds_tokenizer(self) -> bool:
        """``tokenizer_lr: 0`` with a pre-trained tokenizer (:func:`freezes_tokenizer`)."""
        return freezes_tokenizer(self.tokenizer_lr, self.pretrained_tokenizer)
