"""The two training stages as tasks for the shared engine, their YAML schemas, and their runners.

* Pre-training (spec section 5): tokenizer + pre-training head under ADPIT.
* Fine-tuning (spec section 6): tokens injected into a template, a frozen text encoder, a GREP or
  TREP head; loss ``embed_weight * MAE(A, E_text(X_gt)) + adpit_weight * ADPIT`` (``loss.embed``:
  the alignment term may be a cosine or a contrastive InfoNCE instead of the paper's MAE).
* Baseline: the DCASE2025 baseline CRNN (:mod:`seld.models.seldnet`) under ADPIT, for comparisons.

A checkpoint of either stage holds everything needed to rebuild its model without the YAML
(model configs, stream channels, normalisation statistics): see :func:`load_task`.
"""
from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
import torch
from torch.utils.data import Subset

from seld.accdoa import activate_output
from seld.config import from_dict, to_dict
from seld.data.dataset import StreamConfig
from seld.errors import CheckpointError, ConfigError
from seld.losses import (
    EMBED_LOSSES,
    INFONCE_DIRECTIONS,
    LearnedTemperature,
    adpit_loss,
    cosine_alignment_loss,
    infonce_alignment_loss,
    mae_alignment_loss,
    sentence_groups,
)
from seld.metrics import MetricConfig
from seld.models.heads import HeadConfig, PretrainHead, TrepHead, build_head
from seld.models.pretrain import ModelConfig, PretrainModel
from seld.models.seldnet import SeldNet, SeldnetConfig
from seld.models.text_encoders import FrozenTextEncoder, GroundTruthCache, TextEncoderConfig, build_text_encoder
from seld.models.tokenizer import Tokenizer, TokenizerConfig
from seld.text.sentences import frame_sentences
from seld.text.templates import TEMPLATES
from seld.text.tokenization import TemplateBatch
from seld.train.checkpoint import load_checkpoint, load_model_state
from seld.train.data import ClipSubset, DataConfig, build_dataset, build_stage_datasets, make_validator
from seld.train.engine import SeldTask, StepOutput, TrainConfig, Trainer, seed_everything
from seld.train.head_init import check_lstsq_head, fit_head


# ----------------------------------------------------------------------------- shared helpers
def apply_stream_channels(tok: TokenizerConfig, streams: StreamConfig) -> TokenizerConfig:
    """A copy of ``tok`` whose encoders take as many input channels as ``streams`` names.

    The stream lists in ``data.streams`` are the one place that says which channels feed which
    encoder; the encoders' ``in_channels`` follow them.
    """
    tok = copy.deepcopy(tok)
    if tok.source_encoder == "rcc":
        tok.rcc.in_channels = len(streams.src)
    elif len(streams.src) != 1:
        raise ConfigError(f"data.streams.src names {len(streams.src)} channels; the BEATs source encoder takes exactly one")
    tok.doa.in_channels = len(streams.doa)
    tok.dist.in_channels = len(streams.dist)
    return tok


def data_record(data: DataConfig) -> dict[str, Any]:
    """What a checkpoint must know of the features to run on new audio: statistics and front end."""
    from seld.config import read_yaml
    from seld.features.extract import CONFIG_FILE
    from seld.features.normalization import load_normalization

    stats = load_normalization(data.normalization_path)
    feature_cfg = Path(data.features_dir) / CONFIG_FILE
    return {
        "normalization": {name: {"mean": float(s.mean), "std": float(s.std)} for name, s in stats.items()},
        "features": read_yaml(feature_cfg) if feature_cfg.is_file() else {},
    }


# ----------------------------------------------------------------------------- pre-training
@dataclass
class PretrainConfig:
    """``seld pretrain`` / ``pretraining/config.yml``."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    metrics: MetricConfig = field(default_factory=MetricConfig)


class PretrainTask(SeldTask):
    """Tokenizer + pre-training head; loss = ADPIT."""

    def __init__(self, model: PretrainModel, extras: dict[str, Any]):
        super().__init__()
        self.model = model
        self._extras = extras

    def predict(self, src: torch.Tensor, doa: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """Activated multi-ACCDOA output ``(batch, frames, 117)``."""
        return self.model(src, doa, dist)

    def step(self, batch: dict[str, Any]) -> StepOutput:
        out = self.model(batch["src"], batch["doa"], batch["dist"])
        loss = adpit_loss(out.float(), batch["target"])
        return StepOutput(loss=loss, output=out, logs={"adpit": float(loss.detach())})

    def checkpoint_extras(self) -> dict[str, Any]:
        return self._extras


def build_pretrain_task(cfg: PretrainConfig, record: dict[str, Any] | None = None) -> PretrainTask:
    """The pre-training task (model built from config; BEATs weights read when configured)."""
    model_cfg = ModelConfig(tokenizer=apply_stream_channels(cfg.model.tokenizer, cfg.data.streams))
    model = PretrainModel.from_config(model_cfg)
    extras = {
        "stage": "pretrain",
        "model": to_dict(model_cfg),
        "streams": to_dict(cfg.data.streams),
        **(record or {}),
    }
    return PretrainTask(model, extras)


STAGE_RUNTIME_KEYS: tuple[str, ...] = ("data.test_splits", "gt_cache_size")
"""Stage keys a resume may change besides the engine's ``RUNTIME_KEYS`` (scored after training; a cache size)."""

