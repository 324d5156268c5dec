"""BEATs (Chen et al., 2022) transformer and the BEATs source encoder of the tokenizer (spec section 5).

Two parts:

* ``BEATs``: the BEATs model exactly as in an official checkpoint (microsoft/unilm ``beats/``):
  a 16x16 patch embedding (512 wide, no bias), ``layer_norm`` on the patch features,
  ``post_extract_proj`` 512 -> 768, then a post-LN transformer with a weight-normed convolutional
  positional embedding, deep-norm residual scaling and a gated relative position bias shared by all
  layers. Parameter and buffer names match the official state dict, so ``load_beats_checkpoint``
  loads an official ``.pt`` file strictly. The model is always built from the checkpoint's ``cfg``.
  The 527-way AudioSet ``predictor`` of fine-tuned checkpoints is never built (SELD does not use it).
* ``BeatsSourceEncoder``: the SELD source encoder. The patch embedding is replaced by a
  Conv2d(1, 512, kernel = stride = (5, 16), bias) initialised from the pre-trained 16x16 kernel, so a
  (250 frames, 64 mel) log-mel gives 50 x 4 patches; each of the 4 frequency rows runs as its own
  50-step sequence through the frozen transformer; the outputs of layers 4, 8 and 12 are combined
  and projected to the tokenizer width.

The official model takes 128-bin Kaldi fbank at 16 kHz; this code never computes fbank (the seed
feeds 64-mel log-mel through the new patch layer), so ``preprocess`` is not reproduced.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from seld.errors import CheckpointError, ConfigError
from seld.io_utils import weights_only_refusal

logger = logging.getLogger(__name__)

_ACTIVATIONS = ("relu", "gelu", "gelu_accurate", "tanh", "linear")


@dataclass
class BEATsConfig:
    """BEATs architecture; field names are the keys of an official checkpoint's ``cfg`` dict.

    Defaults are those of the iter3+ checkpoints (e.g. ``BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt``),
    not the defaults of the official code. ``finetuned_model``, ``predictor_dropout`` and
    ``predictor_class`` describe the AudioSet predictor, which is never built here.
    """

    input_patch_size: int = 16
    embed_dim: int = 512  # patch embedding width
    conv_bias: bool = False  # bias in the patch embedding
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_wise_gradient_decay_ratio: float = 0.6  # acts only while the transformer is in training mode
    layer_norm_first: bool = False
    deep_norm: bool = True
    dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.05  # acts only while the transformer is in training mode
    dropout_input: float = 0.0
    conv_pos: int = 128  # kernel of the convolutional positional embedding
    conv_pos_groups: int = 16
    relative_position_embedding: bool = True
    num_buckets: int = 320
    max_distance: int = 800
    gru_rel_pos: bool = True
    finetuned_model: bool = False
    predictor_dropout: float = 0.0
    predictor_class: int = 527

    def __post_init__(self) -> None:
        if self.deep_norm and self.layer_norm_first:
            raise ConfigError("beats: deep_norm and layer_norm_first cannot both be true")
        if self.activation_fn not in _ACTIVATIONS:
            raise ConfigError(f"beats: activation_fn {self.activation_fn!r} is not supported; valid: {', '.join(_ACTIVATIONS)}")
        if self.encoder_embed_dim % self.encoder_attention_heads:
            raise ConfigError(
                f"beats: encoder_embed_dim {self.encoder_embed_dim} is not divisible by "
                f"encoder_attention_heads {self.encoder_attention_heads}"
            )
        if self.encoder_embed_dim % self.conv_pos_groups:
            raise ConfigError(
                f"beats: encoder_embed_dim {self.encoder_embed_dim} is not divisible by conv_pos_groups {self.conv_pos_groups}"
            )
        if self.relative_position_embedding and (self.num_buckets < 4 or self.max_distance <= self.num_buckets // 4):
            raise ConfigError(
                f"beats: need num_buckets >= 4 and max_distance > num_buckets / 4, got {self.num_buckets}, {self.max_distance}"
            )
        if self.encoder_layers < 1:
            raise ConfigError(f"beats: encoder_layers must be >= 1, got {self.encoder_layers}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> "BEATsConfig":
        """Config from a checkpoint ``cfg`` dict; unknown keys are ignored with a warning that lists them."""
        from seld.config import from_dict

        if not isinstance(data, dict):
            raise ConfigError(f"{source}: BEATs cfg must be a mapping, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            warnings.warn(f"{source}: ignoring BEATs cfg keys this code does not use: {', '.join(unknown)}", stacklevel=2)
        return from_dict(cls, {k: v for k, v in data.items() if k in names}, source=source, prefix="cfg")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, as stored under ``cfg`` in a checkpoint."""
        return dataclasses.asdict(self)


