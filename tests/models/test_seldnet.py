"""The DCASE2025 baseline CRNN: parameter count (official formula), output layout, trainability."""
from __future__ import annotations

import pytest
import torch

from seld.accdoa import unflatten_output
from seld.models.seldnet import SeldNet, SeldnetConfig, param_count_formula


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_count_matches_official_for_four_channels():
    model = SeldNet(SeldnetConfig(in_channels=4))
    assert _count(model) == param_count_formula(SeldnetConfig(in_channels=4)) == 735_413


@pytest.mark.parametrize("channels", [2, 7])
def test_parameter_count_follows_input_channels(channels):
    # Only the first conv depends on the input: 64 * 9 weights per extra channel.
    cfg = SeldnetConfig(in_channels=channels)
    assert _count(SeldNet(cfg)) == param_count_formula(cfg) == 735_413 + (channels - 4) * 64 * 9


def test_output_layout_and_activations():
    torch.manual_seed(0)
    model = SeldNet(SeldnetConfig(in_channels=4)).eval()
    out = model(torch.randn(3, 4, 250, 64) * 3)
    assert out.shape == (3, 50, 117)
    tracks = unflatten_output(out)  # (B, 50, 3 tracks, [x, y, dist], 13)
    xy, dist = tracks[..., :2, :], tracks[..., 2, :]
    assert xy.abs().max() < 1.0 and (xy < 0).any()  # tanh, signed
    assert dist.min() >= 0.0 and (dist == 0).any() and (dist > 0).any()  # ReLU


def test_frames_stay_independent_of_batch_and_wrong_input_is_rejected():
    torch.manual_seed(0)
    model = SeldNet(SeldnetConfig(in_channels=4)).eval()
    x = torch.randn(2, 4, 250, 64)
    assert torch.allclose(model(x)[1:], model(x[1:]), atol=1e-5)
    with pytest.raises(ValueError, match=r"\(batch, 4, frames, 64\)"):
        model(torch.randn(2, 2, 250, 64))


def test_learns_a_fixed_target():
    torch.manual_seed(0)
    model = SeldNet(SeldnetConfig(in_channels=2, dropout=0.0))
    x = torch.randn(4, 2, 50, 64)
    target = torch.rand(4, 10, 117) * 0.8
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(model(x), target)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.3 * first