TEST_SCORES_FILE = "test_scores.json"


def _run_stage(cfg: PretrainConfig | FinetuneConfig, build_task: Any) -> Trainer:
    """Datasets, task and trainer of a stage (all checked before the first step), then training,
    then (when the run finished) the test splits scored once."""
    cfg.data.check_files()
    train_set, val_set, test_set = build_stage_datasets(cfg.data, seed=cfg.train.seed)
    seed_everything(cfg.train.seed)  # the initial weights follow train.seed (torch seeds itself randomly)
    task = build_task(cfg, data_record(cfg.data))
    validator = make_validator(cfg.metrics)
    trainer = Trainer(task, train_set, cfg.train, val_set, validator, resolved_config=cfg,
                      runtime_keys=STAGE_RUNTIME_KEYS)
    if isinstance(cfg, FinetuneConfig) and cfg.model.head.init == "lstsq" and not trainer.resumed:
        started = time.monotonic()
        _lstsq_init_head(cfg, trainer)  # a resumed run has its weights from the checkpoint
        trainer.count_setup_time(time.monotonic() - started)  # inside the run's train.max_minutes
    try:
        trainer.fit()
        if test_set is not None and trainer.finished:
            score_test_splits(trainer, test_set, cfg.data.test_splits, validator)
    finally:
        trainer.close()
    return trainer


def score_test_splits(trainer: Trainer, test_set: Any, splits: list[str], validator: Any) -> dict[str, Any] | None:
    """Score ``test_set`` once with ``best_f.pt``'s weights (the current weights when the run has
    no ``best_f.pt``); write ``<out_dir>/test_scores.json`` (atomically) and TensorBoard ``test/*``
    at the selected checkpoint's epoch. Skipped (returns None) when the file already holds the
    scores of this run at its current step. The trainer's weights are restored afterwards."""
    import json

    from seld.io_utils import atomic_write_text

    out = trainer.out_dir / TEST_SCORES_FILE
    if out.is_file():
        try:
            if json.loads(out.read_text(encoding="utf-8")).get("run_global_step") == trainer.global_step:
                return None
        except (OSError, ValueError):
            pass  # unreadable: score again
    best = trainer.ckpt_dir / "best_f.pt"
    current = {k: v.detach().to("cpu", copy=True) for k, v in trainer.task.state_dict().items()}
    if best.is_file():
        ckpt = load_checkpoint(best, map_location=trainer.device)
        load_model_state(trainer.task, ckpt["model"], str(best))
        source, epoch, step = "best_f", int(ckpt["progress"]["epoch"]), int(ckpt["progress"]["global_step"])
    else:
        source, epoch, step = "last", trainer.epoch, trainer.global_step
        if trainer.ema is not None:  # what validation would have scored (train.ema_decay)
            trainer.task.load_state_dict(trainer.ema)
    try:
        preds, targets, loss = trainer.predict(test_set)
        scores = {k: float(v) for k, v in validator(preds, targets).items()}
    finally:
        trainer.task.load_state_dict(current)
    record: dict[str, Any] = {
        "splits": list(splits), "checkpoint": source, "epoch": epoch, "global_step": step,
        "run_global_step": trainer.global_step, "clips": len(preds), "loss": float(loss), **scores,
    }
    if trainer.dist.is_main:
        atomic_write_text(out, json.dumps(record, indent=2) + "\n")
        if trainer.writer is not None:
            for k, v in [("loss", loss), *scores.items()]:
                trainer.writer.add_scalar(f"test/{k}", float(v), epoch)
            trainer.writer.flush()
        line = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
        print(f"test ({', '.join(splits)}, {source} from epoch {epoch}): loss {loss:.4f}, {line}", flush=True)
    return record


def run_pretraining(cfg: PretrainConfig) -> Trainer:
    """Train the tokenizer; everything is checked (files, channels, checkpoints) before the first step."""
    return _run_stage(cfg, build_pretrain_task)


# ----------------------------------------------------------------------------- fine-tuning
@dataclass
class FinetuneModelConfig:
    """The fine-tuning model: a pre-trained tokenizer, a frozen text encoder and a head."""

    pretrained: Optional[str] = None
    """Pre-training checkpoint (``.../checkpoints/best_f.pt``); its tokenizer config and weights are
    used. None: a tokenizer from ``tokenizer`` with random weights (ablations only)."""
    tokenizer: Optional[TokenizerConfig] = None
    """Only when ``pretrained`` is None."""
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    head: HeadConfig = field(default_factory=HeadConfig)


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
        if self.embed not in EMBED_LOSSES:
            raise ValueError(f"loss.embed: unknown alignment loss {self.embed!r}; valid: {', '.join(EMBED_LOSSES)}")
        if self.infonce_direction not in INFONCE_DIRECTIONS:
            raise ValueError(f"loss.infonce_direction: unknown {self.infonce_direction!r}; valid: {', '.join(INFONCE_DIRECTIONS)}")
        if not 0.01 <= self.temperature:
            raise ValueError(f"loss.temperature must be >= 0.01 (the clamp of the learned temperature), got {self.temperature}")
        if self.temperature_lr is not None and self.temperature_lr < 0:
            raise ValueError(f"loss.temperature_lr must be >= 0 or null (train.lr), got {self.temperature_lr}")