def _activation(name: str):
    """The callable for an official ``activation_fn`` name."""
    if name == "relu":
        return F.relu
    if name == "gelu":
        return lambda x: F.gelu(x.float()).type_as(x)
    if name == "gelu_accurate":
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "tanh":
        return torch.tanh
    return lambda x: x


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``scale`` (BEATs' layer-wise gradient decay)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad * ctx.scale, None


def relative_position_bucket(relative_position: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """Bidirectional T5-style bucket index in ``[0, num_buckets)`` of each (key - query) offset.

    Half the buckets hold positive offsets. Within a half, offsets below ``num_buckets / 4`` get
    their own bucket; larger ones share log-spaced buckets up to ``max_distance`` (clamped after).
    """
    half = num_buckets // 2
    buckets = (relative_position > 0).long() * half
    distance = relative_position.abs()
    max_exact = half // 2
    # clamp to 1 inside the log only to avoid log(0); those offsets take the exact branch anyway
    log_ratio = torch.log(distance.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (log_ratio * (half - max_exact)).long()
    large = large.clamp(max=half - 1)
    return buckets + torch.where(distance < max_exact, distance, large)


class WeightNormConv1d(nn.Module):
    """Conv1d with weight normalisation over the kernel axis (``weight = g * v / ||v||``, norm per tap).

    Parameters ``weight_g`` (1, 1, K), ``weight_v`` (out, in / groups, K) and ``bias`` have the names
    ``torch.nn.utils.weight_norm(conv, dim=2)`` gives them, as stored in BEATs checkpoints.
    """

    def __init__(self, channels: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.groups = groups
        std = math.sqrt(4.0 / (kernel_size * channels))
        v = torch.randn(channels, channels // groups, kernel_size) * std
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt())
        self.bias = nn.Parameter(torch.zeros(channels))

    def weight(self) -> torch.Tensor:
        """The effective kernel ``g * v / ||v||``, shape (out, in / groups, K)."""
        norm = self.weight_v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
        return self.weight_v * (self.weight_g / norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, T)`` -> ``(batch, channels, T + 1 - K % 2)`` (padding K // 2)."""
        return F.conv1d(x, self.weight(), self.bias, padding=self.kernel_size // 2, groups=self.groups)


class SamePad(nn.Module):
    """Drops the last time step an even-kernel convolution adds, so the length is unchanged."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.remove = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, T + remove)`` -> ``(batch, channels, T)``."""
        return x[:, :, : x.shape[2] - self.remove] if self.remove else x


class MultiheadAttention(nn.Module):
    """Self-attention with BEATs' gated relative position bias (``grep_linear``, ``grep_a``).

    The bias of head h between query i and key j is ``gate_h(q_i) * E[bucket(j - i), h]`` where
    ``E`` is ``relative_attention_bias`` (shared by all layers) and the gate, from the query's raw
    projection ``q_i``, is ``a * (b * grep_a[h] - 1) + 2`` with ``(a, b) = sigmoid`` of the two
    4-sums of ``grep_linear(q_i)``.
    """

    def __init__(self, cfg: BEATsConfig, has_relative_attention_bias: bool) -> None:
        super().__init__()
        dim, heads = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        self.num_heads = heads
        self.head_dim = dim // heads
        self.attention_dropout = cfg.attention_dropout
        self.num_buckets = cfg.num_buckets
        self.max_distance = cfg.max_distance
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.has_relative_attention_bias = has_relative_attention_bias
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(cfg.num_buckets, heads)
        self.gru_rel_pos = cfg.gru_rel_pos
        if cfg.gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def compute_bias(self, query_length: int, key_length: int) -> torch.Tensor:
        """Ungated relative position bias, shape (heads, query_length, key_length)."""
        device = self.relative_attention_bias.weight.device
        query_pos = torch.arange(query_length, device=device)[:, None]
        key_pos = torch.arange(key_length, device=device)[None, :]
        buckets = relative_position_bucket(key_pos - query_pos, self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)

    def forward(
        self, x: torch.Tensor, position_bias: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(batch, T, dim)`` -> (``(batch, T, dim)``, ungated position bias ``(heads, T, T)`` or None)."""
        b, t, dim = x.shape
        q = self.q_proj(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_proj(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        if self.has_relative_attention_bias and position_bias is None:
            position_bias = self.compute_bias(t, t)
        attn_bias = None
        if position_bias is not None:
            attn_bias = position_bias.unsqueeze(0).to(q.dtype)  # (1, H, T, T)
            if self.gru_rel_pos:
                gates = torch.sigmoid(self.grep_linear(q).view(b, self.num_heads, t, 2, 4).sum(-1))
                gate_a, gate_b = gates[..., 0:1], gates[..., 1:2]  # (B, H, T, 1)
                attn_bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * attn_bias
        dropout = self.attention_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, dropout_p=dropout)
        y = y.transpose(1, 2).reshape(b, t, dim)
        return self.out_proj(y), position_bias


class TransformerSentenceEncoderLayer(nn.Module):
    """One BEATs layer: post-LN (``x = LN(alpha * x + f(x))``, deep norm alpha = (2L)^1/4) or pre-LN."""

    def __init__(self, cfg: BEATsConfig, has_relative_attention_bias: bool) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.layer_norm_first = cfg.layer_norm_first
        self.activation_fn = _activation(cfg.activation_fn)
        self.self_attn = MultiheadAttention(cfg, has_relative_attention_bias)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.activation_dropout)
        self.dropout3 = nn.Dropout(cfg.dropout)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.deep_norm_alpha = math.pow(2 * cfg.encoder_layers, 0.25) if cfg.deep_norm else 1.0

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout3(self.fc2(self.dropout2(self.activation_fn(self.fc1(x)))))

    def forward(
        self, x: torch.Tensor, position_bias: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(batch, T, dim)`` -> (``(batch, T, dim)``, position bias to hand to the next layer)."""
        if self.layer_norm_first:
            y, position_bias = self.self_attn(self.self_attn_layer_norm(x), position_bias)
            x = x + self.dropout1(y)
            return x + self._ffn(self.final_layer_norm(x)), position_bias
        y, position_bias = self.self_attn(x, position_bias)
        x = self.self_attn_layer_norm(x * self.deep_norm_alpha + self.dropout1(y))
        x = self.final_layer_norm(x * self.deep_norm_alpha + self._ffn(x))
        return x, position_bias


class TransformerEncoder(nn.Module):
    """Conv positional embedding + BEATs layers; returns the outputs of the requested layers."""

    def __init__(self, cfg: BEATsConfig) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.dropout = cfg.dropout
        self.pos_conv = nn.Sequential(WeightNormConv1d(dim, cfg.conv_pos, cfg.conv_pos_groups), SamePad(cfg.conv_pos), nn.GELU())
        self.layers = nn.ModuleList(
            [TransformerSentenceEncoderLayer(cfg, cfg.relative_position_embedding) for _ in range(cfg.encoder_layers)]
        )
        if cfg.relative_position_embedding:
            # one bias table for all layers (it appears under every layer's name in the state dict)
            shared = self.layers[0].self_attn.relative_attention_bias
            for layer in self.layers[1:]:
                layer.self_attn.relative_attention_bias = shared
        self.layer_norm_first = cfg.layer_norm_first
        self.layer_norm = nn.LayerNorm(dim)
        self.layerdrop = cfg.encoder_layerdrop
        self.layer_wise_gradient_decay_ratio = cfg.layer_wise_gradient_decay_ratio
        self._init_weights(cfg)

    def _init_weights(self, cfg: BEATsConfig) -> None:
        """BERT-style N(0, 0.02) init, then deep-norm Xavier gains (as the official random init)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
        if cfg.deep_norm:
            beta = math.pow(8 * cfg.encoder_layers, -0.25)
            for layer in self.layers:
                attn = layer.self_attn
                nn.init.xavier_normal_(attn.k_proj.weight, gain=1.0)
                nn.init.xavier_normal_(attn.q_proj.weight, gain=1.0)
                for lin in (attn.v_proj, attn.out_proj, layer.fc1, layer.fc2):
                    nn.init.xavier_normal_(lin.weight, gain=beta)

    def forward(self, x: torch.Tensor, return_layers: Optional[list[int]] = None) -> list[torch.Tensor]:
        """``(batch, T, dim)`` -> outputs ``(batch, T, dim)`` of the 1-based ``return_layers`` (default: last).

        Layers after the deepest requested one are not run. Layer drop and gradient decay act only
        in training mode.
        """
        wanted = sorted(set(return_layers)) if return_layers else [len(self.layers)]
        if wanted[0] < 1 or wanted[-1] > len(self.layers):
            raise ValueError(f"BEATs layers {return_layers} out of range 1..{len(self.layers)}")
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = F.dropout(x, p=self.dropout, training=self.training)
        outputs: dict[int, torch.Tensor] = {}
        position_bias = None
        for i, layer in enumerate(self.layers[: wanted[-1]], start=1):
            if self.training and self.layer_wise_gradient_decay_ratio != 1.0:
                x = _ScaleGradient.apply(x, self.layer_wise_gradient_decay_ratio)
            if not self.training or self.layerdrop == 0.0 or float(torch.rand(())) > self.layerdrop:
                x, position_bias = layer(x, position_bias)
            outputs[i] = x
        if self.layer_norm_first and wanted[-1] == len(self.layers):
            outputs[wanted[-1]] = self.layer_norm(outputs[wanted[-1]])
        order = list(return_layers) if return_layers else wanted
        return [outputs[i] for i in order]


class BEATs(nn.Module):
    """The BEATs model of an official checkpoint (without the AudioSet predictor)."""

    def __init__(self, cfg: BEATsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = cfg.embed_dim
        self.post_extract_proj = (
            nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim) if cfg.embed_dim != cfg.encoder_embed_dim else None
        )
        self.patch_embedding = nn.Conv2d(
            1, cfg.embed_dim, kernel_size=cfg.input_patch_size, stride=cfg.input_patch_size, bias=cfg.conv_bias
        )
        self.dropout_input = nn.Dropout(cfg.dropout_input)
        self.encoder = TransformerEncoder(cfg)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)

    @classmethod
    def from_config(cls, cfg: BEATsConfig) -> "BEATs":
        """A randomly initialised BEATs of architecture ``cfg``."""
        return cls(cfg)

    def patch_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, T, F)`` -> ``(batch, T / pt, F / pf, encoder_embed_dim)``: patches, layer_norm, post_extract_proj."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"BEATs expects (batch, 1, time, freq), got shape {tuple(x.shape)}")
        y = self.patch_embedding(x).permute(0, 2, 3, 1)  # (B, T', F', embed)
        y = self.layer_norm(y)
        if self.post_extract_proj is not None:
            y = self.post_extract_proj(y)
        return y

    def extract_features(self, x: torch.Tensor, return_layers: Optional[list[int]] = None) -> list[torch.Tensor]:
        """``(batch, 1, T, F)`` -> outputs ``(batch, T' * F', encoder_embed_dim)`` of ``return_layers`` (default: last).

        Patches are ordered time-major (patch index = t' * F' + f'), as in the official model.
        """
        y = self.patch_features(x)
        b, t, f, c = y.shape
        return self.encoder(self.dropout_input(y.reshape(b, t * f, c)), return_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, T, F)`` -> last layer ``(batch, T' * F', encoder_embed_dim)``."""
        return self.extract_features(x)[-1]


# --------------------------------------------------------------------------- checkpoints


def read_beats_checkpoint(
    path: str | os.PathLike[str], trust_checkpoint: bool = False
) -> tuple[BEATsConfig, dict[str, torch.Tensor]]:
    """(config, state dict) of a ``{"cfg": ..., "model": ...}`` BEATs file; ``predictor.*`` keys are dropped.

    The file is read with ``weights_only=True`` (tensors and plain containers only; nothing in the
    file runs). Only when ``trust_checkpoint`` is set does a file that this refuses get a second try
    with ``weights_only=False``: full unpickling, which runs any code the file holds.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"BEATs checkpoint not found: {p}")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        if not trust_checkpoint:
            raise CheckpointError(
                f"{p}: cannot be read with torch.load(weights_only=True) ({weights_only_refusal(exc)}). Only if you "
                "trust the file's source: tokenizer.beats.trust_checkpoint: true unpickles it fully, running any "
                "code it holds."
            ) from None
        try:
            ckpt = torch.load(p, map_location="cpu", weights_only=False)
        except Exception as exc2:  # noqa: BLE001 - any unpickling failure means the file is unusable
            raise CheckpointError(f"{p}: not a readable torch checkpoint ({exc2})") from exc2
    if not isinstance(ckpt, dict) or "cfg" not in ckpt or "model" not in ckpt:
        found = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{p}: not a BEATs checkpoint: expected a dict with keys 'cfg' and 'model', found {found}")
    try:
        cfg = BEATsConfig.from_dict(dict(ckpt["cfg"]), source=str(p))
    except ConfigError as exc:
        raise CheckpointError(f"{p}: bad BEATs cfg: {exc}") from exc
    state = dict(ckpt["model"])
    dropped = sorted(k for k in state if k.startswith("predictor."))
    if dropped:
        logger.info("%s: dropping the AudioSet predictor (%s); SELD does not use it", p, ", ".join(dropped))
        for k in dropped:
            del state[k]
    return cfg, state


def load_beats_state(model: BEATs, state: dict[str, torch.Tensor], source: str = "<state dict>") -> None:
    """Load ``state`` into ``model`` strictly; missing, unexpected or mis-shaped keys raise CheckpointError listing them."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {'; '.join(mismatched)}")
    if problems:
        raise CheckpointError(f"{source}: BEATs state dict does not match the model built from its cfg: " + " | ".join(problems))
    model.load_state_dict(state, strict=True)


def load_beats_checkpoint(path: str | os.PathLike[str], trust_checkpoint: bool = False) -> BEATs:
    """A BEATs model built from the file's ``cfg`` and loaded strictly from its ``model`` (predictor dropped)."""
    cfg, state = read_beats_checkpoint(path, trust_checkpoint=trust_checkpoint)
    model = BEATs(cfg)
    load_beats_state(model, state, source=str(path))
    return model


def save_beats_checkpoint(model: BEATs, path: str | os.PathLike[str]) -> Path:
    """Write ``{"cfg": dict, "model": state_dict}`` (the official layout) atomically; return the path."""
    from seld.io_utils import atomic_path

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(p) as tmp:
        torch.save({"cfg": model.cfg.to_dict(), "model": model.state_dict()}, tmp)
    return p


# --------------------------------------------------------------------------- SELD source encoder


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
