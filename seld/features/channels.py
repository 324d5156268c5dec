"""Feature channels of spec section 4, registered by name; a config lists which to compute.

Every channel is a function of a :class:`FeatureContext` (a batch of stereo clips with lazily
computed, shared intermediates) returning ``(B, T, n_mels)`` (float32 from the mel product,
float64 for ``ipd_*``; stored as float32).

Definitions (L, R: STFTs of the left/right channel; ``mel(.)``: Slaney mel filterbank applied
per frame; ``dB(p) = 10 log10(max(p, amin))``):

* ``logmel_l`` = dB(mel|L|^2), ``logmel_r`` = dB(mel|R|^2), ``logmel_mid`` = dB(mel|W|^2),
  W = (L + R) / 2.
* ``ild`` = dB(mel|L|^2) - dB(mel|R|^2): positive when the left channel is louder.
* ``ivy`` = mel(Re(Y W*)) / max(mel((|W|^2 + |Y|^2) / 2), amin) with Y = (L - R) / 2. Signed,
  in [-1, 1] (|Re(Y W*)| <= |Y||W| <= (|W|^2 + |Y|^2) / 2); it equals
  mel(|L|^2 - |R|^2) / mel(|L|^2 + |R|^2), so a source panned as L = (1 + s)x, R = (1 - s)x
  (s = sin azimuth) gives exactly 2s / (1 + s^2): positive on the left, negative on the right.
  It is computed in that second form, from the two mel powers of L and R.
* ``ipd_cos``, ``ipd_sin``: cos / sin of the phase of L R* per bin (phase 0 where L or R is 0),
  averaged over each mel band with the filter weights normalised to sum 1. The config name
  ``ipd`` is a group that expands to both.
* ``direct_logmel``, ``reverb_logmel``: dB mel power of the WPE direct part D of W and of the
  reverberant rest Rev, as the authors' ``get_distance_feats`` computes them: WPE runs on the
  feature STFT of W (every frame of the clip, incl. the dropped last one, gives the statistics)
  and D is its output itself (no resynthesis); by default (``wpe.reverb: time_domain``)
  Rev = STFT(w - ISTFT(D)), the time-domain residual of the mid signal w = (l + r) / 2 analysed
  again with the feature STFT (same window, hop, centring and padding); with
  ``wpe.reverb: stft_domain``, Rev = W - D bin by bin, exactly WPE's prediction of the late
  reverberation (see :mod:`seld.features.wpe`).
* ``drr_logmel`` = dB(mel(|D|^2 / (|Rev|^2 + 1e-8))), the authors' per-bin direct-to-reverberant
  ratio, with |D|^2 and |Rev|^2 floored at 1e-100 as they do (the floor changes the other
  log-mels only below ``amin``, so it matters only here).

Every mel-filtered per-bin quantity a batch needs (|L|^2, |R|^2, |W|^2, |D|^2, |Rev|^2, the DRR)
is computed from the same spectra and filtered in ONE matrix product (:meth:`FeatureContext.prepare_mel`).

Add a channel: decorate a function of the context with ``@register_channel("name", mel_inputs=...)``;
add a per-bin quantity to :data:`PER_BIN` if it needs a new one.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from seld.errors import ConfigError
from seld.features.params import MelConfig, StftConfig, WpeConfig
from seld.features.stft import istft, mel_basis, mel_filter, power_to_db, stft
from seld.features.wpe import wpe

MEL_DTYPE = torch.float32
"""Precision of the mel product: the per-bin powers are computed in float64 from float64 spectra
and rounded once (relative 6e-8, i.e. < 1e-6 dB), which halves the product's time and memory."""


PSD_FLOOR = 1e-100
"""Floor of |D|^2 and |Rev|^2 in the DRR (the authors clip both to [1e-100, max])."""

DRR_EPS = 1e-8
"""Added to |Rev|^2 in the DRR's denominator (the authors' ``eps``)."""


def _power_into(spec: torch.Tensor, out: torch.Tensor) -> None:
    """|spec|^2 of complex ``(B, F, T)`` written into ``out (B, T, F)``."""
    re, im = spec.real.mT, spec.imag.mT
    torch.mul(re, re, out=out)
    out.addcmul_(im, im)


def _floored_power(spec: torch.Tensor) -> torch.Tensor:
    """max(|spec|^2, PSD_FLOOR) of complex ``(B, F, T)``, in its real dtype."""
    return torch.clamp(spec.real.square() + spec.imag.square(), min=PSD_FLOOR)


def _drr_into(ctx: "FeatureContext", out: torch.Tensor) -> None:
    """|D|^2 / (|Rev|^2 + DRR_EPS) per bin (both floored), computed in float64, into ``out (B, T, F)``."""
    ratio = _floored_power(ctx.direct_spec)
    ratio /= _floored_power(ctx.reverb_spec).add_(DRR_EPS)
    out.copy_(ratio.mT)


