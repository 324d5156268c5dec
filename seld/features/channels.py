"""Feature channels of spec section 4, registered by name; a config lists which to compute.

Every channel is a function of a :class:`FeatureContext` (a batch of stereo clips with lazily
computed, shared intermediates) returning ``(B, T, n_mels)`` float64.

Definitions (L, R: STFTs of the left/right channel; ``mel(.)``: Slaney mel filterbank applied
per frame; ``dB(p) = 10 log10(max(p, amin))``):

* ``logmel_l`` = dB(mel|L|^2), ``logmel_r`` = dB(mel|R|^2), ``logmel_mid`` = dB(mel|W|^2),
  W = (L + R) / 2.
* ``ild`` = dB(mel|L|^2) - dB(mel|R|^2): positive when the left channel is louder.
* ``ivy`` = mel(Re(Y W*)) / max(mel((|W|^2 + |Y|^2) / 2), amin) with Y = (L - R) / 2. Signed,
  in [-1, 1] (|Re(Y W*)| <= |Y||W| <= (|W|^2 + |Y|^2) / 2); it equals
  mel(|L|^2 - |R|^2) / mel(|L|^2 + |R|^2), so a source panned as L = (1 + s)x, R = (1 - s)x
  (s = sin azimuth) gives exactly 2s / (1 + s^2): positive on the left, negative on the right.
* ``ipd_cos``, ``ipd_sin``: cos / sin of the phase of L R* per bin (phase 0 where L or R is 0),
  averaged over each mel band with the filter weights normalised to sum 1. The config name
  ``ipd`` is a group that expands to both.
* ``direct_logmel``, ``reverb_logmel``: dB mel power of the WPE direct part of w = (l + r) / 2
  and of the reverberant rest w - direct (see :mod:`seld.features.wpe`).
* ``drr_logmel`` = dB(mel|D|^2) - dB(mel|Rev|^2), the direct-to-reverberant ratio per band.

Add a channel: decorate a function of the context with ``@register_channel("name")``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from seld.errors import ConfigError
from seld.features.config import MelConfig, StftConfig, WpeConfig
from seld.features.stft import mel_basis, mel_filter, power_to_db, stft


def _power(spec: torch.Tensor) -> torch.Tensor:
    return spec.real**2 + spec.imag**2


class FeatureContext:
    """A batch of padded stereo clips ``(B, 2, n)`` and the intermediates the channels share.

    ``num_frames``: feature frames kept from each centred STFT (5 x label frames).
    """

    def __init__(
        self,
        audio: torch.Tensor,
        num_frames: int,
        stft_cfg: StftConfig,
        mel_cfg: MelConfig,
        wpe_cfg: WpeConfig,
        sample_rate: int,
    ) -> None:
        if audio.ndim != 3 or audio.shape[1] != 2:
            raise ValueError(f"audio must be (batch, 2, samples), got {tuple(audio.shape)}")
        self.audio = audio.to(torch.float64)
        self.num_frames = num_frames
        self.stft_cfg = stft_cfg
        self.mel_cfg = mel_cfg
        self.wpe_cfg = wpe_cfg
        self.sample_rate = sample_rate
        self.basis = mel_basis(mel_cfg, stft_cfg.n_fft, sample_rate)  # (M, F)

    def spectrum(self, wave: torch.Tensor) -> torch.Tensor:
        """Feature STFT of ``wave (..., n)`` -> complex ``(..., F, T)``."""
        return stft(wave, self.stft_cfg.n_fft, self.stft_cfg.hop_length, self.num_frames)

    def to_mel(self, per_bin: torch.Tensor) -> torch.Tensor:
        """Mel-filtered ``(..., F, T)`` -> ``(..., T, M)``."""
        return mel_filter(per_bin, self.basis)

    def db(self, power: torch.Tensor) -> torch.Tensor:
        """``10 log10(max(power, amin))``, same shape."""
        return power_to_db(power, self.mel_cfg.amin)

    @functools.cached_property
    def stereo_spec(self) -> torch.Tensor:
        """STFTs of L and R: complex ``(B, 2, F, T)``."""
        return self.spectrum(self.audio)

    @functools.cached_property
    def mid_spec(self) -> torch.Tensor:
        """W = (L + R) / 2: complex ``(B, F, T)``."""
        return 0.5 * (self.stereo_spec[:, 0] + self.stereo_spec[:, 1])

    @functools.cached_property
    def side_spec(self) -> torch.Tensor:
        """Y = (L - R) / 2: complex ``(B, F, T)``."""
        return 0.5 * (self.stereo_spec[:, 0] - self.stereo_spec[:, 1])

    @functools.cached_property
    def mel_power_lr(self) -> torch.Tensor:
        """mel|L|^2 and mel|R|^2: ``(B, 2, T, M)``."""
        return self.to_mel(_power(self.stereo_spec))

    @functools.cached_property
    def mel_power_direct_reverb(self) -> torch.Tensor:
        """Mel power of the WPE direct part and the reverberant rest of w: ``(B, 2, T, M)``."""
        from seld.features.wpe import direct_and_reverberant

        w = 0.5 * (self.audio[:, 0] + self.audio[:, 1])
        direct, reverb = direct_and_reverberant(w, self.wpe_cfg)
        return self.to_mel(_power(self.spectrum(torch.stack([direct, reverb], dim=1))))

    @functools.cached_property
    def ipd_phasor(self) -> torch.Tensor:
        """Unit phasor of L R* per bin (1 where L or R is zero): complex ``(B, F, T)``."""
        cross = self.stereo_spec[:, 0] * self.stereo_spec[:, 1].conj()
        mag = cross.abs()
        return torch.where(mag > 0, cross / torch.clamp(mag, min=1e-300), torch.ones_like(cross))

    @functools.cached_property
    def band_average(self) -> torch.Tensor:
        """Mel filters normalised to sum 1 per band: ``(M, F)``."""
        return self.basis / torch.clamp(self.basis.sum(dim=1, keepdim=True), min=1e-12)


ChannelFn = Callable[[FeatureContext], torch.Tensor]


@dataclass(frozen=True)
class ChannelSpec:
    """A registered feature channel."""

    name: str
    fn: ChannelFn
    needs_wpe: bool
    """True when computing it runs WPE (slow)."""


CHANNELS: dict[str, ChannelSpec] = {}
"""Channel name -> spec; filled by :func:`register_channel`."""

CHANNEL_GROUPS: dict[str, tuple[str, ...]] = {"ipd": ("ipd_cos", "ipd_sin")}
"""Config shorthands that expand to several channels."""


def register_channel(name: str, needs_wpe: bool = False) -> Callable[[ChannelFn], ChannelFn]:
    """Decorator registering a channel function under ``name``."""

    def deco(fn: ChannelFn) -> ChannelFn:
        if name in CHANNELS or name in CHANNEL_GROUPS:
            raise ValueError(f"feature channel '{name}' is already registered")
        CHANNELS[name] = ChannelSpec(name, fn, needs_wpe)
        return fn

    return deco


def valid_channel_names() -> list[str]:
    """Registered channel names followed by group names."""
    return list(CHANNELS) + list(CHANNEL_GROUPS)


def resolve_channels(names: Iterable[str]) -> list[str]:
    """Expand groups (``ipd``) and check names; duplicates are dropped, order kept.

    Raises ConfigError naming an unknown channel and listing the valid ones.
    """
    out: list[str] = []
    for name in names:
        expanded = CHANNEL_GROUPS.get(name, (name,))
        for n in expanded:
            if n not in CHANNELS:
                raise ConfigError(
                    f"unknown feature channel '{name}'; valid: {', '.join(valid_channel_names())}"
                )
            if n not in out:
                out.append(n)
    if not out:
        raise ConfigError("no feature channels configured")
    return out


def needs_wpe(names: Iterable[str]) -> bool:
    """Whether any of ``names`` (resolved) requires WPE."""
    return any(CHANNELS[n].needs_wpe for n in resolve_channels(names))


@register_channel("logmel_l")
def logmel_l(ctx: FeatureContext) -> torch.Tensor:
    return ctx.db(ctx.mel_power_lr[:, 0])


@register_channel("logmel_r")
def logmel_r(ctx: FeatureContext) -> torch.Tensor:
    return ctx.db(ctx.mel_power_lr[:, 1])


@register_channel("logmel_mid")
def logmel_mid(ctx: FeatureContext) -> torch.Tensor:
    return ctx.db(ctx.to_mel(_power(ctx.mid_spec)))


@register_channel("ild")
def ild(ctx: FeatureContext) -> torch.Tensor:
    return ctx.db(ctx.mel_power_lr[:, 0]) - ctx.db(ctx.mel_power_lr[:, 1])


@register_channel("ivy")
def ivy(ctx: FeatureContext) -> torch.Tensor:
    w, y = ctx.mid_spec, ctx.side_spec
    intensity = ctx.to_mel((y * w.conj()).real)
    energy = ctx.to_mel(0.5 * (_power(w) + _power(y)))
    return intensity / torch.clamp(energy, min=ctx.mel_cfg.amin)


@register_channel("ipd_cos")
def ipd_cos(ctx: FeatureContext) -> torch.Tensor:
    return mel_filter(ctx.ipd_phasor.real, ctx.band_average)


@register_channel("ipd_sin")
def ipd_sin(ctx: FeatureContext) -> torch.Tensor:
    return mel_filter(ctx.ipd_phasor.imag, ctx.band_average)


@register_channel("direct_logmel", needs_wpe=True)
def direct_logmel(ctx: FeatureContext) -> torch.Tensor:
    return ctx.db(ctx.mel_power_direct_reverb[:, 0])


@register_channel("reverb_logmel", needs_wpe=True)
def reverb_logmel(ctx: FeatureContext) -> torch.Tensor:
    return ctx.db(ctx.mel_power_direct_reverb[:, 1])


@register_channel("drr_logmel", needs_wpe=True)
def drr_logmel(ctx: FeatureContext) -> torch.Tensor:
    p = ctx.mel_power_direct_reverb
    return ctx.db(p[:, 0]) - ctx.db(p[:, 1])


def compute_channels(ctx: FeatureContext, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Each named channel of the batch in ``ctx``: name -> ``(B, T, n_mels)`` float64."""
    return {n: CHANNELS[n].fn(ctx) for n in resolve_channels(names)}
