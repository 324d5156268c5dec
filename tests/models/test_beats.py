"""BEATs: architecture facts (90,311,792 parameters), gated relative attention maths, checkpoint
round trip and key errors, the (5, 16) patch kernel, freezing and eval-mode of the transformer."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seld.errors import CheckpointError, ConfigError
from seld.models import (
    BEATs,
    BEATsConfig,
    BeatsEncoderConfig,
    BeatsSourceEncoder,
    count_parameters,
    interpolate_patch_kernel,
    load_beats_checkpoint,
    read_beats_checkpoint,
    save_beats_checkpoint,
)
from seld.models.beats import MultiheadAttention, TransformerSentenceEncoderLayer, WeightNormConv1d, relative_position_bucket
from tests.models.tiny import F_IN, T_IN, tiny_beats, tiny_beats_encoder


def _randomise_gates(model: BEATs) -> None:
    """Make the position bias and its gates far from their init so the tests exercise them."""
    with torch.no_grad():
        for layer in model.encoder.layers:
            attn = layer.self_attn
            attn.grep_a.uniform_(0.5, 1.5)
            attn.grep_linear.weight.normal_(0.0, 0.3)
            attn.relative_attention_bias.weight.normal_(0.0, 1.0)


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


def test_interpolated_kernel_values_on_a_known_ramp():
    time_ramp = torch.arange(16.0).view(1, 1, 16, 1).expand(2, 1, 16, 16)
    out = interpolate_patch_kernel(time_ramp, (5, 16))
    assert out.shape == (2, 1, 5, 16)
    # bilinear, align_corners=False: source row of output row i is (i + 0.5) * 16 / 5 - 0.5
    expected = torch.tensor([(i + 0.5) * 16 / 5 - 0.5 for i in range(5)])
    torch.testing.assert_close(out[0, 0, :, 7], expected)
    freq_ramp = torch.arange(16.0).view(1, 1, 1, 16).expand(2, 1, 16, 16)
    torch.testing.assert_close(interpolate_patch_kernel(freq_ramp, (5, 16))[1, 0, 3], torch.arange(16.0))


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


# --------------------------------------------------------------------------- checkpoints


def _tiny_model(seed: int = 7) -> BEATs:
    torch.manual_seed(seed)
    model = BEATs(tiny_beats())
    _randomise_gates(model)
    return model.eval()


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = _tiny_model()
    path = save_beats_checkpoint(model, tmp_path / "beats_tiny.pt")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) == {"cfg", "model"} and raw["cfg"]["encoder_layers"] == 2
    loaded = load_beats_checkpoint(path).eval()
    assert loaded.cfg == model.cfg
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    x = torch.randn(2, 1, 64, 32)
    assert torch.equal(model(x), loaded(x))
    # the relative position table is one shared parameter after loading too
    layers = loaded.encoder.layers
    assert layers[1].self_attn.relative_attention_bias is layers[0].self_attn.relative_attention_bias


def test_checkpoint_extras_predictor_dropped_and_unknown_cfg_keys_warned(tmp_path):
    model = _tiny_model()
    state = model.state_dict()
    state["predictor.weight"] = torch.randn(527, 32)
    state["predictor.bias"] = torch.randn(527)
    cfg = model.cfg.to_dict() | {"finetuned_model": True, "some_future_option": 3}
    path = tmp_path / "finetuned.pt"
    torch.save({"cfg": cfg, "model": state, "label_dict": {"/m/09x0r": 0}}, path)
    with pytest.warns(UserWarning, match="some_future_option"):
        loaded = load_beats_checkpoint(path)
    assert not any(k.startswith("predictor") for k in loaded.state_dict())
    x = torch.randn(1, 1, 32, 32)
    assert torch.equal(model(x), loaded.eval()(x))


def test_checkpoint_cfg_decides_the_architecture(tmp_path):
    model = _tiny_model()
    path = save_beats_checkpoint(model, tmp_path / "b.pt")
    cfg, state = read_beats_checkpoint(path)
    assert cfg.encoder_embed_dim == 32 and cfg.encoder_layers == 2 and len(state) == len(model.state_dict())


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    model = _tiny_model()
    state = model.state_dict()
    del state["encoder.layers.1.fc1.weight"]
    del state["post_extract_proj.bias"]
    state["encoder.layers.2.fc1.weight"] = torch.zeros(3)
    path = tmp_path / "broken.pt"
    torch.save({"cfg": model.cfg.to_dict(), "model": state}, path)
    with pytest.raises(CheckpointError) as err:
        load_beats_checkpoint(path)
    msg = str(err.value)
    assert "broken.pt" in msg
    assert "missing keys (2): encoder.layers.1.fc1.weight, post_extract_proj.bias" in msg
    assert "unexpected keys (1): encoder.layers.2.fc1.weight" in msg


def test_shape_mismatch_is_listed(tmp_path):
    model = _tiny_model()
    state = model.state_dict()
    state["encoder.layers.0.fc2.bias"] = torch.zeros(5)
    path = tmp_path / "shape.pt"
    torch.save({"cfg": model.cfg.to_dict(), "model": state}, path)
    with pytest.raises(CheckpointError, match=r"encoder.layers.0.fc2.bias: checkpoint \(5,\) vs model \(32,\)"):
        load_beats_checkpoint(path)


def test_bad_checkpoint_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found: .*nope.pt"):
        load_beats_checkpoint(tmp_path / "nope.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="expected a dict with keys 'cfg' and 'model'"):
        load_beats_checkpoint(tmp_path / "other.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_beats_checkpoint(tmp_path / "garbage.pt")
    torch.save({"cfg": {"deep_norm": True, "layer_norm_first": True}, "model": {}}, tmp_path / "badcfg.pt")
    with pytest.raises(CheckpointError, match="badcfg.pt.*deep_norm"):
        load_beats_checkpoint(tmp_path / "badcfg.pt")


RAN: list[str] = []
"""What unpickling :class:`_Payload` ran (its ``__setstate__`` is code the file makes run)."""


class _Payload:
    def __init__(self) -> None:
        self.note = "any object"

    def __setstate__(self, state: dict) -> None:
        RAN.append("code from the checkpoint file")
        self.__dict__.update(state)


def test_a_file_that_needs_unpickling_runs_nothing_unless_trusted(tmp_path):
    # docs/pretraining.md: no pickle, except the opt-in tokenizer.beats.trust_checkpoint, which runs the file's code
    model = _tiny_model()
    path = tmp_path / "pickled.pt"
    torch.save({"cfg": model.cfg.to_dict(), "model": model.state_dict(), "extra": _Payload()}, path)
    RAN.clear()
    with pytest.raises(CheckpointError, match=r"pickled\.pt: cannot be read with torch.load\(weights_only=True\).*"
                       r"tokenizer\.beats\.trust_checkpoint: true unpickles it fully, running any code it holds"):
        load_beats_checkpoint(path)
    assert RAN == []
    loaded = load_beats_checkpoint(path, trust_checkpoint=True)
    assert RAN == ["code from the checkpoint file"]
    assert torch.equal(loaded.state_dict()["post_extract_proj.bias"], model.state_dict()["post_extract_proj.bias"])


# --------------------------------------------------------------------------- source encoder


def _tiny_encoder(seed: int = 8, **overrides) -> BeatsSourceEncoder:
    torch.manual_seed(seed)
    beats = BEATs(overrides.pop("beats", tiny_beats()))
    _randomise_gates(beats)
    return BeatsSourceEncoder(tiny_beats_encoder(**overrides), d_model=16, beats=beats)


def test_source_encoder_shape_and_row_sequences():
    enc = _tiny_encoder(layer_combine="mean").eval()
    x = torch.randn(2, 1, T_IN, F_IN)
    out = enc(x)
    assert out.shape == (2, 50, 4, 16)
    with torch.no_grad():
        feats = enc.beats.patch_features(enc.input_norm(x))  # (2, 50, 4, 32)
        assert feats.shape == (2, 50, 4, 32)
        for row in range(4):
            l1, l2 = enc.beats.encoder(feats[:, :, row], [1, 2])
            torch.testing.assert_close(out[:, :, row], enc.out_proj((l1 + l2) / 2))


def test_weighted_layer_combination_starts_as_mean():
    enc = _tiny_encoder().eval()
    mean_enc = _tiny_encoder(layer_combine="mean").eval()
    mean_enc.load_state_dict({k: v for k, v in enc.state_dict().items() if k != "layer_weights"})
    x = torch.randn(1, 1, T_IN, F_IN)
    torch.testing.assert_close(enc(x), mean_enc(x))
    with torch.no_grad():
        enc.layer_weights.copy_(torch.tensor([0.0, 50.0]))  # ~ all weight on layer 2
        only_last = _tiny_encoder(layers=[2], layer_combine="mean").eval()
        only_last.load_state_dict({k: v for k, v in enc.state_dict().items() if k != "layer_weights"})
    torch.testing.assert_close(enc(x), only_last(x), atol=1e-5, rtol=1e-5)


def test_default_uses_the_last_layer_only_like_the_authors():
    assert BeatsEncoderConfig().layers == [12]
    enc = _tiny_encoder(layers=[2]).eval()  # the tiny BEATs has 2 layers: [2] is its last
    assert enc.layer_weights is None  # one layer: no mixing weights, whatever layer_combine says
    x = torch.randn(1, 1, T_IN, F_IN)
    with torch.no_grad():
        out = enc(x)
        feats = enc.beats.patch_features(enc.input_norm(x))  # (1, 50, 4, C)
        for row in range(feats.shape[2]):
            (last,) = enc.beats.encoder(feats[:, :, row], [2])
            torch.testing.assert_close(out[:, :, row], enc.out_proj(last))
        (first,) = enc.beats.encoder(feats[:, :, 0], [1])
        assert not torch.allclose(enc.out_proj(first), out[:, :, 0])


def test_frozen_transformer_gets_no_gradient_and_does_not_change():
    enc = _tiny_encoder()
    enc.train()
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable == {
        "input_norm.weight", "input_norm.bias", "layer_weights", "out_proj.weight", "out_proj.bias",
        "beats.patch_embedding.weight", "beats.patch_embedding.bias",
        "beats.post_extract_proj.weight", "beats.post_extract_proj.bias",
    }
    before = {n: p.detach().clone() for n, p in enc.named_parameters()}
    opt = torch.optim.Adam(enc.parameters(), lr=1e-2)
    out = enc(torch.randn(2, 1, T_IN, F_IN))
    (out**2).mean().backward()
    opt.step()
    for name, p in enc.named_parameters():
        if name in trainable:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
            assert not torch.equal(p, before[name]), name
        else:
            assert p.grad is None, name
            assert torch.equal(p, before[name]), name


def test_transformer_stays_in_eval_mode_after_train():
    # heavy layer drop and dropout would make two passes differ if the transformer were in training mode
    enc = _tiny_encoder(beats=tiny_beats(encoder_layerdrop=0.9, dropout=0.5, attention_dropout=0.5))
    enc.train()
    assert enc.training and enc.input_norm.training
    assert not any(m.training for m in enc.beats.modules())
    enc.input_norm.eval()  # batch statistics aside, the output must be deterministic
    x = torch.randn(1, 1, T_IN, F_IN)
    assert torch.equal(enc(x), enc(x))
    enc.eval()
    enc.train(True)
    assert not enc.beats.training


def test_train_layer_norm_option():
    enc = _tiny_encoder(train_layer_norm=True)
    assert enc.beats.layer_norm.weight.requires_grad
    assert not _tiny_encoder().beats.layer_norm.weight.requires_grad


def test_from_config_loads_checkpoint_and_interpolates_its_kernel(tmp_path, caplog):
    model = _tiny_model(seed=9)
    path = save_beats_checkpoint(model, tmp_path / "beats.pt")
    cfg = BeatsEncoderConfig(checkpoint=str(path), layers=[1, 2])  # architecture comes from the file
    with caplog.at_level("WARNING", logger="seld.models.beats"):
        enc = BeatsSourceEncoder.from_config(cfg, d_model=16)
    assert "encoder_layers: 12 -> 2" in caplog.text  # the config's `beats` section differs from the file
    assert enc.beats.cfg == model.cfg
    own = enc.beats.state_dict()
    for k, v in model.state_dict().items():
        if not k.startswith("patch_embedding"):
            assert torch.equal(own[k], v), k
    expected = F.interpolate(model.patch_embedding.weight, size=(5, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(own["patch_embedding.weight"], expected)
    with pytest.raises(CheckpointError, match="missing.pt"):
        BeatsSourceEncoder.from_config(BeatsEncoderConfig(checkpoint=str(tmp_path / "missing.pt")), d_model=16)


def test_encoder_config_errors():
    with pytest.raises(ConfigError, match="in_channels must be 1"):
        BeatsEncoderConfig(in_channels=2)
    with pytest.raises(ConfigError, match=r"layers \[3\] out of range 1..2"):
        _tiny_encoder(layers=[1, 3])
    with pytest.raises(ValueError, match=r"\(batch, 1, time, freq\)"):
        _tiny_encoder()(torch.randn(1, 2, T_IN, F_IN))
    with pytest.raises(ConfigError, match="activation_fn"):
        BEATsConfig(activation_fn="swish")
