"""The fine-tuning task (spec section 6): tokens injected into a template, a frozen text encoder, a
GREP or TREP head; loss ``embed_weight * align(A, E_text(X_gt)) + adpit_weight * ADPIT``. How it
trains (held or learning tokenizer, drawn templates and frames, the alignment loss) is its
:class:`~seld.tasks.recipe.FinetuneRecipe`; the builder is :func:`seld.tasks.finetune.build_finetune_task`."""
from __future__ import annotations

import contextlib
from typing import Any

import torch

from seld.accdoa import activate_output
from seld.losses import (
    LearnedTemperature,
    adpit_loss,
    cosine_alignment_loss,
    infonce_alignment_loss,
    mae_alignment_loss,
    sentence_groups,
)
from seld.models.heads import PretrainHead
from seld.models.text_encoders import FrozenTextEncoder, GroundTruthCache
from seld.models.tokenizer import Tokenizer
from seld.tasks.base import SeldTask, StepOutput
from seld.tasks.recipe import FinetuneRecipe
from seld.text.sentences import frame_sentences
from seld.text.templates import TEMPLATES
from seld.text.tokenization import TemplateBatch


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
        recipe: FinetuneRecipe,
        extras: dict[str, Any],
        token_head: PretrainHead | None = None,
        gt_cache_size: int = 200_000,
    ):
        """``head_type``: ``grep`` | ``trep``; ``token_head``: the direct path of ``model.head.residual``;
        ``extras``: what the checkpoint records of the model (:meth:`checkpoint_extras`)."""
        super().__init__()
        self.recipe = recipe
        self.frozen_tokenizer_eval = recipe.frozen_tokenizer_eval
        self.projection_lr = recipe.projection_lr
        self.token_head = token_head
        """``model.head.residual``: the pre-training head, a direct path from the tokens to the output."""
        self.train_templates = list(recipe.train_templates) if recipe.train_templates else None
        self.train_frames = recipe.train_frames
        self.head_warmup_steps = int(recipe.head_warmup_steps)
        if self.head_warmup_steps > 0:  # a step counter saved with the weights (exact resume)
            self.register_buffer("warmup_steps_done", torch.zeros((), dtype=torch.long))
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.head = head
        self.head_type = head_type
        self.loss_cfg = recipe.loss
        self.tokenizer_lr = recipe.tokenizer_lr
        self.eval_template = recipe.eval_template
        self.pretrained_tokenizer = recipe.pretrained_tokenizer
        self.gt_cache = GroundTruthCache(text_encoder, max_entries=gt_cache_size)
        self.temperature = LearnedTemperature(recipe.loss.temperature) if recipe.loss.embed == "infonce" else None
        """``loss.embed: infonce``: the learned temperature (a weight of the task)."""
        self._extras = extras
        self._template_cache: dict[str, TemplateBatch] = {}
        self.frozen_tokenizer = False
        """``tokenizer_lr: 0`` with a pre-trained tokenizer: nothing before the text head learns, so no
        gradient is computed there (the backward pass covers the text head alone)."""
        self.live_projections = False
        """With ``frozen_tokenizer``: the projections learn (``projection_lr`` > 0), so the backward pass
        runs through the text encoder to them; the rest of the tokenizer still runs without autograd."""
        if recipe.holds_tokenizer:
            self.freeze_tokenizer(live_projections=bool(recipe.projection_lr))
        elif recipe.projection_lr == 0 and recipe.pretrained_tokenizer:
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
