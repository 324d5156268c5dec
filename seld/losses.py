"""Training losses: the multi-ACCDOA ADPIT loss (spec section 2) and the embedding alignment losses
(``loss.embed`` of fine-tuning, :data:`EMBED_LOSSES`): MAE (the paper's), cosine, and a contrastive
InfoNCE over the batch's frames with a learned temperature.

ADPIT (DCASE2025 version): each dummy track's target is act * [x, y, dist]; the 13 track
permutations are A0A0A0, the 6 orderings of B0/B1 over 3 slots and the 6 orderings of C0C1C2.
Each permutation is padded with the other groups' canonical permutation (A0A0A0, B0B0B1, C0C1C2),
so an active class is never compared with zeros. The MSE over the 9 values (3 tracks x
[x, y, dist]) per (batch, frame, class) is minimised over the 13 permutations, then averaged.
Distance joins the permutation choice, as in the official DCASE2025 baseline (whose ADPIT loss
also compares [x, y, dist] per track when it picks the permutation).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from seld.accdoa import unflatten_output
from seld.constants import NUM_CLASSES, NUM_DUMMY_TRACKS, NUM_TARGET_VALUES, OUTPUT_DIM

# Dummy-track indices (A0=0, B0=1, B1=2, C0=3, C1=4, C2=5) that fill output tracks 0, 1, 2.
_A_PERMS: tuple[tuple[int, int, int], ...] = ((0, 0, 0),)
_B_PERMS: tuple[tuple[int, int, int], ...] = ((1, 1, 2), (1, 2, 1), (1, 2, 2), (2, 1, 1), (2, 1, 2), (2, 2, 1))
_C_PERMS: tuple[tuple[int, int, int], ...] = ((3, 4, 5), (3, 5, 4), (4, 3, 5), (4, 5, 3), (5, 3, 4), (5, 4, 3))


def _permutation_table() -> torch.Tensor:
    """``(13 permutations, 3 groups, 3 slots)`` dummy-track indices; target_p = sum over groups."""
    canonical = (_A_PERMS[0], _B_PERMS[0], _C_PERMS[0])
    table = []
    for group, perms in enumerate((_A_PERMS, _B_PERMS, _C_PERMS)):
        for perm in perms:
            table.append([perm if g == group else canonical[g] for g in range(3)])
    return torch.tensor(table, dtype=torch.long)


ADPIT_PERMUTATIONS: torch.Tensor = _permutation_table()
"""``(13, 3, 3)``: for each permutation, the dummy tracks of groups A, B, C filling the 3 output tracks."""


def _check_shapes(output: torch.Tensor, target: torch.Tensor) -> None:
    if output.ndim != 3 or output.shape[-1] != OUTPUT_DIM:
        raise ValueError(
            f"adpit_loss: output must be (batch, frames, {OUTPUT_DIM}), got {tuple(output.shape)}"
        )
    expected = (output.shape[0], output.shape[1], NUM_DUMMY_TRACKS, NUM_TARGET_VALUES, NUM_CLASSES)
    if tuple(target.shape) != expected:
        raise ValueError(
            f"adpit_loss: target must be (batch, frames, {NUM_DUMMY_TRACKS}, {NUM_TARGET_VALUES}, "
            f"{NUM_CLASSES}) = {expected} to match output {tuple(output.shape)}, got {tuple(target.shape)}"
        )


def adpit_permutation_losses(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the MSE of every permutation ``(batch, frames, 13 permutations, 13 classes)``.

    ``output``: activated ``(batch, frames, 117)``; ``target``: ``(batch, frames, 6, 4, 13)``.
    """
    _check_shapes(output, target)
    target = target.to(output.dtype)
    dummy = target[:, :, :, 0:1, :] * target[:, :, :, 1:4, :]  # (B, T, 6, 3 values, 13)
    table = ADPIT_PERMUTATIONS.to(output.device)
    # (B, T, 13 perms, 3 groups, 3 slots, 3 values, 13) summed over groups
    perm_targets = dummy[:, :, table].sum(dim=3)  # (B, T, 13, 3 tracks, 3 values, 13)
    tracks = unflatten_output(output)  # (B, T, 3 tracks, 3 values, 13)
    return ((tracks.unsqueeze(2) - perm_targets) ** 2).mean(dim=(3, 4))


