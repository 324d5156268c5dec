"""Training losses: the multi-ACCDOA ADPIT loss (spec section 2) and the MAE embedding alignment.

ADPIT (DCASE2025 version): each dummy track's target is act * [x, y, dist]; the 13 track
permutations are A0A0A0, the 6 orderings of B0/B1 over 3 slots and the 6 orderings of C0C1C2.
Each permutation is padded with the other groups' canonical permutation (A0A0A0, B0B0B1, C0C1C2),
so an active class is never compared with zeros. The MSE over the 9 values (3 tracks x
[x, y, dist]) per (batch, frame, class) is minimised over the 13 permutations, then averaged.
Distance joins the permutation choice, as in the official DCASE2025 baseline (whose ADPIT loss
also compares [x, y, dist] per track when it picks the permutation).
"""
from __future__ import annotations

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


class AdpitLoss(nn.Module):
    """``nn.Module`` form of :func:`adpit_loss`: ``forward(output (B, T, 117), target (B, T, 6, 4, 13)) -> scalar``."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return adpit_loss(output, target)
