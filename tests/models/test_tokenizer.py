"""Tokenizer: token shapes (B, 50, 3, E), which streams the multi-feature attention joins, projection
pooling, config errors, the pre-training model's output ranges, and a tiny overfit run."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seld.accdoa import activate_output, unflatten_output
from seld.config import dump_config, from_dict, load_config, to_dict
from seld.errors import ConfigError
from seld.models import (
    FusionConfig,
    ModelConfig,
    MultiFeatureAttention,
    RCCConfig,
    PretrainModel,
    Projection,
    Tokenizer,
    TokenizerConfig,
    build_tokenizer,
    count_parameters,
)
from tests.models.tiny import D_MODEL, EMBED_DIM, inputs, tiny_conformer, tiny_rcc, tiny_tokenizer


def _fusion_input_shapes(tok: Tokenizer) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    tok.fusion.blocks[0].register_forward_hook(lambda mod, args, out: shapes.append(tuple(args[0].shape)))
    return shapes


def test_rcc_tokenizer_tokens_and_fusion_over_12_tokens():
    torch.manual_seed(0)
    tok = build_tokenizer(tiny_tokenizer("rcc")).eval()
    assert tok.fused_streams == ["source", "doa", "dist"]
    shapes = _fusion_input_shapes(tok)
    tokens = tok(*inputs(2))
    assert tokens.shape == (2, 50, 3, EMBED_DIM)
    assert shapes == [(2 * 50, 12, D_MODEL)]  # sequence = one frame's 3 x 4 rows
    total, trainable = count_parameters(tok)
    assert total == trainable


def test_beats_tokenizer_tokens_fusion_over_8_tokens_and_frozen_part():
    torch.manual_seed(1)
    tok = build_tokenizer(tiny_tokenizer("beats")).eval()
    assert tok.fused_streams == ["doa", "dist"]
    assert tok.fusion.segment_embedding.shape == (2, D_MODEL)
    shapes = _fusion_input_shapes(tok)
    tokens = tok(*inputs(2))
    assert tokens.shape == (2, 50, 3, EMBED_DIM)
    assert shapes == [(2 * 50, 8, D_MODEL)]
    groups = tok.parameter_groups()
    assert groups["frozen"] and all(n.startswith("source_encoder.beats.") for n in groups["frozen"])
    assert not any("patch_embedding" in n or "post_extract_proj" in n for n in groups["frozen"])
    assert all(n.startswith("source_encoder.beats.encoder.") or n.startswith("source_encoder.beats.layer_norm.") for n in groups["frozen"])
    assert sum(p.numel() for p in tok.trainable_parameters()) == count_parameters(tok)[1] < count_parameters(tok)[0]


@pytest.mark.parametrize("source,source_reaches_doa", [("rcc", True), ("beats", False)])
def test_which_streams_attend_to_each_other(source, source_reaches_doa):
    torch.manual_seed(2)
    tok = build_tokenizer(tiny_tokenizer(source)).eval()
    src, doa, dist = inputs(1, seed=3)
    base = tok(src, doa, dist)
    moved = tok(src + torch.randn_like(src), doa, dist)
    assert (moved[:, :, 0] - base[:, :, 0]).abs().max() > 1e-4  # the source token always follows src
    doa_change = (moved[:, :, 1:] - base[:, :, 1:]).abs().max()
    assert (doa_change > 1e-4) == source_reaches_doa


def test_fuse_source_override():
    tok = build_tokenizer(tiny_tokenizer("beats", fuse_source=True))
    assert tok.fused_streams == ["source", "doa", "dist"]
    tok = build_tokenizer(tiny_tokenizer("rcc", fuse_source=False))
    assert tok.fused_streams == ["doa", "dist"]


def test_fusion_adds_segment_embeddings_and_splits_back():
    torch.manual_seed(4)
    fusion = MultiFeatureAttention(["doa", "dist"], 8, FusionConfig(num_blocks=0, conformer=tiny_conformer()))
    feats = {"source": torch.randn(2, 5, 4, 8), "doa": torch.randn(2, 5, 4, 8), "dist": torch.randn(2, 5, 4, 8)}
    out = fusion(feats)
    assert out["source"] is feats["source"]
    torch.testing.assert_close(out["doa"], feats["doa"] + fusion.segment_embedding[0])
    torch.testing.assert_close(out["dist"], feats["dist"] + fusion.segment_embedding[1])

    fusion = MultiFeatureAttention(["doa", "dist"], 8, FusionConfig(num_blocks=1, conformer=tiny_conformer())).eval()
    out = fusion(feats)
    joint = torch.cat([feats["doa"] + fusion.segment_embedding[0], feats["dist"] + fusion.segment_embedding[1]], dim=2)
    expected = fusion.blocks(joint.reshape(10, 8, 8)).reshape(2, 5, 8, 8)
    torch.testing.assert_close(out["doa"], expected[:, :, :4])
    torch.testing.assert_close(out["dist"], expected[:, :, 4:])


def test_projection_is_mlp_then_attentive_pooling():
    torch.manual_seed(5)
    proj = Projection(16, 12)
    x = torch.randn(2, 7, 4, 16)
    h = proj.mlp[2](F.gelu(proj.mlp[0](x)))
    w = torch.softmax(h @ proj.pool.score.weight[0] + proj.pool.score.bias, dim=-1)
    torch.testing.assert_close(proj(x), (w.unsqueeze(-1) * h).sum(dim=2))
    torch.testing.assert_close(proj.pool.weights(h).sum(-1), torch.ones(2, 7))
    with torch.no_grad():
        proj.pool.score.weight.zero_()  # equal scores -> plain mean over the 4 rows
    torch.testing.assert_close(proj(x), h.mean(dim=2))


def test_unknown_source_encoder_lists_valid_names(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown source_encoder 'cnn14'; valid names: beats, rcc"):
        TokenizerConfig(source_encoder="cnn14")
    path = tmp_path / "pretrain.yaml"
    path.write_text("tokenizer:\n  source_encoder: panns\n")
    with pytest.raises(ConfigError, match=r"pretrain.yaml.*'panns'.*valid names: beats, rcc"):
        load_config(path, ModelConfig)


def test_width_mismatch_is_a_config_error():
    cfg = tiny_tokenizer("rcc", doa=RCCConfig(in_channels=4, channels=[4, 8, 8, 32], conformer=tiny_conformer()))
    with pytest.raises(ConfigError, match=r"channels\[-1\] = 32 must equal the tokenizer d_model = 16"):
        build_tokenizer(cfg)


def test_config_round_trips_through_yaml(tmp_path):
    cfg = ModelConfig(tokenizer=tiny_tokenizer("beats"))
    path = tmp_path / "model.yaml"
    path.write_text(dump_config(cfg))
    again = load_config(path, ModelConfig)
    assert again == cfg
    assert again.tokenizer.rcc.pools == [(5, 2), (1, 2), (1, 2), (1, 2)]
    assert from_dict(ModelConfig, to_dict(cfg)) == cfg


def test_beats_checkpoint_not_read_when_load_pretrained_is_false(tmp_path):
    cfg = tiny_tokenizer("beats")
    cfg.beats.checkpoint = str(tmp_path / "absent.pt")
    tok = Tokenizer.from_config(cfg, load_pretrained=False)  # weights will come from a saved model
    assert tok.source_encoder.beats.cfg == cfg.beats.beats


def test_pretrain_model_output_ranges():
    torch.manual_seed(6)
    model = PretrainModel.from_config(ModelConfig(tokenizer=tiny_tokenizer("rcc")))
    with torch.no_grad():
        model.head.linear.weight.mul_(200.0)  # push outputs far out so the activations matter
    out = model(*inputs(2))
    assert out.shape == (2, 50, 117)
    tracks = unflatten_output(out)
    assert tracks[..., :2, :].abs().max() <= 1.0 and tracks[..., :2, :].abs().max() > 0.99
    assert tracks[..., 2, :].min() == 0.0 and tracks[..., 2, :].max() > 1.0


def test_count_parameters_counts_shared_once_and_frozen_apart():
    shared = torch.nn.Linear(3, 2)
    frozen = torch.nn.Linear(2, 2)
    frozen.requires_grad_(False)
    assert count_parameters(torch.nn.Sequential(shared, shared, frozen)) == (8 + 6, 8)


def test_tiny_pretrain_model_overfits_a_fixed_target():
    torch.manual_seed(7)
    model = PretrainModel(ModelConfig(tokenizer=tiny_tokenizer("rcc", rcc=tiny_rcc(1, 16), doa=tiny_rcc(4, 16),
                                                               dist=tiny_rcc(2, 16))))
    g = torch.Generator().manual_seed(8)
    # shorter maps (50 STFT frames x 16 mel -> 10 frames x 1 row) keep this fast (input BatchNorm sized for 16 mel)
    src, doa, dist = (torch.randn(2, c, 50, 16, generator=g) for c in (1, 4, 2))
    target = activate_output(torch.randn(2, 10, 117, generator=g))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = F.mse_loss(model(src, doa, dist), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0], losses