@dataclass
class FinetuneConfig:
    """``seld finetune`` / ``finetuning/config.yml``; ``train.lr`` is the learning rate of new weights."""

    data: DataConfig = field(default_factory=DataConfig)
    model: FinetuneModelConfig = field(default_factory=FinetuneModelConfig)
    loss: FinetuneLossConfig = field(default_factory=FinetuneLossConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=50))
    tokenizer_lr: float = 1e-6
    """Learning rate of the pre-trained tokenizer weights (and of the direct path's pre-training head,
    ``model.head.residual``). 0 freezes them: they leave the optimiser, and the tokens and the frozen
    text encoder's forward run without autograd (only the text head learns; the same weights as a
    learning rate of 0 with gradients, at a fraction of the step's cost). BatchNorm and dropout
    keep their training behaviour unless ``frozen_tokenizer_eval``."""
    projection_lr: Optional[float] = None
    """Recipe option, with a pre-trained tokenizer (None: the projections learn with the rest of the
    tokenizer at ``tokenizer_lr``): learning rate of the tokenizer's projection layers P_audio /
    P_doa / P_dist alone, in their own parameter group. With ``tokenizer_lr: 0`` it is the live
    language path: the encoders and the fusion stay held (run without autograd), the projections
    learn from gradients through the frozen text encoder (the alignment loss and the head's ADPIT;
    with ``model.head.residual`` the held direct path reads the same tokens, so it moves with them
    and its ADPIT reaches them too). 0 holds the projections (gradients still pass through them to
    a learning tokenizer)."""
    eval_template: int = 1
    """Template index used at validation and inference (training draws one per clip and step)."""
    train_templates: Optional[list[int]] = None
    """Recipe option: template indices training draws from (None: all 50, the authors' recipe;
    ``[1]``: the evaluation template only)."""
    gt_cache_size: int = 200_000
    """Ground-truth sentence embeddings kept (oldest dropped first)."""
    train_frames: Optional[int] = None
    """Recipe option (None = every label frame, the authors' recipe): in training, only this many
    label frames per clip, drawn at random each step, go through the text encoder and the losses;
    the tokenizer still reads the whole clip (its conformers see every frame). The frozen text
    encoder reads one sentence per label frame (50 per 5 s clip) and dominates the cost of a
    fine-tuning step on a CPU, so 10 frames buy several times more steps per minute. Validation,
    testing and inference always use every frame."""
    frozen_tokenizer_eval: bool = False
    """Recipe option, with ``tokenizer_lr: 0`` only (False: the held tokenizer keeps its training
    behaviour, its BatchNorm statistics moving and its dropout on, as with gradients at lr 0): True
    runs the frozen tokenizer and the direct path as at evaluation in training too (fixed BatchNorm
    statistics, no dropout), so the direct path stays exactly the pre-trained model."""
    head_warmup_steps: int = 0
    """Recipe option (0 = the authors' recipe): for this many first training steps the tokens are
    detached, so no gradient reaches the pre-trained tokenizer (its BatchNorm statistics still
    update) while the new head starts from scratch; the count is saved with the model, so a
    resume continues it."""
    metrics: MetricConfig = field(default_factory=MetricConfig)

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
        if self.frozen_tokenizer_eval and not self.model.pretrained:
            raise ValueError("frozen_tokenizer_eval holds a pre-trained tokenizer as at evaluation, but model.pretrained "
                             "is empty (a tokenizer trained from scratch learns at train.lr and is not held): set "
                             "model.pretrained to the pre-training checkpoint, or frozen_tokenizer_eval: false")
        if self.tokenizer_lr < 0:
            raise ValueError(f"tokenizer_lr must be >= 0 (0 freezes the pre-trained tokenizer), got {self.tokenizer_lr}")
        if self.projection_lr is not None:
            if self.projection_lr < 0:
                raise ValueError(f"projection_lr must be >= 0 or null (as tokenizer_lr), got {self.projection_lr}")
            if not self.model.pretrained:
                raise ValueError("projection_lr sets the rate of a pre-trained tokenizer's projections, but model.pretrained "
                                 "is empty (a tokenizer trained from scratch learns at train.lr, projections included): "
                                 "set model.pretrained, or projection_lr: null")
        if self.model.text_encoder.kind == "none" and (self.loss.embed_weight != 0 or self.loss.adpit_weight <= 0):
            raise ValueError("model.text_encoder.kind none (the no-language control) embeds no sentences: set "
                             f"loss.embed_weight 0 (got {self.loss.embed_weight}) and loss.adpit_weight > 0 "
                             f"(got {self.loss.adpit_weight})")
        tokens_held = freezes_tokenizer(self.tokenizer_lr, self.model.pretrained) and not self.projection_lr
        if tokens_held and self.loss.adpit_weight == 0:
            raise ValueError("tokenizer_lr 0 freezes the pre-trained tokenizer, so the embedding loss alone has nothing "
                             "to train (it depends on the tokens only): set loss.adpit_weight > 0, tokenizer_lr > 0 "
                             "or projection_lr > 0")
        if tokens_held and self.loss.embed != "mae" and self.loss.embed_weight > 0:
            raise ValueError(f"loss.embed {self.loss.embed} aligns the tokens with their sentences, but tokenizer_lr 0 "
                             "(projection_lr null or 0) holds every weight before the text encoder, so it would train "
                             "nothing: set projection_lr > 0 (the live language path) or tokenizer_lr > 0")


