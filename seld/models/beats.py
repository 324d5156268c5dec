"""BEATs (Chen et al., 2022): the transformer of an official checkpoint (microsoft/unilm ``beats/``).

A 16x16 patch embedding (512 wide, no bias), ``layer_norm`` on the patch features,
``post_extract_proj`` 512 -> 768, then a post-LN transformer with a weight-normed convolutional
positional embedding, deep-norm residual scaling and a gated relative position bias shared by all
layers. Parameter and buffer names match the official state dict, so an official ``.pt`` file loads
strictly (:mod:`seld.models.beats_checkpoint`); the model is always built from the checkpoint's
``cfg``. The 527-way AudioSet ``predictor`` of fine-tuned checkpoints is never built (SELD does not
use it). The tokenizer's source encoder around it is :mod:`seld.models.beats_source`.

The official model takes 128-bin Kaldi fbank at 16 kHz; this code never computes fbank (the seed
feeds 64-mel log-mel through a new patch layer), so ``preprocess`` is not reproduced.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from seld.errors import ConfigError

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
