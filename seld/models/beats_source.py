"""The BEATs source encoder of the tokenizer (spec section 5): a frozen BEATs under a new patch layer.

The patch embedding of :class:`~seld.models.beats.BEATs` is replaced by a Conv2d(1, 512,
kernel = stride = (5, 16), bias) initialised from the pre-trained 16x16 kernel, so a (250 frames,
64 mel) log-mel gives 50 x 4 patches; each of the 4 frequency rows runs as its own 50-step sequence
through the frozen transformer; the outputs of the chosen layers are combined and projected to the
tokenizer width.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from seld.errors import ConfigError
from seld.models.beats import BEATs, BEATsConfig
from seld.models.beats_checkpoint import load_beats_checkpoint

logger = logging.getLogger(__name__)


def interpolate_patch_kernel(weight: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (``F.interpolate``, align_corners=False) of a ``(out, 1, kh, kw)`` kernel to ``(out, 1, *size)``.

    No rescaling: the LayerNorm right after the patch embedding removes any global scale of its
    output (the new bias starts at zero), so matching the kernel's sum would change nothing.
    """
    if weight.dim() != 4:
        raise ValueError(f"patch kernel must be (out, in, kh, kw), got shape {tuple(weight.shape)}")
    return F.interpolate(weight.detach().float(), size=tuple(size), mode="bilinear", align_corners=False).to(weight.dtype)


@dataclass
class BeatsEncoderConfig:
    """The BEATs source encoder. ``checkpoint: null`` builds a random ``beats`` (for tests only)."""

    checkpoint: Optional[str] = None  # official BEATs .pt; its cfg overrides `beats`
    trust_checkpoint: bool = False
    """Opt-in exception to "no pickle": a ``checkpoint`` that ``torch.load(weights_only=True)`` refuses
    is unpickled fully (``weights_only=False``), which runs any code the file holds. Only for a file
    from a source you trust; textseld's own files never need it."""
    in_channels: int = 1  # BEATs takes exactly one log-mel channel
    patch_size: tuple[int, int] = (5, 16)  # (time, freq) kernel = stride of the new patch embedding
    layers: list[int] = field(default_factory=lambda: [12])
    """1-based transformer layers whose outputs are used. Default ``[12]``: the last layer only, what
    the authors' code really uses (it computes 4, 8, 12 but keeps ``extract_features(...)[0]``).
    ``[4, 8, 12]`` with ``layer_combine`` is our learned mix (an option, not theirs)."""
    layer_combine: Literal["mean", "weighted"] = "weighted"
    """Several ``layers``: ``weighted`` = softmax of learned weights (starting as the mean) or ``mean``.
    Ignored with one layer (no weights are created)."""
    train_layer_norm: bool = False  # spec: trainable = patch embedding, post_extract_proj, projection
    beats: BEATsConfig = field(default_factory=BEATsConfig)

    def __post_init__(self) -> None:
        if self.in_channels != 1:
            raise ConfigError(f"beats encoder: in_channels must be 1 (BEATs takes one log-mel channel), got {self.in_channels}")
        if len(self.patch_size) != 2 or any(int(p) < 1 for p in self.patch_size):
            raise ConfigError(f"beats encoder: patch_size must be two positive integers, got {self.patch_size}")
        self.patch_size = (int(self.patch_size[0]), int(self.patch_size[1]))
        if not self.layers:
            raise ConfigError("beats encoder: layers must name at least one transformer layer")


