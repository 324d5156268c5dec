"""RCC encoder: shapes (B, 50, 4, d), parameter count from the spec's layer sizes, residual block maths."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seld.errors import ConfigError
from seld.models import RCCConfig, RCCEncoder, count_parameters
from seld.models.rcc import ResidualConvBlock
from tests.models.tiny import D_MODEL, F_IN, T_IN, tiny_rcc


def conformer_params(d: int, ffn_mult: int, kernel: int) -> int:
    ffn = 2 * d + (d * ffn_mult * d + ffn_mult * d) + (ffn_mult * d * d + d)
    attn = 2 * d + (3 * d * d + 3 * d) + (d * d + d)
    conv = 2 * d + (d * 2 * d + 2 * d) + (d * kernel + d) + 2 * d + (d * d + d)
    return 2 * ffn + attn + conv + 2 * d


def rcc_params(cfg: RCCConfig) -> int:
    """Parameter count from the spec: BN per input channel, 4 residual blocks, conformers."""
    total = 2 * cfg.in_channels
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


def test_input_batch_norm_per_channel():
    enc = RCCEncoder(tiny_rcc(4))
    assert isinstance(enc.input_norm, torch.nn.BatchNorm2d) and enc.input_norm.num_features == 4


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
