"""Tests of seld.losses: ADPIT permutation invariance, parity with a plain loop version, MAE alignment."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seld.accdoa import activate_output, unflatten_output
from seld.data.metadata import Event
from seld.data.targets import build_adpit_target
from seld.decoding import target_to_output
from seld.losses import ADPIT_PERMUTATIONS, AdpitLoss, adpit_loss, adpit_permutation_losses, mae_alignment_loss


def multi_source_target(frames: int = 4) -> torch.Tensor:
    """Target ``(frames, 6, 4, 13)`` with one-, two- and three-source classes and silent classes."""
    events = []
    for f in range(frames):
        events.append(Event(f, 0, 0, 30.0 + f, 150.0))  # A0
        events += [Event(f, 1, 0, -40.0, 200.0), Event(f, 1, 1, 50.0, 320.0)]  # B0, B1
        events += [Event(f, 2, s, az, d) for s, (az, d) in enumerate([(10, 100), (70, 250), (-70, 420)])]
    return torch.from_numpy(build_adpit_target(events, num_frames=frames))


def loop_adpit(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Spec section 2 written out: 13 concatenated permutations, padded, min per (b, t, c) by loops."""
    b_, t_, _ = output.shape
    act = target[:, :, :, 0:1, :]
    tracks = [act[:, :, i] * target[:, :, i, 1:4, :] for i in range(6)]  # each (B, T, 3, 13)
    a0, b0, b1, c0, c1, c2 = tracks

    def cat(*xs):
        return torch.stack(xs, dim=2)  # (B, T, 3 tracks, 3 values, 13)

    b_perms = [cat(b0, b0, b1), cat(b0, b1, b0), cat(b0, b1, b1), cat(b1, b0, b0), cat(b1, b0, b1), cat(b1, b1, b0)]
    c_perms = [cat(c0, c1, c2), cat(c0, c2, c1), cat(c1, c0, c2), cat(c1, c2, c0), cat(c2, c0, c1), cat(c2, c1, c0)]
    a_perm = cat(a0, a0, a0)
    perms = [a_perm + b_perms[0] + c_perms[0]]
    perms += [p + a_perm + c_perms[0] for p in b_perms]
    perms += [p + a_perm + b_perms[0] for p in c_perms]
    out = unflatten_output(output)
    total = 0.0
    for b in range(b_):
        for t in range(t_):
            for c in range(13):
                total += min(float(((out[b, t, :, :, c] - p[b, t, :, :, c]) ** 2).mean()) for p in perms)
    return torch.tensor(total / (b_ * t_ * 13), dtype=torch.float64)


def test_permutation_table_has_13_padded_permutations():
    assert tuple(ADPIT_PERMUTATIONS.shape) == (13, 3, 3)
    # A0A0A0, B0B0B1 and C0C1C2 padded with the other canonical ones are the same full target
    canonical = [0, 1, 7]
    assert all(torch.equal(ADPIT_PERMUTATIONS[i], ADPIT_PERMUTATIONS[0]) for i in canonical)
    assert len({tuple(p.reshape(-1).tolist()) for p in ADPIT_PERMUTATIONS}) == 11
    # each permutation differs from the canonical padding in exactly its own group
    assert ADPIT_PERMUTATIONS[0].tolist() == [[0, 0, 0], [1, 1, 2], [3, 4, 5]]
    assert ADPIT_PERMUTATIONS[5].tolist() == [[0, 0, 0], [2, 1, 2], [3, 4, 5]]
    assert ADPIT_PERMUTATIONS[12].tolist() == [[0, 0, 0], [1, 1, 2], [5, 4, 3]]


def test_zero_for_perfect_multi_track_prediction():
    target = multi_source_target()
    output = torch.from_numpy(target_to_output(target)).unsqueeze(0)
    loss = adpit_loss(output, target.unsqueeze(0))
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    # moving one predicted track away makes it positive
    output[0, 0, 5] += 0.3
    assert adpit_loss(output, target.unsqueeze(0)).item() > 1e-4


def test_matches_loop_version_on_random_outputs():
    torch.manual_seed(0)
    target = multi_source_target(frames=3).unsqueeze(0).repeat(2, 1, 1, 1, 1)
    output = activate_output(torch.randn(2, 3, 117, dtype=torch.float64))
    got = adpit_loss(output, target.double())
    want = loop_adpit(output, target.double())
    assert got.item() == pytest.approx(want.item(), rel=1e-12)


def test_unchanged_when_two_source_class_tracks_swapped():
    torch.manual_seed(1)
    target = multi_source_target().unsqueeze(0)
    output = activate_output(torch.randn(1, 4, 117))
    tracks = unflatten_output(output).clone()
    swapped = tracks.clone()
    swapped[..., 0, :, 1], swapped[..., 1, :, 1] = tracks[..., 1, :, 1], tracks[..., 0, :, 1]  # class 1 only
    a = adpit_loss(output, target)
    b = adpit_loss(swapped.reshape(1, 4, 117), target)
    assert not torch.equal(swapped, tracks)
    assert b.item() == pytest.approx(a.item(), rel=1e-6)
    # ...and when the two reference sources B0 and B1 are swapped in the target
    t_swapped = target.clone()
    t_swapped[:, :, 1], t_swapped[:, :, 2] = target[:, :, 2], target[:, :, 1]
    assert adpit_loss(output, t_swapped).item() == pytest.approx(a.item(), rel=1e-6)