class FeatureContext:
    """A batch of padded stereo clips ``(B, 2, n)`` and the intermediates the channels share.

    ``num_frames``: feature frames kept from each centred STFT (5 x label frames). Everything is
    computed on ``audio.device``: spectra and WPE in float64 / complex128, the mel product in
    :data:`MEL_DTYPE`.
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
        self.basis = mel_basis(mel_cfg, stft_cfg.n_fft, sample_rate).to(self.audio.device)  # (M, F)
        self._mel: dict[str, torch.Tensor] = {}

    def db(self, power: torch.Tensor) -> torch.Tensor:
        """``10 log10(max(power, amin))``, same shape."""
        return power_to_db(power, self.mel_cfg.amin)

    @functools.cached_property
    def stereo_full(self) -> torch.Tensor:
        """Untrimmed STFTs of L and R (every centred frame): complex ``(B, 2, F, T + 1)``."""
        c = self.stft_cfg
        return stft(self.audio, c.n_fft, c.hop_length, c.win_length)

    @functools.cached_property
    def stereo_spec(self) -> torch.Tensor:
        """STFTs of L and R, trimmed to the feature frames: complex ``(B, 2, F, T)``."""
        return self.stereo_full[..., : self.num_frames]

    @functools.cached_property
    def mid_spec(self) -> torch.Tensor:
        """W = (L + R) / 2: complex ``(B, F, T)``."""
        return 0.5 * (self.stereo_spec[:, 0] + self.stereo_spec[:, 1])

    @functools.cached_property
    def mid_full(self) -> torch.Tensor:
        """Untrimmed W = (L + R) / 2, the WPE input: complex ``(B, F, T + 1)``."""
        return 0.5 * (self.stereo_full[:, 0] + self.stereo_full[:, 1])

    @functools.cached_property
    def direct_full(self) -> torch.Tensor:
        """Untrimmed WPE direct part D of W (statistics over all frames): complex ``(B, F, T + 1)``."""
        return wpe(self.mid_full, self.wpe_cfg).to(self.mid_full.dtype)

    @functools.cached_property
    def direct_spec(self) -> torch.Tensor:
        """D trimmed to the feature frames: complex ``(B, F, T)``."""
        return self.direct_full[..., : self.num_frames]

    def set_direct(self, wpe_out: torch.Tensor) -> None:
        """Use ``wpe_out`` = ``wpe(self.mid_full)`` computed elsewhere (e.g. with other clips in one
        batched call, whose per-clip results are the same) as this context's WPE output."""
        if wpe_out.shape != self.mid_full.shape:
            raise ValueError(f"WPE output shape {tuple(wpe_out.shape)} != mid_full {tuple(self.mid_full.shape)}")
        self.__dict__["direct_full"] = wpe_out.to(self.mid_full.dtype)  # the cached_property's slot

    @functools.cached_property
    def reverb_spec(self) -> torch.Tensor:
        """Reverberant part Rev of W as ``wpe.reverb`` defines it: complex ``(B, F, T)``.

        ``time_domain``: STFT(w - ISTFT(D)), the inverse STFT with the feature STFT's window, hop
        and centring and the clip's length, so that (as in the authors' code) only what WPE
        removed is left and the residual is analysed exactly like w. ``stft_domain``: W - D.
        """
        if self.wpe_cfg.reverb == "stft_domain":
            return self.mid_spec - self.direct_spec
        c = self.stft_cfg
        mid_wave = 0.5 * (self.audio[:, 0] + self.audio[:, 1])  # (B, n)
        direct_wave = istft(self.direct_full, c.n_fft, c.hop_length, mid_wave.shape[-1], c.win_length)
        return stft(mid_wave - direct_wave, c.n_fft, c.hop_length, c.win_length, self.num_frames)

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

    def prepare_mel(self, names: Iterable[str]) -> None:
        """Mel-filter the per-bin quantities ``names`` (keys of :data:`PER_BIN`) not yet done, all
        in one matrix product ``(B, Q, T, F) @ (F, M)`` in :data:`MEL_DTYPE`."""
        todo = [n for n in dict.fromkeys(names) if n not in self._mel]
        if not todo:
            return
        b, _, nf, t = self.stereo_spec.shape
        stacked = torch.empty(b, len(todo), t, nf, dtype=MEL_DTYPE, device=self.audio.device)
        for i, n in enumerate(todo):
            PER_BIN[n](self, stacked[:, i])
        out = torch.matmul(stacked, self.basis.T.to(MEL_DTYPE))  # (B, Q, T, M)
        for i, n in enumerate(todo):
            self._mel[n] = out[:, i]

    def mel(self, name: str) -> torch.Tensor:
        """Mel-filtered per-bin quantity ``name``: ``(B, T, M)``."""
        self.prepare_mel([name])
        return self._mel[name]