def freezes_tokenizer(tokenizer_lr: float, pretrained: Any) -> bool:
    """The one rule for a held tokenizer: ``tokenizer_lr`` 0 with a pre-trained one (``pretrained``:
    its checkpoint, or a truth value); a tokenizer trained from scratch learns at ``train.lr``."""
    return tokenizer_lr == 0 and bool(pretrained)


def take_frames(x: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """``x (B, T, ...)`` at the frames ``frames (B, n)`` of each clip -> ``(B, n, ...)``."""
    return x[torch.arange(x.shape[0], device=x.device).unsqueeze(1), frames.to(x.device)]


def _repeat_batch(batch: TemplateBatch, times: int) -> TemplateBatch:
    """Each template row repeated ``times`` times (one per frame)."""
    return TemplateBatch(*(t.repeat_interleave(times, dim=0) for t in (
        batch.input_ids, batch.attention_mask, batch.slot_positions, batch.eot_positions)))


class FinetuneTask(SeldTask):
    """Tokens -> template -> frozen text encoder -> GREP / TREP head, with embedding alignment."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        text_encoder: FrozenTextEncoder,
        head: torch.nn.Module,
        head_type: str,
        loss: FinetuneLossConfig,
        tokenizer_lr: float,
        eval_template: int,
        gt_cache_size: int,
        extras: dict[str, Any],
        pretrained_tokenizer: bool,
        head_warmup_steps: int = 0,
        train_templates: list[int] | None = None,
        train_frames: int | None = None,
        token_head: PretrainHead | None = None,
        frozen_tokenizer_eval: bool = False,
        projection_lr: float | None = None,
    ):
        super().__init__()
        self.frozen_tokenizer_eval = frozen_tokenizer_eval
        self.projection_lr = projection_lr
        self.token_head = token_head
        """``model.head.residual``: the pre-training head, a direct path from the tokens to the output."""
        self.train_templates = list(train_templates) if train_templates else None
        self.train_frames = train_frames
        self.head_warmup_steps = int(head_warmup_steps)
        if self.head_warmup_steps > 0:  # a step counter saved with the weights (exact resume)
            self.register_buffer("warmup_steps_done", torch.zeros((), dtype=torch.long))
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.head = head
        self.head_type = head_type
        self.loss_cfg = loss
        self.tokenizer_lr = tokenizer_lr
        self.eval_template = eval_template
        self.pretrained_tokenizer = pretrained_tokenizer
        self.gt_cache = GroundTruthCache(text_encoder, max_entries=gt_cache_size)
        self.temperature = LearnedTemperature(loss.temperature) if loss.embed == "infonce" else None
        """``loss.embed: infonce``: the learned temperature (a weight of the task)."""
        self._extras = extras
        self._template_cache: dict[str, TemplateBatch] = {}
        self.frozen_tokenizer = False
        """``tokenizer_lr: 0`` with a pre-trained tokenizer: nothing before the text head learns, so no
        gradient is computed there (the backward pass covers the text head alone)."""
        self.live_projections = False
        """With ``frozen_tokenizer``: the projections learn (``projection_lr`` > 0), so the backward pass
        runs through the text encoder to them; the rest of the tokenizer still runs without autograd."""
        if freezes_tokenizer(tokenizer_lr, pretrained_tokenizer):
            self.freeze_tokenizer(live_projections=bool(projection_lr))
        elif projection_lr == 0 and pretrained_tokenizer:
            self.tokenizer.projections.requires_grad_(False)

    def train(self, mode: bool = True) -> "FinetuneTask":
        super().train(mode)
        if self.frozen_tokenizer and self.frozen_tokenizer_eval:  # held as at evaluation
            self.tokenizer.eval()
            if self.token_head is not None:
                self.token_head.eval()
        return self

    def freeze_tokenizer(self, live_projections: bool = False) -> None:
        """Hold the tokenizer and the direct path (``tokenizer_lr: 0``): no gradients, out of the optimiser;
        ``live_projections``: all but the projection layers (``projection_lr`` > 0)."""
        self.frozen_tokenizer = True
        self.tokenizer.requires_grad_(False)
        if self.token_head is not None:
            self.token_head.requires_grad_(False)
        self.live_projections = live_projections
        if live_projections:
            self.tokenizer.projections.requires_grad_(True)

    def _templates(self, templates: list[str], frames: int, device: torch.device) -> TemplateBatch:
        key = "\x00".join(templates)
        if key not in self._template_cache:
            if len(self._template_cache) > 256:
                self._template_cache.clear()
            self._template_cache[key] = self.text_encoder.tokenizer.encode_templates(templates)
        return _repeat_batch(self._template_cache[key], frames).to(device)

    @property
    def training_template_pool(self) -> list[int]:
        """Indices into TEMPLATES that training draws from (``train_templates``, else all)."""
        return self.train_templates or list(range(len(TEMPLATES)))

    def _choose_templates(self, batch_size: int) -> list[str]:
        if self.training:  # global torch RNG: restored on resume, so runs stay reproducible
            pool = self.training_template_pool
            idx = [pool[i] for i in torch.randint(len(pool), (batch_size,)).tolist()]
        else:
            idx = [self.eval_template] * batch_size
        return [TEMPLATES[i] for i in idx]

    def encode(
        self, src: torch.Tensor, doa: torch.Tensor, dist: torch.Tensor, templates: list[str], detach_tokens: bool = False,
        frames: torch.Tensor | None = None,
    ):
        """Return (output ``(B, T, 117)``, A ``(B, T, out_dim)``) for the given per-clip templates;
        with ``frames (B, n)`` only at those label frames (``T`` = n)."""
        frozen = torch.no_grad if self.frozen_tokenizer and not self.live_projections else contextlib.nullcontext
        with frozen():
            if self.live_projections:  # held encoders and fusion without autograd, then the learning projections
                with torch.no_grad():
                    feats = self.tokenizer.stream_features(src, doa, dist)
                tokens = self.tokenizer.project(feats)
            else:
                tokens = self.tokenizer(src, doa, dist)  # (B, T, 3, E)
            if detach_tokens:  # head warm-up: no gradient reaches the tokenizer
                tokens = tokens.detach()
            if frames is not None:
                tokens = take_frames(tokens, frames)
            x, pooled = self.head_input(tokens, templates)
        if self.token_head is None:
            return self.head(x), pooled
        out = self.head.raw(x)
        with frozen():
            direct = self.token_head.raw(tokens)
        return activate_output(out + direct), pooled

    def head_input(self, tokens: torch.Tensor, templates: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(B, T, 3, E)`` through the templates and the frozen text encoder -> (the head's
        input: A ``(B, T, out_dim)`` for GREP, the hidden states at the three token positions
        ``(B, T, 3, E)`` for TREP; A)."""
        b, t = tokens.shape[:2]
        tb = self._templates(templates, t, tokens.device)
        enc = self.text_encoder.forward_injected(tb, tokens.reshape(b * t, 3, tokens.shape[-1]))
        pooled = enc.pooled.reshape(b, t, -1)
        if self.head_type == "trep":
            return enc.slot_hidden.reshape(b, t, 3, -1), pooled
        return pooled, pooled

    def predict_and_embed(self, src: torch.Tensor, doa: torch.Tensor, dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(activated output ``(batch, frames, 117)``, A ``(batch, frames, out_dim)``) with the evaluation
        template, from one pass through the text encoder."""
        return self.encode(src, doa, dist, [TEMPLATES[self.eval_template]] * src.shape[0])

    def predict(self, src: torch.Tensor, doa: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """Activated multi-ACCDOA output ``(batch, frames, 117)`` with the evaluation template."""
        return self.predict_and_embed(src, doa, dist)[0]

    def predict_direct_path(self, src: torch.Tensor, doa: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """``model.head.residual`` models only: the output of the tokens' direct path alone, i.e. with
        the text encoder's contribution removed ``(batch, frames, 117)``; compared with :meth:`predict`
        it measures what the text path adds."""
        if self.token_head is None:
            raise ValueError("predict_direct_path: this model has no direct path from the tokens (model.head.residual is false)")
        return self.token_head(self.tokenizer(src, doa, dist))

    def embed(self, src: torch.Tensor, doa: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """Audio-driven embeddings A ``(batch, frames, out_dim)`` with the evaluation template."""
        return self.predict_and_embed(src, doa, dist)[1]

    def step(self, batch: dict[str, Any]) -> StepOutput:
        target = batch["target"]
        templates = self._choose_templates(target.shape[0])
        warming = self.training and self.head_warmup_steps > 0 and int(self.warmup_steps_done) < self.head_warmup_steps
        if warming:
            self.warmup_steps_done += 1
        frames = None
        if self.training and self.train_frames is not None and self.train_frames < target.shape[1]:
            # a random subset of label frames per clip (global torch RNG: reproducible, resumable)
            frames = torch.rand(target.shape[0], target.shape[1]).argsort(dim=1)[:, : self.train_frames].sort(dim=1).values
            target = take_frames(target, frames)
        out, pooled = self.encode(batch["src"], batch["doa"], batch["dist"], templates, detach_tokens=warming, frames=frames)
        adpit = adpit_loss(out.float(), target)
        if not self.text_encoder.embeds_sentences:  # the no-language control: ADPIT alone
            loss = self.loss_cfg.adpit_weight * adpit
            return StepOutput(loss=loss, output=out, logs={"adpit": float(adpit.detach())})
        target_np = target.detach().cpu().numpy()
        sentences = [s for tmpl, tgt in zip(templates, target_np) for s in frame_sentences(tgt, tmpl, self.text_encoder.tokenizer.fits)]
        logs: dict[str, float] = {}
        if self.temperature is not None:  # infonce: the batch's distinct sentences are the candidates
            distinct, index = sentence_groups(sentences)
            text = self.gt_cache.embed(distinct, device=pooled.device)
            scale = self.temperature()
            embed = infonce_alignment_loss(pooled.reshape(-1, pooled.shape[-1]).float(), text.float(), index, scale,
                                           self.loss_cfg.infonce_direction)
            logs["temperature"] = float(1.0 / scale.detach())
        else:
            gt = self.gt_cache.embed(sentences, device=pooled.device).reshape(pooled.shape)
            align = cosine_alignment_loss if self.loss_cfg.embed == "cosine" else mae_alignment_loss
            embed = align(pooled.float(), gt.float())
        loss = self.loss_cfg.embed_weight * embed + self.loss_cfg.adpit_weight * adpit
        return StepOutput(loss=loss, output=out, logs={"adpit": float(adpit.detach()), "embed": float(embed.detach()), **logs})

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        tok_lr = self.tokenizer_lr if self.pretrained_tokenizer else lr
        own_rate = self.projection_lr is not None and self.pretrained_tokenizer  # projections in their own group
        projections = list(self.tokenizer.projections.parameters()) if own_rate else []
        apart = {id(p) for p in projections}
        pretrained = [*self.tokenizer.parameters(), *(self.token_head.parameters() if self.token_head is not None else ())]
        groups = [
            {"params": [p for p in pretrained if p.requires_grad and id(p) not in apart], "lr": tok_lr, "name": "tokenizer"},
            {"params": [p for p in projections if p.requires_grad], "lr": self.projection_lr, "name": "projections"},
            {"params": [p for p in self.head.parameters() if p.requires_grad], "lr": lr, "name": "head"},
        ]
        if self.temperature is not None:
            t_lr = self.loss_cfg.temperature_lr
            groups.append({"params": [self.temperature.log_scale], "lr": lr if t_lr is None else t_lr,
                           "name": "temperature", "weight_decay": 0.0})
        return [g for g in groups if g["params"]]  # a frozen tokenizer leaves the optimiser

    def checkpoint_extras(self) -> dict[str, Any]:
        return self._extras


def architecture_only(cfg: TextEncoderConfig) -> TextEncoderConfig:
    """An open_clip config that builds the same architecture with random weights (no download).

    The activation is fixed first: open_clip's ``openai`` weights use QuickGELU, which a model
    built without the tag would silently replace with GELU.
    """
    cfg = copy.deepcopy(cfg)
    if cfg.quick_gelu is None:
        quick = False
        if cfg.pretrained:
            import open_clip

            quick = bool(open_clip.get_pretrained_cfg(cfg.resolved_name, cfg.pretrained).get("quick_gelu", False))
        cfg.quick_gelu = quick
    cfg.pretrained, cfg.path = None, None
    return cfg


def _pretrained_parts(path: str) -> tuple[TokenizerConfig, PretrainModel]:
    ckpt = load_checkpoint(path)
    extras = ckpt.get("task", {})
    if extras.get("stage") != "pretrain":
        raise CheckpointError(f"{path}: not a pre-training checkpoint (stage {extras.get('stage')!r})")
    model_cfg = from_dict(ModelConfig, extras["model"], source=f"{path} (model config)")
    model = PretrainModel.from_config(model_cfg, load_pretrained=False)
    state = {k[len("model."):]: v for k, v in ckpt["model"].items() if k.startswith("model.")}
    load_model_state(model, state, path)
    return model_cfg.tokenizer, model


def build_finetune_task(
    cfg: FinetuneConfig, record: dict[str, Any] | None = None, load_weights: bool = True
) -> FinetuneTask:
    """The fine-tuning task. ``load_weights=False`` builds the architecture only (a checkpoint follows)."""
    m = cfg.model
    pretrain_model: PretrainModel | None = None
    if m.pretrained is not None and load_weights:
        tok_cfg, pretrain_model = _pretrained_parts(m.pretrained)
        tokenizer = pretrain_model.tokenizer
    else:
        if m.tokenizer is None:
            raise ConfigError("model.tokenizer must be given when model.pretrained is None")
        tok_cfg = apply_stream_channels(m.tokenizer, cfg.data.streams)
        tokenizer = Tokenizer.from_config(tok_cfg, load_pretrained=load_weights)
    if apply_stream_channels(tok_cfg, cfg.data.streams) != tok_cfg:  # a pre-trained tokenizer fixes its inputs
        st = cfg.data.streams
        raise ConfigError(
            f"data.streams give {len(st.src)}/{len(st.doa)}/{len(st.dist)} channels (src/doa/dist) but the tokenizer "
            f"takes {tok_cfg.source_config.in_channels}/{tok_cfg.doa.in_channels}/{tok_cfg.dist.in_channels}"
        )
    te_cfg = copy.deepcopy(m.text_encoder)
    if te_cfg.kind == "none":  # the no-language control: A from the tokens themselves, at their width
        te_cfg.model_config = {"width": tok_cfg.embed_dim}
    if not load_weights and te_cfg.kind == "clip":
        te_cfg = architecture_only(te_cfg)  # weights come from the checkpoint
    text_encoder = build_text_encoder(te_cfg)
    if tok_cfg.embed_dim != text_encoder.width:
        raise ConfigError(
            f"tokenizer embed_dim {tok_cfg.embed_dim} != text encoder width {text_encoder.width} "
            f"({te_cfg.kind} {te_cfg.resolved_name}); pre-train with model.tokenizer.embed_dim={text_encoder.width}"
        )
    head_type = m.head.type
    head = build_head(m.head, text_encoder.out_dim if head_type == "grep" else text_encoder.width)
    if head_type == "trep" and m.head.init_from_pretrain and pretrain_model is not None:
        assert isinstance(head, TrepHead) and isinstance(pretrain_model.head, PretrainHead)
        head.init_from(pretrain_model.head)
    token_head = None
    if m.head.residual:  # start exactly at the tokenizer: its head kept, the text head's output at zero
        token_head = PretrainHead(tok_cfg.embed_dim)
        if pretrain_model is not None:
            assert isinstance(pretrain_model.head, PretrainHead)
            token_head.load_state_dict(pretrain_model.head.state_dict())
        with torch.no_grad():
            head.output_layer.weight.zero_()
            head.output_layer.bias.zero_()
    resolved = copy.deepcopy(cfg.model)
    resolved.tokenizer, resolved.pretrained = tok_cfg, None
    if te_cfg.kind == "none":
        resolved.text_encoder.model_config = te_cfg.model_config
    extras = {
        "stage": "finetune",
        "model": to_dict(resolved),
        "loss": to_dict(cfg.loss),
        "eval_template": cfg.eval_template,
        "head_warmup_steps": cfg.head_warmup_steps,
        "streams": to_dict(cfg.data.streams),
        **(record or {}),
    }
    return FinetuneTask(
        tokenizer, text_encoder, head, head_type, cfg.loss, cfg.tokenizer_lr, cfg.eval_template,
        cfg.gt_cache_size, extras, pretrained_tokenizer=m.pretrained is not None,
        head_warmup_steps=cfg.head_warmup_steps, train_templates=cfg.train_templates, train_frames=cfg.train_frames,
        token_head=token_head, frozen_tokenizer_eval=cfg.frozen_tokenizer_eval, projection_lr=cfg.projection_lr,
    )


def _lstsq_init_head(cfg: FinetuneConfig, trainer: Trainer) -> None:
    """``model.head.init: lstsq``: fit the GREP or TREP head to the pre-training head on the training
    clips (evaluation items; the evaluation template, or training templates with
    ``model.head.lstsq_templates: train``) before the first step of a new run."""
    assert cfg.model.pretrained is not None  # checked by run_finetuning
    task = trainer.task
    _, pre_model = _pretrained_parts(cfg.model.pretrained)
    check_lstsq_head(task.head, pre_model.head, "model.head")
    fit_set = build_dataset(cfg.data, cfg.data.train_splits, train=False, seed=cfg.train.seed)
    if isinstance(trainer.train_set, Subset):  # val_from_train: the training rooms only
        fit_set = ClipSubset(fit_set, trainer.train_set.indices)
    h = cfg.model.head
    templates = task.training_template_pool if h.lstsq_templates == "train" else None
    info = fit_head(task, pre_model.head.to(trainer.device), fit_set, ridge=h.lstsq_ridge,
                    max_clips=h.lstsq_max_clips, batch_size=cfg.train.batch_size,
                    progress=cfg.train.progress and trainer.dist.is_main, device=trainer.device,
                    templates=templates, seed=cfg.train.seed)
    if trainer.dist.is_main:
        print(f"{task.head_type.upper()} head initialised by least squares on {int(info['rows'])} training frames "
              f"({h.lstsq_templates} templates, ridge {h.lstsq_ridge}; R^2 of the pre-training head's raw outputs {info['r2']:.3f})", flush=True)


def run_finetuning(cfg: FinetuneConfig) -> Trainer:
    """Fine-tune; files, channels, checkpoints and widths are checked before the first step."""
    if cfg.model.pretrained is not None and not Path(cfg.model.pretrained).is_file():
        raise ConfigError(f"model.pretrained: checkpoint not found: {cfg.model.pretrained}")
    if cfg.model.head.init == "lstsq" and cfg.model.pretrained is None:
        raise ConfigError("model.head.init=lstsq needs model.pretrained (the pre-training head is the fit's target)")
    return _run_stage(cfg, build_finetune_task)


# ----------------------------------------------------------------------------- DCASE2025 baseline CRNN
@dataclass
class BaselineModelConfig:
    """The DCASE2025 baseline CRNN fed the channels of some streams stacked (``seld.models.seldnet``)."""

    inputs: list[str] = field(default_factory=lambda: ["doa"])
    """Streams of ``data.streams`` stacked as the CRNN input, in this order (default: the DOA stream,
    log-mel L/R + IVy + ILD: the 4-channel input of the issue's 735,413-parameter model)."""
    seldnet: SeldnetConfig = field(default_factory=SeldnetConfig)
    """Layer sizes; ``in_channels`` is set from the stream lists."""

    def __post_init__(self) -> None:
        bad = [s for s in self.inputs if s not in ("src", "doa", "dist")]
        if not self.inputs or bad:
            raise ValueError(f"model.inputs must name streams among src, doa, dist; got {self.inputs}")


@dataclass
class BaselineConfig:
    """``seld baseline``: the DCASE2025 baseline model trained by the same engine (ADPIT, metric, checkpoints)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: BaselineModelConfig = field(default_factory=BaselineModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=1e-3, batch_size=16))
    metrics: MetricConfig = field(default_factory=MetricConfig)


class BaselineTask(SeldTask):
    """SeldNet on the stacked input streams; loss = ADPIT."""

    def __init__(self, model: SeldNet, inputs: list[str], extras: dict[str, Any]):
        super().__init__()
        self.model = model
        self.inputs = list(inputs)
        self._extras = extras

    def predict(self, src: torch.Tensor, doa: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """Activated multi-ACCDOA output ``(batch, frames, 117)``."""
        streams = {"src": src, "doa": doa, "dist": dist}
        return self.model(torch.cat([streams[s] for s in self.inputs], dim=1))

    def step(self, batch: dict[str, Any]) -> StepOutput:
        out = self.predict(batch["src"], batch["doa"], batch["dist"])
        loss = adpit_loss(out.float(), batch["target"])
        return StepOutput(loss=loss, output=out, logs={"adpit": float(loss.detach())})

    def checkpoint_extras(self) -> dict[str, Any]:
        return self._extras


def build_baseline_task(cfg: BaselineConfig, record: dict[str, Any] | None = None) -> BaselineTask:
    """The baseline task; the CRNN's input channels follow ``data.streams`` and ``model.inputs``."""
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.seldnet.in_channels = sum(len(getattr(cfg.data.streams, s)) for s in model_cfg.inputs)
    extras = {
        "stage": "baseline",
        "model": to_dict(model_cfg),
        "streams": to_dict(cfg.data.streams),
        **(record or {}),
    }
    return BaselineTask(SeldNet(model_cfg.seldnet), model_cfg.inputs, extras)


def run_baseline(cfg: BaselineConfig) -> Trainer:
    """Train the baseline CRNN; files and channels are checked before the first step."""
    return _run_stage(cfg, build_baseline_task)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- loading trained models
@dataclass
class LoadedModel:
    """A trained model rebuilt from its checkpoint alone."""

    task: PretrainTask | FinetuneTask | BaselineTask
    stage: Literal["pretrain", "finetune", "baseline"]
    streams: StreamConfig
    normalization: dict[str, dict[str, float]]
    features: dict[str, Any]
    """The feature extraction config the model was trained on (``FeatureConfig`` fields)."""
    feature_config: Any
    """The same as a checked ``FeatureConfig`` (see :func:`checkpoint_feature_config`)."""

    def normalize(self, feats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Apply the training split's per-channel statistics to ``{channel: (T, 64)}``."""
        from seld.data.normalization import ChannelStats

        out = {}
        for name, x in feats.items():
            s = self.normalization.get(name)
            if s is None:
                out[name] = x
                continue
            mean, scale = ChannelStats(s["mean"], s["std"]).offset_and_scale()  # SeldDataset's rule
            out[name] = (x - mean) * scale
        return out


def checkpoint_feature_config(features: dict[str, Any], src: str) -> Any:
    """The ``FeatureConfig`` a checkpoint's model was trained on (defaults when none was stored).

    Refuses (CheckpointError naming ``src``) settings this version would compute differently (see
    :func:`~seld.features.config.outdated_feature_definition`): silently computing today's features
    for such a model would feed it inputs it never saw.
    """
    from seld.features.config import FeatureConfig, outdated_feature_definition

    outdated = outdated_feature_definition(features)
    if outdated:
        raise CheckpointError(
            f"{src}: its features come from an older textseld ({outdated}) and this version computes "
            "them differently; re-extract features with `seld features` and retrain"
        )
    data = {k: v for k, v in features.items() if k in {"stft", "mel", "wpe", "peak_normalize", "channels"}}
    try:
        return from_dict(FeatureConfig, data, source=f"{src} (feature config)")
    except (ConfigError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"{src}: the feature settings stored in this checkpoint do not fit this textseld version ({exc}); "
            "re-extract features with `seld features` and retrain"
        ) from None


def load_task(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model of a pre-training or fine-tuning checkpoint (``weights_only`` load)."""
    ckpt = load_checkpoint(path, map_location="cpu")
    extras = ckpt.get("task") or {}
    stage = extras.get("stage")
    src = str(path)
    streams = from_dict(StreamConfig, extras.get("streams", {}), source=f"{src} (streams)")
    feature_config = checkpoint_feature_config(extras.get("features", {}), src)  # before building the model
    if stage == "pretrain":
        model_cfg = from_dict(ModelConfig, extras["model"], source=f"{src} (model config)")
        task: PretrainTask | FinetuneTask | BaselineTask = PretrainTask(PretrainModel.from_config(model_cfg, load_pretrained=False), extras)
    elif stage == "finetune":
        cfg = FinetuneConfig(
            data=DataConfig(streams=streams),
            model=from_dict(FinetuneModelConfig, extras["model"], source=f"{src} (model config)"),
            loss=from_dict(FinetuneLossConfig, extras.get("loss", {}), source=f"{src} (loss config)"),
            eval_template=int(extras.get("eval_template", 1)),
            head_warmup_steps=int(extras.get("head_warmup_steps", 0)),
        )
        record = {k: extras[k] for k in ("normalization", "features") if k in extras}
        task = build_finetune_task(cfg, record, load_weights=False)
        run = ckpt.get("config") or {}  # the run's whole config, stored with every checkpoint
        pretrained = (run.get("model") or {}).get("pretrained")
        if freezes_tokenizer(run.get("tokenizer_lr"), pretrained):
            # trained with tokenizer_lr 0: what trained is the text head alone (and projection_lr's projections)
            task.freeze_tokenizer(live_projections=bool(run.get("projection_lr")))
        elif run.get("projection_lr") == 0 and pretrained:
            task.tokenizer.projections.requires_grad_(False)
    elif stage == "baseline":
        base_cfg = from_dict(BaselineModelConfig, extras["model"], source=f"{src} (model config)")
        task = BaselineTask(SeldNet(base_cfg.seldnet), base_cfg.inputs, extras)
    else:
        raise CheckpointError(f"{src}: unknown training stage {stage!r} (expected 'pretrain', 'finetune' or 'baseline')")
    load_model_state(task, ckpt["model"], src)
    task.to(device).eval()
    return LoadedModel(
        task=task, stage=stage, streams=streams,
        normalization=extras.get("normalization", {}), features=extras.get("features", {}),
        feature_config=feature_config,
    )