def test_equals_plain_mse_for_single_source_frames():
    torch.manual_seed(2)
    events = [Event(f, c, 0, float(10 * c - 60 + f), 100.0 + 10 * c) for f in range(5) for c in (0, 3, 7, 12)]
    target = torch.from_numpy(build_adpit_target(events, num_frames=5)).unsqueeze(0)
    output = activate_output(torch.randn(1, 5, 117))
    a0 = target[:, :, 0, 0:1, :] * target[:, :, 0, 1:4, :]  # (1, 5, 3 values, 13)
    tiled = a0.unsqueeze(2).expand(-1, -1, 3, -1, -1).reshape(1, 5, 117)  # A0 in every track
    assert adpit_loss(output, target).item() == pytest.approx(F.mse_loss(output, tiled).item(), rel=1e-6)


def test_distance_joins_the_permutation_choice():
    # class 1 has B0 (0 deg, 1 m) and B1 (10 deg, 5 m). The prediction's directions fit B0 B1 B0 but its
    # distances fit B1 B0 B0: with distance in the joint MSE, B1 B0 B0 (permutation 4) must win.
    target = build_adpit_target([Event(0, 1, 0, 0.0, 100.0), Event(0, 1, 1, 10.0, 500.0)], num_frames=1)
    tracks = torch.zeros(1, 1, 3, 3, 13, dtype=torch.float64)
    for k, (az, dist) in enumerate([(1.0, 5.0), (9.0, 1.0), (0.0, 1.0)]):
        tracks[0, 0, k, :, 1] = torch.tensor([np.cos(np.deg2rad(az)), np.sin(np.deg2rad(az)), dist])
    output = tracks.reshape(1, 1, 117)
    losses = adpit_permutation_losses(output, torch.from_numpy(target).double().unsqueeze(0))[0, 0, :, 1]
    assert ADPIT_PERMUTATIONS[2, 1].tolist() == [1, 2, 1] and ADPIT_PERMUTATIONS[4, 1].tolist() == [2, 1, 1]
    xy_only = ((tracks[0, 0, :, :2, 1] - torch.tensor([[1.0, 0.0], [np.cos(np.deg2rad(10)), np.sin(np.deg2rad(10))],
                                                        [1.0, 0.0]], dtype=torch.float64)) ** 2).mean()
    assert xy_only < 1e-3  # B0 B1 B0 is the best fit by direction alone
    assert losses.argmin().item() == 4
    # joint 9-value MSE of B1 B0 B0: only direction errors of 1 and 9 degrees remain
    def sq(a, b):
        return (np.cos(np.deg2rad(a)) - np.cos(np.deg2rad(b))) ** 2 + (np.sin(np.deg2rad(a)) - np.sin(np.deg2rad(b))) ** 2

    expected = (sq(1, 10) + sq(9, 0) + sq(0, 0)) / 9
    assert losses[4].item() == pytest.approx(expected, rel=1e-6)  # float32 target
    loss = adpit_loss(output, torch.from_numpy(target).double().unsqueeze(0))
    assert loss.item() == pytest.approx(expected / 13, rel=1e-6)


def test_gradients_finite_and_nonzero():
    torch.manual_seed(3)
    raw = torch.randn(2, 4, 117, requires_grad=True)
    target = multi_source_target().unsqueeze(0).repeat(2, 1, 1, 1, 1)
    loss = AdpitLoss()(activate_output(raw), target)
    loss.backward()
    assert torch.isfinite(raw.grad).all()
    assert raw.grad.abs().sum() > 0


def test_shape_errors_name_expected_and_actual_shapes():
    target = multi_source_target().unsqueeze(0)
    with pytest.raises(ValueError, match=r"\(batch, frames, 117\), got \(1, 4, 116\)"):
        adpit_loss(torch.zeros(1, 4, 116), target)
    with pytest.raises(ValueError, match=r"\(1, 5, 6, 4, 13\).*got \(1, 4, 6, 4, 13\)"):
        adpit_loss(torch.zeros(1, 5, 117), target)


def test_mae_alignment_loss():
    torch.manual_seed(4)
    a, b = torch.randn(2, 50, 512), torch.randn(2, 50, 512)
    assert mae_alignment_loss(a, b).item() == pytest.approx(F.l1_loss(a, b).item())
    assert mae_alignment_loss(a, a).item() == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        mae_alignment_loss(a, b[:, :10])


def test_vectorised_loss_is_fast_for_a_training_batch():
    # a Python loop over frames or classes would take seconds at this size
    target = multi_source_target(frames=50).unsqueeze(0).repeat(8, 1, 1, 1, 1)
    output = activate_output(torch.randn(8, 50, 117))
    import time

    start = time.perf_counter()
    adpit_loss(output, target)
    assert time.perf_counter() - start < 1.0
    assert np.isfinite(adpit_loss(output, target).item())