PER_BIN: dict[str, Callable[[FeatureContext, torch.Tensor], None]] = {
    "power_l": lambda c, out: _power_into(c.stereo_spec[:, 0], out),
    "power_r": lambda c, out: _power_into(c.stereo_spec[:, 1], out),
    "power_mid": lambda c, out: _power_into(c.mid_spec, out),
    "power_direct": lambda c, out: _power_into(c.direct_spec, out),
    "power_reverb": lambda c, out: _power_into(c.reverb_spec, out),
    "drr": _drr_into,
}
"""Per-bin quantities that channels use through the mel filterbank; each writes its values of
the batch into a ``(B, T, F)`` slice of the stacked input of the one mel product."""


ChannelFn = Callable[[FeatureContext], torch.Tensor]


@dataclass(frozen=True)
class ChannelSpec:
    """A registered feature channel."""

    name: str
    fn: ChannelFn
    needs_wpe: bool
    """True when computing it runs WPE (slow)."""
    mel_inputs: tuple[str, ...]
    """Keys of :data:`PER_BIN` it reads through :meth:`FeatureContext.mel`."""


CHANNELS: dict[str, ChannelSpec] = {}
"""Channel name -> spec; filled by :func:`register_channel`."""

CHANNEL_GROUPS: dict[str, tuple[str, ...]] = {"ipd": ("ipd_cos", "ipd_sin")}
"""Config shorthands that expand to several channels."""


def register_channel(
    name: str, needs_wpe: bool = False, mel_inputs: tuple[str, ...] = ()
) -> Callable[[ChannelFn], ChannelFn]:
    """Decorator registering a channel function under ``name``."""

    def deco(fn: ChannelFn) -> ChannelFn:
        if name in CHANNELS or name in CHANNEL_GROUPS:
            raise ValueError(f"feature channel '{name}' is already registered")
        unknown = [q for q in mel_inputs if q not in PER_BIN]
        if unknown:
            raise ValueError(f"feature channel '{name}': unknown per-bin quantities {unknown}")
        CHANNELS[name] = ChannelSpec(name, fn, needs_wpe, tuple(mel_inputs))
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


@register_channel("logmel_l", mel_inputs=("power_l",))
def logmel_l(ctx: FeatureContext) -> torch.Tensor:
    return ctx.db(ctx.mel("power_l"))


@register_channel("logmel_r", mel_inputs=("power_r",))
def logmel_r(ctx: FeatureContext) -> torch.Tensor:
    return ctx.db(ctx.mel("power_r"))


@register_channel("logmel_mid", mel_inputs=("power_mid",))
def logmel_mid(ctx: FeatureContext) -> torch.Tensor:
    return ctx.db(ctx.mel("power_mid"))


@register_channel("ild", mel_inputs=("power_l", "power_r"))
def ild(ctx: FeatureContext) -> torch.Tensor:
    return ctx.db(ctx.mel("power_l")) - ctx.db(ctx.mel("power_r"))


@register_channel("ivy", mel_inputs=("power_l", "power_r"))
def ivy(ctx: FeatureContext) -> torch.Tensor:
    # mel(Re(Y W*)) / mel((|W|^2 + |Y|^2) / 2) with W, Y = (L +- R) / 2 is exactly
    # mel(|L|^2 - |R|^2) / mel(|L|^2 + |R|^2): it reuses the two mel powers of L and R.
    left, right = ctx.mel("power_l"), ctx.mel("power_r")
    return (left - right) / torch.clamp(left + right, min=4 * ctx.mel_cfg.amin)


@register_channel("ipd_cos")
def ipd_cos(ctx: FeatureContext) -> torch.Tensor:
    return mel_filter(ctx.ipd_phasor.real, ctx.band_average)


@register_channel("ipd_sin")
def ipd_sin(ctx: FeatureContext) -> torch.Tensor:
    return mel_filter(ctx.ipd_phasor.imag, ctx.band_average)


@register_channel("direct_logmel", needs_wpe=True, mel_inputs=("power_direct",))
def direct_logmel(ctx: FeatureContext) -> torch.Tensor:
    return ctx.db(ctx.mel("power_direct"))


@register_channel("reverb_logmel", needs_wpe=True, mel_inputs=("power_reverb",))
def reverb_logmel(ctx: FeatureContext) -> torch.Tensor:
    return ctx.db(ctx.mel("power_reverb"))


@register_channel("drr_logmel", needs_wpe=True, mel_inputs=("drr",))
def drr_logmel(ctx: FeatureContext) -> torch.Tensor:
    return ctx.db(ctx.mel("drr"))


def compute_channels(ctx: FeatureContext, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Each named channel of the batch in ``ctx``: name -> ``(B, T, n_mels)`` float64.

    The mel inputs of all requested channels are filtered together in one matrix product.
    """
    resolved = resolve_channels(names)
    ctx.prepare_mel(q for n in resolved for q in CHANNELS[n].mel_inputs)
    return {n: CHANNELS[n].fn(ctx) for n in resolved}
