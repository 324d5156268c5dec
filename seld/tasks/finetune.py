"""Fine-tuning (spec section 6): its YAML schema, the builder of :class:`FinetuneTask` from it, the
runner and the rebuild of a checkpoint's model.

A pre-trained tokenizer's tokens are injected into a template and read by a frozen text encoder; a
GREP or TREP head turns its output into the multi-ACCDOA prediction. The recipe switches of the
config (``tokenizer_lr``, ``projection_lr``, ``train_frames`` ...) reach the task as one checked
:class:`~seld.tasks.recipe.FinetuneRecipe` (:meth:`FinetuneConfig.recipe`).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch
from torch.utils.data import Subset

from seld.checkpoint import load_checkpoint, load_model_state
from seld.config import from_dict, to_dict
from seld.data.dataset import StreamConfig
from seld.errors import CheckpointError, ConfigError
from seld.metrics import MetricConfig
from seld.models.heads import HeadConfig, PretrainHead, TrepHead, build_head
from seld.models.pretrain import ModelConfig, PretrainModel
from seld.models.text_encoders import TextEncoderConfig, build_text_encoder
from seld.models.tokenizer import Tokenizer, TokenizerConfig
from seld.tasks import StageParts
from seld.tasks.base import apply_stream_channels
from seld.tasks.finetune_task import FinetuneTask
from seld.tasks.recipe import FinetuneLossConfig, FinetuneRecipe, freezes_tokenizer
from seld.train.config import TrainConfig
from seld.train.data import ClipSubset, DataConfig, build_dataset
from seld.train.head_init import check_lstsq_head, fit_head

if TYPE_CHECKING:
    from seld.train.engine import Trainer


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
        self.recipe()  # the recipe's checks: a combination that makes no sense stops here, naming the keys

    def recipe(self) -> FinetuneRecipe:
        """The recipe switches of this config as one checked :class:`FinetuneRecipe` (ValueError
        naming the keys for a combination that makes no sense)."""
        return FinetuneRecipe(
            loss=self.loss, pretrained_tokenizer=bool(self.model.pretrained), tokenizer_lr=self.tokenizer_lr,
            projection_lr=self.projection_lr, frozen_tokenizer_eval=self.frozen_tokenizer_eval,
            head_warmup_steps=self.head_warmup_steps, train_frames=self.train_frames,
            train_templates=self.train_templates, eval_template=self.eval_template,
            residual_head=self.model.head.residual, lstsq_head=self.model.head.init == "lstsq",
            language=self.model.text_encoder.kind != "none",
        )


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
    """The tokenizer config and the model (tokenizer + pre-training head) of a pre-training checkpoint."""
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
    m, recipe = cfg.model, cfg.recipe()
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
    if recipe.residual_head:  # start exactly at the tokenizer: its head kept, the text head's output at zero
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
    return FinetuneTask(tokenizer, text_encoder, head, head_type, recipe, extras, token_head=token_head,
                        gt_cache_size=cfg.gt_cache_size)


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


def _init_head_before_training(cfg: FinetuneConfig, trainer: Trainer) -> None:
    """``model.head.init: lstsq`` in a new run (a resumed one has its weights from the checkpoint),
    its time counted inside the run's ``train.max_minutes``."""
    if trainer.task.recipe.lstsq_head and not trainer.resumed:
        started = time.monotonic()
        _lstsq_init_head(cfg, trainer)
        trainer.count_setup_time(time.monotonic() - started)


def run_finetuning(cfg: FinetuneConfig) -> Trainer:
    """Fine-tune; files, channels, checkpoints and widths are checked before the first step."""
    from seld.tasks.runner import run_stage

    if cfg.model.pretrained is not None and not Path(cfg.model.pretrained).is_file():
        raise ConfigError(f"model.pretrained: checkpoint not found: {cfg.model.pretrained}")
    if cfg.model.head.init == "lstsq" and cfg.model.pretrained is None:
        raise ConfigError("model.head.init=lstsq needs model.pretrained (the pre-training head is the fit's target)")
    return run_stage(cfg, build_finetune_task, prepare=_init_head_before_training)


def rebuild_finetune_task(ckpt: dict[str, Any], extras: dict[str, Any], streams: StreamConfig, src: str) -> FinetuneTask:
    """The architecture of a fine-tuning checkpoint, held or learning as its run trained it (the run's
    config, stored with every checkpoint, says whether the tokenizer was held)."""
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
    return task


PARTS = StageParts(schema=FinetuneConfig, build=build_finetune_task, run=run_finetuning, rebuild=rebuild_finetune_task)