def adpit_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the scalar multi-ACCDOA ADPIT loss of activated ``output`` ``(B, T, 117)`` for ``target`` ``(B, T, 6, 4, 13)``.

    Raises ValueError naming the expected and actual shapes.
    """
    return adpit_permutation_losses(output, target).min(dim=2).values.mean()


def mae_alignment_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return the scalar mean absolute error between embeddings ``a`` and ``b`` of equal shape ``(..., D)``."""
    if a.shape != b.shape:
        raise ValueError(f"mae_alignment_loss: shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return (a - b.to(a.dtype)).abs().mean()


EMBED_LOSSES: tuple[str, ...] = ("mae", "cosine", "infonce")
"""Alignment losses between the audio-driven embedding A and the ground-truth sentence's E_text (``loss.embed``)."""

INFONCE_DIRECTIONS: tuple[str, ...] = ("symmetric", "audio_to_text")
"""``loss.infonce_direction`` values."""

MAX_LOGIT_SCALE = 100.0
"""Upper clamp of the learned inverse temperature (CLIP's): the temperature never falls under 0.01."""


def cosine_alignment_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return the scalar mean of ``1 - cos(a, b)`` over the rows of embeddings of equal shape ``(..., D)``."""
    if a.shape != b.shape:
        raise ValueError(f"cosine_alignment_loss: shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return (1.0 - nn.functional.cosine_similarity(a, b.to(a.dtype), dim=-1)).mean()


def sentence_groups(sentences: Sequence[str]) -> tuple[list[str], torch.Tensor]:
    """Return (the distinct sentences in first-seen order, each sentence's index into them ``(N,)`` long)."""
    index: dict[str, int] = {}
    ids = [index.setdefault(s, len(index)) for s in sentences]
    return list(index), torch.tensor(ids, dtype=torch.long)


def infonce_alignment_loss(
    audio: torch.Tensor, text: torch.Tensor, target: torch.Tensor, logit_scale: torch.Tensor | float,
    direction: str = "symmetric",
) -> torch.Tensor:
    """Return the scalar contrastive InfoNCE between frames' embeddings and their sentences'.

    ``audio`` (N, D): the frames' A; ``text`` (U, D): the embeddings of the U *distinct* ground-truth
    sentences of the batch; ``target`` (N,): each frame's sentence in ``text`` (every sentence has
    at least one frame); ``logit_scale``: the inverse temperature. With ``L = logit_scale * cos(A_i, E_u)``
    (N, U):

    * audio -> text: ``mean_i [logsumexp_u L_iu - L_i,target(i)]``: cross-entropy over the distinct
      sentences, so frames with equal sentences share one candidate (never each other's negatives);
    * text -> audio: ``mean_u [logsumexp_i L_iu - logsumexp_{i: target(i)=u} L_iu]``: every frame of
      sentence u is a positive (multi-positive InfoNCE, positives summed inside the log);
    * ``symmetric``: the mean of both (CLIP's); ``audio_to_text``: the first alone.

    A batch whose frames all share one sentence gives 0 (nothing to contrast).
    """
    if direction not in INFONCE_DIRECTIONS:
        raise ValueError(f"infonce_alignment_loss: unknown direction {direction!r}; valid: {', '.join(INFONCE_DIRECTIONS)}")
    if audio.dim() != 2 or text.dim() != 2 or audio.shape[1] != text.shape[1] or target.shape != (audio.shape[0],):
        raise ValueError(
            f"infonce_alignment_loss: need audio (N, D), text (U, D), target (N,); got {tuple(audio.shape)}, "
            f"{tuple(text.shape)}, {tuple(target.shape)}"
        )
    target = target.to(audio.device)
    counts = torch.bincount(target, minlength=text.shape[0])
    if counts.numel() != text.shape[0] or bool((counts == 0).any()):
        raise ValueError(f"infonce_alignment_loss: every one of the {text.shape[0]} sentences needs a frame; counts {counts.tolist()}")
    a = nn.functional.normalize(audio, dim=-1)
    e = nn.functional.normalize(text.to(audio.dtype), dim=-1)
    logits = logit_scale * (a @ e.T)  # (N, U)
    a2t = (logits.logsumexp(dim=1) - logits.gather(1, target[:, None]).squeeze(1)).mean()
    if direction == "audio_to_text":
        return a2t
    positive = target[:, None] == torch.arange(text.shape[0], device=audio.device)[None, :]  # (N, U)
    t2a = (logits.logsumexp(dim=0) - logits.masked_fill(~positive, float("-inf")).logsumexp(dim=0)).mean()
    return 0.5 * (a2t + t2a)


class LearnedTemperature(nn.Module):
    """The contrastive loss's learned inverse temperature, CLIP-style: a log-scale parameter
    initialised at ``log(1 / temperature)``; ``forward()`` returns ``exp(log_scale)`` clamped to
    :data:`MAX_LOGIT_SCALE` (no gradient beyond the clamp)."""

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        if not 1.0 / MAX_LOGIT_SCALE <= temperature:
            raise ValueError(f"temperature must be >= {1.0 / MAX_LOGIT_SCALE}, got {temperature}")
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def forward(self) -> torch.Tensor:
        return self.log_scale.clamp(max=math.log(MAX_LOGIT_SCALE)).exp()

    @property
    def temperature(self) -> float:
        """The current temperature ``1 / scale``."""
        return float(1.0 / self.forward().detach())


class AdpitLoss(nn.Module):
    """``nn.Module`` form of :func:`adpit_loss`: ``forward(output (B, T, 117), target (B, T, 6, 4, 13)) -> scalar``."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return adpit_loss(output, target)
