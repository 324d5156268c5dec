"""Conformer block: macaron structure with half-step FFNs, conv-module receptive field, relative positional
attention (against a loop-written reference, shift invariance), config checks."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seld.config import from_dict
from seld.errors import ConfigError
import math

from seld.models.conformer import (
    ConformerBlock,
    ConformerConfig,
    ConformerStack,
    ConvModule,
    RelPositionMultiHeadAttention,
    relative_position_encoding,
)


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


def _reference_rel_attention(attn: RelPositionMultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """The relative positional attention written as loops over batch, head, query i and key j."""
    b, t, d = x.shape
    h, dh = attn.num_heads, attn.d_head
    q, k, v = attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)
    out = torch.zeros(b, t, d, dtype=x.dtype)
    for n in range(b):
        for head in range(h):
            sl = slice(head * dh, (head + 1) * dh)
            u, w = attn.pos_bias_u[head], attn.pos_bias_v[head]
            for i in range(t):
                scores = []
                for j in range(t):
                    rel = i - j
                    r = torch.tensor(
                        [math.sin(rel * 10000.0 ** (-(c - c % 2) / d)) if c % 2 == 0 else math.cos(rel * 10000.0 ** (-(c - c % 2) / d))
                         for c in range(d)],
                        dtype=x.dtype,
                    )
                    p = (attn.pos_proj.weight @ r)[sl]
                    scores.append((torch.dot(q[n, i, sl] + u, k[n, j, sl]) + torch.dot(q[n, i, sl] + w, p)) / math.sqrt(dh))
                weights = torch.softmax(torch.stack(scores), dim=0)
                out[n, i, sl] = sum(weights[j] * v[n, j, sl] for j in range(t))
    return attn.out_proj(out)


def test_relative_attention_matches_loop_reference():
    torch.manual_seed(4)
    attn = RelPositionMultiHeadAttention(8, 2, dropout=0.0).double().eval()
    with torch.no_grad():
        attn.pos_bias_u.normal_()
        attn.pos_bias_v.normal_()
        x = torch.randn(2, 5, 8, dtype=torch.float64)
        torch.testing.assert_close(attn(x), _reference_rel_attention(attn, x), atol=1e-6, rtol=1e-6)


def test_relative_position_encoding_rows():
    pe = relative_position_encoding(4, 6)
    assert pe.shape == (7, 6)
    torch.testing.assert_close(pe[3], torch.tensor([0.0, 1.0] * 3))  # row 3 = distance 0
    torch.testing.assert_close(pe[0, 0], torch.tensor(math.sin(3.0)))  # row 0 = distance +3
    torch.testing.assert_close(pe[6, 1], torch.tensor(math.cos(-3.0)))


def test_relative_attention_is_shift_invariant_inside_a_padded_sequence():
    """The same 10 frames placed at two offsets of a 40-frame sequence, the rest masked (padding):
    relative attention gives the same output at every real frame; absolute positions would not."""
    torch.manual_seed(5)
    attn = RelPositionMultiHeadAttention(16, 4, dropout=0.0).double().eval()
    content = torch.randn(1, 10, 16, dtype=torch.float64)
    outs = []
    for offset in (5, 22):
        x = torch.randn(1, 40, 16, dtype=torch.float64) * 3  # whatever the padding holds is never attended to
        x[:, offset : offset + 10] = content
        mask = torch.ones(1, 40, dtype=torch.bool)
        mask[:, offset : offset + 10] = False
        with torch.no_grad():
            outs.append(attn(x, key_padding_mask=mask)[:, offset : offset + 10])
    torch.testing.assert_close(outs[0], outs[1], atol=1e-10, rtol=0)
    # and the positions matter: reversing the content does not just reverse the output
    with torch.no_grad():
        fwd = attn(content)
        rev = attn(content.flip(1)).flip(1)
    assert (fwd - rev).abs().max() > 1e-3


def test_attention_option_plain_and_rel():
    assert ConformerConfig().attention == "rel"
    assert isinstance(ConformerBlock(16, ConformerConfig(num_heads=2)).attn, RelPositionMultiHeadAttention)
    plain = ConformerBlock(16, ConformerConfig(num_heads=2, attention="plain", dropout=0.0)).eval()
    assert isinstance(plain.attn, torch.nn.MultiheadAttention)
    x = torch.randn(2, 7, 16)
    # plain MHSA has no position information: the attention output is permutation-equivariant
    perm = torch.randperm(7)
    with torch.no_grad():
        torch.testing.assert_close(plain.attn(x, x, x)[0][:, perm], plain.attn(x[:, perm], x[:, perm], x[:, perm])[0])
    with pytest.raises(ConfigError, match="'attention' = 'abs' is not one of 'rel', 'plain'"):
        from_dict(ConformerConfig, {"attention": "abs"}, source="model.yaml")
    with pytest.raises(ConfigError, match="'rel' or 'plain'"):
        ConformerConfig(attention="abs")  # type: ignore[arg-type]
