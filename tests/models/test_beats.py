"""BEATs transformer: architecture facts (90,311,792 parameters, the official key names), gated
relative attention, deep-norm post-LN layers, the weight-normed conv, layer-wise gradient decay."""
from __future__ import annotations

import math

import pytest
import torch

from seld.models import (
    BEATs,
    BEATsConfig,
    BeatsEncoderConfig,
    BeatsSourceEncoder,
    count_parameters,
)
from seld.models.beats import (
    MultiheadAttention,
    TransformerSentenceEncoderLayer,
    WeightNormConv1d,
    relative_position_bucket,
)
from tests.models.tiny import tiny_beats

# --------------------------------------------------------------------------- full-size facts


def test_full_size_beats_parameters_and_patch_kernel():
    cfg = BEATsConfig()
    assert (cfg.encoder_layers, cfg.encoder_embed_dim, cfg.encoder_ffn_embed_dim, cfg.encoder_attention_heads) == (12, 768, 3072, 12)
    assert (cfg.num_buckets, cfg.max_distance, cfg.conv_pos, cfg.conv_pos_groups) == (320, 800, 128, 16)
    assert cfg.deep_norm and cfg.gru_rel_pos and cfg.relative_position_embedding and not cfg.layer_norm_first
    with torch.device("meta"):  # shapes and counts only: no 360 MB of random numbers
        beats = BEATs(cfg)
        total, _ = count_parameters(beats)
        print(f"full BEATs (no predictor): {total:,} parameters")
        assert total == 90_311_792
        sd = beats.state_dict()
        assert sd["patch_embedding.weight"].shape == (512, 1, 16, 16) and "patch_embedding.bias" not in sd
        assert sd["encoder.pos_conv.0.weight_v"].shape == (768, 48, 128)
        assert sd["encoder.pos_conv.0.weight_g"].shape == (1, 1, 128)
        assert sd["encoder.layers.11.self_attn.relative_attention_bias.weight"].shape == (320, 12)
        assert sd["encoder.layers.0.self_attn.grep_a"].shape == (1, 12, 1, 1)
        assert sd["post_extract_proj.weight"].shape == (768, 512)
        assert len(sd) == 250

        enc = BeatsSourceEncoder(BeatsEncoderConfig(), d_model=512, beats=beats)
        kernel = enc.beats.patch_embedding
        assert kernel.weight.shape == (512, 1, 5, 16) and kernel.bias.shape == (512,)
        assert kernel.kernel_size == kernel.stride == (5, 16)
        total, trainable = count_parameters(enc)
    # patch (512*5*16 + 512) + post_extract_proj (512*768 + 768) + Linear(768, 512) + BN(1); last layer only: no weights
    expected_trainable = (512 * 80 + 512) + (512 * 768 + 768) + (768 * 512 + 512) + 2
    print(f"BEATs source encoder: {total:,} parameters ({trainable:,} trainable)")
    assert trainable == expected_trainable
    assert total == 90_311_792 - 512 * 256 + 512 * 80 + 512 + 768 * 512 + 512 + 2


# --------------------------------------------------------------------------- maths


@pytest.mark.parametrize("num_buckets,max_distance", [(320, 800), (32, 64)])
def test_relative_position_buckets_follow_the_formula(num_buckets, max_distance):
    rel = torch.arange(-2000, 2001)
    got = relative_position_bucket(rel, num_buckets, max_distance)
    half, exact = num_buckets // 2, num_buckets // 4
    for r in [0, 1, -1, 5, exact - 1, -(exact - 1), exact, -exact, 100, -100, 500, max_distance, -max_distance, 2000, -2000]:
        d = abs(r)
        b = d if d < exact else min(half - 1, exact + int(math.log(d / exact) / math.log(max_distance / exact) * (half - exact)))
        assert got[r + 2000].item() == b + (half if r > 0 else 0), r
    assert got.min() >= 0 and got.max() == num_buckets - 1


