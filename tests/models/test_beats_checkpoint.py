"""The official BEATs checkpoint file: round trip, the AudioSet predictor dropped, the file's cfg
decides the architecture, key and shape errors listed, no pickle unless trusted."""
from __future__ import annotations

import pytest
import torch

from seld.errors import CheckpointError
from seld.models import (
    load_beats_checkpoint,
    read_beats_checkpoint,
    save_beats_checkpoint,
)
from tests.models.tiny import tiny_beats_model


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = tiny_beats_model()
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
    model = tiny_beats_model()
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
    model = tiny_beats_model()
    path = save_beats_checkpoint(model, tmp_path / "b.pt")
    cfg, state = read_beats_checkpoint(path)
    assert cfg.encoder_embed_dim == 32 and cfg.encoder_layers == 2 and len(state) == len(model.state_dict())


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    model = tiny_beats_model()
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
    model = tiny_beats_model()
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
    model = tiny_beats_model()
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
