from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest
import yaml

from seld.config import from_dict, load_config, save_config, to_dict
from seld.errors import ConfigError


@dataclass
class Inner:
    lr: float = 1e-4
    batch_size: int = 8
    names: list[str] = field(default_factory=lambda: ["a"])


@dataclass
class Outer:
    train: Inner = field(default_factory=Inner)
    kind: Literal["rcc", "beats"] = "rcc"
    checkpoint: Optional[str] = None
    flag: bool = False


def test_load_with_overrides_and_save_round_trip(tmp_path):
    p = tmp_path / "c.yml"
    p.write_text("train:\n  lr: 0.001\nkind: beats\n")
    cfg = load_config(p, Outer, ["train.batch_size=4", "checkpoint=/x.pt", "train.names=[a, b]"])
    assert cfg.train.lr == 0.001 and cfg.train.batch_size == 4 and cfg.kind == "beats"
    assert cfg.checkpoint == "/x.pt" and cfg.train.names == ["a", "b"]
    out = save_config(cfg, tmp_path / "out" / "resolved.yml")
    assert load_config(out, Outer) == cfg
    assert yaml.safe_load(out.read_text())["train"]["batch_size"] == 4


def test_unknown_key_names_file_and_key(tmp_path):
    p = tmp_path / "c.yml"
    p.write_text("train:\n  batchsize: 4\n")
    with pytest.raises(ConfigError, match=r"c\.yml.*unknown key 'train\.batchsize'"):
        load_config(p, Outer)


def test_wrong_types_rejected(tmp_path):
    p = tmp_path / "c.yml"
    for text, key in [("train:\n  batch_size: 4.5\n", "train.batch_size"), ("flag: 1\n", "flag"),
                      ("kind: cnn\n", "kind"), ("train:\n  lr: fast\n", "train.lr"), ("train: 3\n", "train")]:
        p.write_text(text)
        with pytest.raises(ConfigError, match=rf"c\.yml.*'{key}'"):
            load_config(p, Outer)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yml", Outer)
    p = tmp_path / "bad.yml"
    p.write_text("train: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p, Outer)
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(None, Outer, ["noequals"])


def test_int_accepted_as_float_and_defaults():
    cfg = from_dict(Outer, {"train": {"lr": 1}})
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert to_dict(from_dict(Outer, {})) == to_dict(Outer())