def test_gated_relative_attention_matches_naive_formula():
    torch.manual_seed(3)
    cfg = tiny_beats()
    attn = MultiheadAttention(cfg, has_relative_attention_bias=True).eval()
    with torch.no_grad():
        attn.grep_a.uniform_(0.5, 1.5)
        attn.grep_linear.weight.normal_(0.0, 0.5)
        attn.relative_attention_bias.weight.normal_()
    b, t, dim, h = 2, 11, cfg.encoder_embed_dim, cfg.encoder_attention_heads
    hd = dim // h
    x = torch.randn(b, t, dim)
    out, bias = attn(x)

    q, k, v = attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)
    expected = torch.zeros(b, t, dim)
    for bi in range(b):
        for hi in range(h):
            sl = slice(hi * hd, (hi + 1) * hd)
            for i in range(t):
                lin = attn.grep_linear(q[bi, i, sl])  # 8 values from the raw query of this head
                ga, gb = torch.sigmoid(lin[:4].sum()), torch.sigmoid(lin[4:].sum())
                gate = ga * (gb * attn.grep_a[0, hi, 0, 0] - 1.0) + 2.0
                logits = []
                for j in range(t):
                    bucket = relative_position_bucket(torch.tensor(j - i), cfg.num_buckets, cfg.max_distance)
                    logits.append(q[bi, i, sl] @ k[bi, j, sl] / math.sqrt(hd) + gate * attn.relative_attention_bias.weight[bucket, hi])
                p = torch.softmax(torch.stack(logits), dim=0)
                expected[bi, i, sl] = p @ v[bi, :, sl]
    torch.testing.assert_close(out, attn.out_proj(expected), atol=1e-5, rtol=1e-5)
    assert bias.shape == (h, t, t)


def test_deep_norm_post_ln_layer():
    torch.manual_seed(4)
    cfg = tiny_beats()
    layer = TransformerSentenceEncoderLayer(cfg, has_relative_attention_bias=True).eval()
    with torch.no_grad():  # silence attention and FFN: the layer is then LN2(alpha * LN1(alpha * x))
        for lin in (layer.self_attn.out_proj, layer.fc2):
            lin.weight.zero_()
            lin.bias.zero_()
    alpha = (2 * cfg.encoder_layers) ** 0.25
    x = torch.randn(2, 7, cfg.encoder_embed_dim)
    y, _ = layer(x)
    expected = layer.final_layer_norm(alpha * layer.self_attn_layer_norm(alpha * x))
    torch.testing.assert_close(y, expected)


def test_weight_norm_conv_matches_torch_weight_norm():
    torch.manual_seed(5)
    conv = WeightNormConv1d(32, kernel_size=16, groups=4)
    with torch.no_grad():
        conv.weight_g.uniform_(0.5, 2.0)
        conv.bias.normal_()
    ref = torch.nn.Conv1d(32, 32, 16, padding=8, groups=4)
    ref = torch.nn.utils.parametrizations.weight_norm(ref, name="weight", dim=2)
    with torch.no_grad():
        ref.parametrizations.weight.original0.copy_(conv.weight_g)
        ref.parametrizations.weight.original1.copy_(conv.weight_v)
        ref.bias.copy_(conv.bias)
    x = torch.randn(2, 32, 30)
    torch.testing.assert_close(conv(x), ref(x))


def test_layer_wise_gradient_decay_scales_input_gradient_in_training_only():
    torch.manual_seed(6)
    grads = {}
    for ratio in (1.0, 0.5):
        torch.manual_seed(6)
        model = BEATs(tiny_beats(layer_wise_gradient_decay_ratio=ratio, encoder_layerdrop=0.0))
        x = torch.randn(3, 9, 32, requires_grad=True)
        model.encoder.train()
        model.encoder(x)[-1].sum().backward()
        grads[ratio] = x.grad.clone()
        x.grad = None
        model.encoder.eval()
        model.encoder(x)[-1].sum().backward()
        grads[(ratio, "eval")] = x.grad.clone()
    torch.testing.assert_close(grads[0.5], grads[1.0] * 0.5**2)  # two layers
    torch.testing.assert_close(grads[(0.5, "eval")], grads[(1.0, "eval")])
