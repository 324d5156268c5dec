"""Layout of the multi-ACCDOA model output (spec section 2): one place defines it.

A model predicts per frame 117 = 3 tracks x 3 values x 13 classes, flattened in that order
(track-major, then value [x, y, distance in metres], then class). ``unflatten_output`` gives
``(..., 3 tracks, 3 values, 13 classes)``. x and y go through tanh, distance through ReLU.
"""
from __future__ import annotations

import torch

from seld.constants import NUM_CLASSES, NUM_TRACKS, OUTPUT_DIM, OUTPUT_VALUES


def unflatten_output(output: torch.Tensor) -> torch.Tensor:
    """``(..., 117)`` -> ``(..., 3 tracks, 3 values [x, y, dist], 13 classes)``."""
    if output.shape[-1] != OUTPUT_DIM:
        raise ValueError(f"multi-ACCDOA output must end in {OUTPUT_DIM} values, got shape {tuple(output.shape)}")
    return output.reshape(*output.shape[:-1], NUM_TRACKS, OUTPUT_VALUES, NUM_CLASSES)


def flatten_output(tracks: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3, 13)`` -> ``(..., 117)``."""
    if tuple(tracks.shape[-3:]) != (NUM_TRACKS, OUTPUT_VALUES, NUM_CLASSES):
        raise ValueError(f"tracks must end in (3, 3, 13), got shape {tuple(tracks.shape)}")
    return tracks.reshape(*tracks.shape[:-3], OUTPUT_DIM)


def activate_output(raw: torch.Tensor) -> torch.Tensor:
    """Apply tanh to x and y and ReLU to distance of a raw ``(..., 117)`` head output."""
    t = unflatten_output(raw)
    xy = torch.tanh(t[..., :2, :])
    dist = torch.relu(t[..., 2:, :])
    return flatten_output(torch.cat([xy, dist], dim=-2))
