"""RCC encoder: shapes (B, 50, 4, d), parameter count from the spec's layer sizes, residual block maths."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seld.errors import CheckpointError, ConfigError
from seld.models import RCCConfig, RCCEncoder, count_parameters
from seld.models.rcc import ResidualConvBlock
from tests.models.tiny import D_MODEL, F_IN, T_IN, tiny_rcc


def conformer_params(d: int, ffn_mult: int, kernel: int) -> int:
    """Relative positional attention: q, v, out (with bias), k and pos projections (no bias), u and v (d each)."""
    ffn = 2 * d + (d * ffn_mult * d + ffn_mult * d) + (ffn_mult * d * d + d)
    attn = 2 * d + (3 * d * d + 2 * d) + (d * d + d) + d * d + 2 * d
    conv = 2 * d + (d * 2 * d + 2 * d) + (d * kernel + d) + 2 * d + (d * d + d)
    return 2 * ffn + attn + conv + 2 * d


def rcc_params(cfg: RCCConfig) -> int:
    """Parameter count from the spec: BN per (input channel, mel bin), 4 residual blocks, conformers."""
    total = 2 * cfg.in_channels * cfg.n_mels
    widths = [cfg.in_channels, *cfg.channels]
    for ci, co in zip(widths[:-1], widths[1:]):
        total += ci * co * 9 + 2 * co + co * co * 9 + 2 * co + ci * co + 2 * co
    c = cfg.conformer
    return total + cfg.num_conformers * conformer_params(cfg.out_dim, c.ffn_mult, c.kernel_size)


def test_default_rcc_matches_spec_shape_and_parameter_count():
    torch.manual_seed(0)
    cfg = RCCConfig(in_channels=1)
    assert cfg.channels == [64, 128, 256, 512] and cfg.pools == [(5, 2), (1, 2), (1, 2), (1, 2)]
    assert cfg.num_conformers == 2
    enc = RCCEncoder.from_config(cfg, d_model=512).eval()
    total, trainable = count_parameters(enc)
    print(f"default RCC source encoder (1 input channel): {total:,} parameters ({trainable:,} trainable)")
    assert total == trainable == rcc_params(cfg)
    with torch.no_grad():
        out = enc(torch.randn(1, 1, T_IN, F_IN))
    assert out.shape == (1, 50, 4, 512)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("in_channels", [1, 4, 2])
def test_tiny_rcc_shapes_and_count(in_channels):
    cfg = tiny_rcc(in_channels)
    enc = RCCEncoder(cfg).eval()
    assert count_parameters(enc) == (rcc_params(cfg), rcc_params(cfg))
    out = enc(torch.randn(3, in_channels, T_IN, F_IN))
    assert out.shape == (3, 50, 4, D_MODEL)


def test_residual_block_sums_branches_scaled_then_pools():
    torch.manual_seed(1)
    block = ResidualConvBlock(1, 1, (5, 2)).eval()
    with torch.no_grad():
        block.main[0].weight.zero_()  # main branch -> ReLU(BN(0)) = 0
        block.main[3].weight.zero_()
        block.residual[0].weight.fill_(1.0)  # residual branch -> identity (BN eval with fresh stats)
    x = torch.randn(2, 1, 20, 8)
    expected = F.avg_pool2d(x, (5, 2)) / math.sqrt(2.0)
    torch.testing.assert_close(block(x), expected, atol=1e-4, rtol=1e-4)  # BN eps 1e-5 scales by 1/sqrt(1+eps)


def test_conformers_run_over_time_per_frequency_row():
    torch.manual_seed(2)
    enc = RCCEncoder(tiny_rcc(2)).eval()
    x = torch.randn(2, 2, T_IN, F_IN)
    out = enc(x)
    with torch.no_grad():
        cnn = enc.blocks(enc.input_norm(x))  # (B, D, 50, 4)
        for row in range(4):
            seq = cnn[:, :, :, row].transpose(1, 2)  # (B, 50, D)
            torch.testing.assert_close(out[:, :, row, :], enc.conformers(seq))


def test_input_batch_norm_per_channel_and_mel_bin():
    torch.manual_seed(5)
    enc = RCCEncoder(tiny_rcc(4)).train()
    assert enc.input_norm.num_features == 4 * 64
    # every (channel, mel bin) gets its own offset and scale: after the norm each has mean 0, variance 1
    x = torch.randn(3, 4, T_IN, F_IN) * (torch.rand(1, 4, 1, F_IN) + 0.5) * 10 + torch.randn(1, 4, 1, F_IN) * 5
    y = enc.input_norm(x)
    torch.testing.assert_close(y.mean(dim=(0, 2)), torch.zeros(4, F_IN), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(dim=(0, 2), unbiased=False), torch.ones(4, F_IN), atol=1e-3, rtol=0)
    # running statistics are per (channel, mel bin) too
    torch.testing.assert_close(enc.input_norm.running_mean.view(4, F_IN), 0.1 * x.mean(dim=(0, 2)), atol=1e-4, rtol=1e-4)
    # learned affine of feature c * 64 + f acts on channel c, mel bin f only
    enc.eval()
    with torch.no_grad():
        y = enc.input_norm(x)
        enc.input_norm.bias[2 * 64 + 7] = 100.0
        diff = (enc.input_norm(x) - y).abs().amax(dim=(0, 2))  # (4, 64)
    assert float(diff[2, 7]) == pytest.approx(100.0) and float(diff.sum()) == pytest.approx(100.0)


def test_old_per_channel_input_norm_checkpoint_is_refused():
    enc = RCCEncoder(tiny_rcc(2))
    state = enc.state_dict()
    for key in ("weight", "bias", "running_mean", "running_var"):
        state[f"input_norm.{key}"] = torch.ones(2)  # the old layout: one statistic per input channel
    with pytest.raises(CheckpointError, match=r"old input BatchNorm with one statistic per input channel \(2\).*2 x 64 = 128.*retrain"):
        enc.load_state_dict(state)
    enc.load_state_dict(RCCEncoder(tiny_rcc(2)).state_dict())  # the current layout loads


def test_bad_input_and_config_raise():
    enc = RCCEncoder(tiny_rcc(4))
    with pytest.raises(ValueError, match=r"\(batch, 4, time, freq\).*\(2, 3, 250, 64\)"):
        enc(torch.randn(2, 3, T_IN, F_IN))
    with pytest.raises(ValueError, match="not divisible"):
        enc(torch.randn(2, 4, 248, 64))
    with pytest.raises(ConfigError, match="d_model = 512"):
        RCCEncoder.from_config(tiny_rcc(1), d_model=512)
    with pytest.raises(ConfigError, match="pools"):
        RCCConfig(channels=[8, 16], pools=[(5, 2)])
