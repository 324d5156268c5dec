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


# --- numbers in exponent notation (issue 14) ---------------------------------------------------

SPELLINGS = [("1e-6", 1e-6), ("1E-6", 1e-6), ("3e-4", 3e-4), (".5", 0.5), ("1.0e-4", 1e-4),
             ("1_000", 1000.0), ("+2e3", 2000.0), ("-1e-2", -0.01)]


@pytest.mark.parametrize("text, value", SPELLINGS)
def test_float_field_accepts_numeric_spellings_from_file_and_override(tmp_path, text, value):
    p = tmp_path / "c.yml"
    p.write_text(f"train:\n  lr: {text}\n")
    assert isinstance(yaml.safe_load(p.read_text())["train"]["lr"], (int, float, str))
    from_file = load_config(p, Outer)
    from_override = load_config(None, Outer, [f"train.lr={text}"])
    for cfg in (from_file, from_override):
        assert isinstance(cfg.train.lr, float) and cfg.train.lr == value


def test_exponent_without_dot_is_a_string_to_pyyaml():
    # the reason for the float parsing: YAML 1.1 does not resolve these as floats
    assert yaml.safe_load("a: 1e-6\nb: 3E-4")["a"] == "1e-6"


def test_float_spellings_inside_lists_and_optionals():
    @dataclass
    class Spec:
        snr_db: list[float] = field(default_factory=lambda: [1.0])
        clip: Optional[float] = None

    cfg = load_config(None, Spec, ["snr_db=[1e1, 2E1, .5]", "clip=1e-3"])
    assert cfg.snr_db == [10.0, 20.0, 0.5] and cfg.clip == 1e-3


@pytest.mark.parametrize("text", ["4.5", "1e3", "1.0", "'8'"])
def test_int_field_rejects_floats_and_strings(tmp_path, text):
    with pytest.raises(ConfigError, match=r"'train\.batch_size' must be an integer"):
        load_config(None, Outer, [f"train.batch_size={text}"])
    assert load_config(None, Outer, ["train.batch_size=1_000"]).train.batch_size == 1000


@pytest.mark.parametrize("text", ["fast", "nan", "inf", "1e", "e5", "true", "[1e-6]"])
def test_non_numbers_stay_errors_naming_key_and_value(text):
    with pytest.raises(ConfigError) as exc:
        load_config(None, Outer, [f"train.lr={text}"])
    assert "'train.lr'" in str(exc.value) and "must be a number" in str(exc.value)
    assert text.strip("[]") in str(exc.value) or text == "true"


def test_resolved_config_with_exponent_floats_round_trips(tmp_path):
    p = tmp_path / "c.yml"
    p.write_text("train:\n  lr: 3e-4\n")
    cfg = load_config(p, Outer, ["train.batch_size=2"])
    out = save_config(cfg, tmp_path / "config.resolved.yml")
    raw = yaml.safe_load(out.read_text())
    assert isinstance(raw["train"]["lr"], float) and raw["train"]["lr"] == 3e-4  # a real float on disk
    assert load_config(out, Outer) == cfg


def test_parse_float_follows_python_float_for_numeric_strings():
    from seld.config import parse_float

    assert parse_float("1__0") is None and float("1_0") == parse_float("1_0") == 10.0
    assert parse_float(True) is None and parse_float(" 2.5e1 ") == 25.0
