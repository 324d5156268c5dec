"""The BEATs source encoder: the (5, 16) patch kernel, each frequency row its own sequence, layer
combination, the frozen transformer in eval mode, loading from a checkpoint, config errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seld.errors import CheckpointError, ConfigError
from seld.models import (
    BEATs,
    BEATsConfig,
    BeatsEncoderConfig,
    BeatsSourceEncoder,
    interpolate_patch_kernel,
    save_beats_checkpoint,
)
from tests.models.tiny import (
    F_IN,
    T_IN,
    randomise_gates,
    tiny_beats,
    tiny_beats_encoder,
    tiny_beats_model,
)


def test_interpolated_kernel_values_on_a_known_ramp():
    time_ramp = torch.arange(16.0).view(1, 1, 16, 1).expand(2, 1, 16, 16)
    out = interpolate_patch_kernel(time_ramp, (5, 16))
    assert out.shape == (2, 1, 5, 16)
    # bilinear, align_corners=False: source row of output row i is (i + 0.5) * 16 / 5 - 0.5
    expected = torch.tensor([(i + 0.5) * 16 / 5 - 0.5 for i in range(5)])
    torch.testing.assert_close(out[0, 0, :, 7], expected)
    freq_ramp = torch.arange(16.0).view(1, 1, 1, 16).expand(2, 1, 16, 16)
    torch.testing.assert_close(interpolate_patch_kernel(freq_ramp, (5, 16))[1, 0, 3], torch.arange(16.0))


def _tiny_encoder(seed: int = 8, **overrides) -> BeatsSourceEncoder:
    torch.manual_seed(seed)
    beats = BEATs(overrides.pop("beats", tiny_beats()))
    randomise_gates(beats)
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
    model = tiny_beats_model(seed=9)
    path = save_beats_checkpoint(model, tmp_path / "beats.pt")
    cfg = BeatsEncoderConfig(checkpoint=str(path), layers=[1, 2])  # architecture comes from the file
    with caplog.at_level("WARNING", logger="seld.models.beats_source"):
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
