"""Conformer block: macaron structure with half-step FFNs, conv-module receptive field, config checks."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seld.config import from_dict
from seld.errors import ConfigError
from seld.models.conformer import ConformerBlock, ConformerConfig, ConformerStack, ConvModule


def _zero_branch_outputs(block: ConformerBlock) -> None:
    """Zero the last layer of every residual branch so each branch adds exactly 0."""
    with torch.no_grad():
        for lin in (block.ffn1.net[4], block.ffn2.net[4], block.attn.out_proj):
            lin.weight.zero_()
            lin.bias.zero_()
        block.conv.pointwise_out.weight.zero_()
        block.conv.pointwise_out.bias.zero_()


def test_shape_and_default_sizes():
    cfg = ConformerConfig()
    assert (cfg.num_heads, cfg.ffn_mult, cfg.kernel_size, cfg.dropout) == (8, 2, 31, 0.1)
    block = ConformerBlock(512, cfg)
    assert block.ffn1.net[1].out_features == 1024  # FFN x2
    assert block.conv.depthwise.kernel_size == (31,) and block.conv.depthwise.groups == 512
    x = torch.randn(3, 7, 512)
    assert block.eval()(x).shape == (3, 7, 512)


def test_block_with_silent_branches_is_final_layer_norm():
    torch.manual_seed(0)
    block = ConformerBlock(16, ConformerConfig(num_heads=2, kernel_size=5, dropout=0.0)).eval()
    _zero_branch_outputs(block)
    x = torch.randn(2, 9, 16)
    expected = F.layer_norm(x, (16,), block.final_layer_norm.weight, block.final_layer_norm.bias)
    torch.testing.assert_close(block(x), expected)


def test_feed_forward_is_half_step():
    torch.manual_seed(1)
    block = ConformerBlock(16, ConformerConfig(num_heads=2, kernel_size=5, dropout=0.0)).eval()
    _zero_branch_outputs(block)
    with torch.no_grad():
        block.ffn1.net[4].weight.normal_()
    x = torch.randn(2, 9, 16)
    ffn = block.ffn1(x)
    assert ffn.abs().max() > 0.1
    expected = block.final_layer_norm(x + 0.5 * ffn)
    torch.testing.assert_close(block(x), expected)


def test_conv_module_receptive_field_is_kernel_size():
    torch.manual_seed(2)
    conv = ConvModule(8, kernel_size=5, dropout=0.0).eval()
    x = torch.randn(1, 20, 8)
    x2 = x.clone()
    x2[0, 10, 0] += 3.0  # one channel: a shift of all channels would vanish in the LayerNorm
    changed = (conv(x2) - conv(x)).abs().amax(dim=-1)[0] > 1e-6
    assert changed.nonzero().flatten().tolist() == [8, 9, 10, 11, 12]


def test_samples_in_a_batch_are_independent_in_eval():
    torch.manual_seed(3)
    stack = ConformerStack(16, ConformerConfig(num_heads=4, kernel_size=3), num_blocks=2).eval()
    a, b = torch.randn(1, 6, 16), torch.randn(1, 6, 16)
    both = stack(torch.cat([a, b]))
    torch.testing.assert_close(both[:1], stack(a))


def test_bad_configs_raise():
    with pytest.raises(ConfigError, match="odd"):
        ConformerConfig(kernel_size=4)
    with pytest.raises(ConfigError, match="divisible"):
        ConformerBlock(10, ConformerConfig(num_heads=4))
    with pytest.raises(ConfigError, match="kernel_size"):
        from_dict(ConformerConfig, {"kernel_size": 30}, source="model.yaml")
    with pytest.raises(ValueError, match=r"\(batch, seq, 16\)"):
        ConformerBlock(16, ConformerConfig(num_heads=2))(torch.randn(2, 5, 8))