class BeatsSourceEncoder(nn.Module):
    """BEATs source encoder: ``(batch, 1, T, F)`` -> ``(batch, T / 5, F / 16, d_model)``.

    Trainable: input BatchNorm, the new (5, 16) patch embedding, ``post_extract_proj`` (and
    ``layer_norm`` when ``train_layer_norm``), the layer weights and the output projection. The
    transformer is frozen (``requires_grad`` False) and stays in eval mode even after ``.train()``,
    so layer drop, dropout and gradient decay never act on it; gradients still flow through it to
    the patch embedding.

    Layers: by default the last layer alone (the authors' code). With several ``layers``,
    ``weighted`` mixes their outputs with softmax(w), w a learned vector starting at zero (so
    training starts from their plain mean); ``mean`` averages.
    """

    fuse_by_default = False  # spec: with a BEATs source the multi-feature attention sees DOA and distance only

    def __init__(self, cfg: BeatsEncoderConfig, d_model: int, beats: Optional[BEATs] = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.beats = beats if beats is not None else BEATs(cfg.beats)
        num_layers = self.beats.cfg.encoder_layers
        bad = [i for i in cfg.layers if not 1 <= i <= num_layers]
        if bad:
            raise ConfigError(f"beats encoder: layers {bad} out of range 1..{num_layers} (BEATs has {num_layers} layers)")
        self.layers = list(cfg.layers)
        self.input_norm = nn.BatchNorm2d(cfg.in_channels)

        old = self.beats.patch_embedding
        new = nn.Conv2d(1, old.out_channels, kernel_size=cfg.patch_size, stride=cfg.patch_size, bias=True)
        with torch.no_grad():
            new.weight.copy_(interpolate_patch_kernel(old.weight, cfg.patch_size))
            new.bias.zero_()
        self.beats.patch_embedding = new

        trainable = ["patch_embedding.", "post_extract_proj."] + (["layer_norm."] if cfg.train_layer_norm else [])
        for name, param in self.beats.named_parameters():
            param.requires_grad_(name.startswith(tuple(trainable)))

        if cfg.layer_combine == "weighted" and len(self.layers) > 1:
            self.layer_weights = nn.Parameter(torch.zeros(len(self.layers)))
        else:
            self.register_parameter("layer_weights", None)
        self.out_proj = nn.Linear(self.beats.cfg.encoder_embed_dim, d_model)
        self.d_model = d_model
        self.beats.eval()

    @classmethod
    def from_config(cls, cfg: BeatsEncoderConfig, d_model: int, load_pretrained: bool = True) -> "BeatsSourceEncoder":
        """The encoder; with ``cfg.checkpoint`` set (and ``load_pretrained``) BEATs comes from that file."""
        if cfg.checkpoint is not None and load_pretrained:
            beats = load_beats_checkpoint(cfg.checkpoint, trust_checkpoint=cfg.trust_checkpoint)
            ignore = {"finetuned_model", "predictor_dropout", "predictor_class"}
            differ = [
                f"{f.name}: {getattr(cfg.beats, f.name)!r} -> {getattr(beats.cfg, f.name)!r}"
                for f in dataclasses.fields(BEATsConfig)
                if f.name not in ignore and getattr(cfg.beats, f.name) != getattr(beats.cfg, f.name)
            ]
            if differ:
                # a model rebuilt later with load_pretrained=False uses cfg.beats, so say what to put there
                logger.warning(
                    "%s: the checkpoint's cfg (used) differs from the config's `beats` section: %s",
                    cfg.checkpoint, "; ".join(differ),
                )
        else:
            if cfg.checkpoint is None:
                logger.warning("BEATs source encoder with random weights (checkpoint: null) - for tests only")
            beats = BEATs(cfg.beats)
        return cls(cfg, d_model, beats)

    @property
    def out_dim(self) -> int:
        """Width of each output token."""
        return self.d_model

    def train(self, mode: bool = True) -> "BeatsSourceEncoder":
        """Set training mode on the trainable parts; the BEATs transformer always stays in eval mode."""
        super().train(mode)
        self.beats.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, T, F)`` -> ``(batch, T / pt, F / pf, d_model)``; (250, 64) gives (50, 4) with (5, 16) patches."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"BEATs source encoder expects (batch, 1, time, freq), got shape {tuple(x.shape)}")
        pt, pf = self.cfg.patch_size
        if x.shape[2] % pt or x.shape[3] % pf:
            raise ValueError(f"BEATs source encoder input (time, freq) = {tuple(x.shape[2:])} is not divisible by {(pt, pf)}")
        feats = self.beats.patch_features(self.input_norm(x))  # (B, T', F', C)
        b, t, f, c = feats.shape
        rows = self.beats.dropout_input(feats.permute(0, 2, 1, 3).reshape(b * f, t, c))  # each row its own sequence
        outs = torch.stack(self.beats.encoder(rows, self.layers))  # (L, B * F', T', C)
        if self.layer_weights is None:
            combined = outs.mean(dim=0)
        else:
            w = torch.softmax(self.layer_weights, dim=0)
            combined = torch.einsum("l,lntc->ntc", w, outs)
        y = self.out_proj(combined)  # (B * F', T', d_model)
        return y.reshape(b, f, t, self.d_model).permute(0, 2, 1, 3).contiguous()
