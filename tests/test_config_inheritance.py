"""Config inheritance (``base:``): the shipped configs resolve exactly as before they became overlays,
the merge rules, the errors that name the file, ``--print-config`` and the resolved record."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from seld.config import BASE_KEY, load_config, read_config_file, read_yaml, save_config, to_dict
from seld.errors import ConfigError
from tests.make_resolved_configs import reference_name

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).resolve().parent / "resolved_configs"
REFERENCES = sorted(REFERENCE.glob("*.json"))

DOCUMENTED_DEFAULTS = {"features/config.yml", "configs/synth.yml"}
"""Shipped files that write every key at its default on purpose: each explains every key (and
tests/data/test_synth.py checks that synth.yml equals the defaults)."""

VARIANT_KEYS = {("model", "tokenizer", "source_encoder"), ("model", "text_encoder", "kind"), ("model", "head", "type")}
"""Keys that name a model's variant (the parts of a config's name): written even at their default."""


def _schemas() -> dict[str, type]:
    """The schema classes named in the reference files."""
    from seld.sim.scenes import SynthConfig
    from seld.features.config import FeatureConfig
    from seld.tasks.baseline import BaselineConfig
    from seld.tasks.finetune import FinetuneConfig
    from seld.tasks.pretrain import PretrainConfig

    return {"FinetuneConfig": FinetuneConfig, "PretrainConfig": PretrainConfig, "BaselineConfig": BaselineConfig,
            "FeatureConfig": FeatureConfig, "SynthConfig": SynthConfig}


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Every dotted key where ``new`` differs from ``old`` in value or type (``1`` is not ``1.0``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{where}.{key}" if where else str(key)
            if key not in new:
                out.append(f"{sub}: was {old[key]!r}, now missing")
            elif key not in old:
                out.append(f"{sub}: new key, {new[key]!r}")
            else:
                out += _differences(old[key], new[key], sub)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in _differences(a, b, f"{where}[{i}]")]
    if type(old) is not type(new) or old != new:
        return [f"{where or '<root>'}: was {old!r}, now {new!r}"]
    return []


# --- every shipped config resolves to the dataclass it resolved to before (commit ac3216e) ---------

def test_the_reference_covers_every_shipped_stage_config():
    configs = {json.loads(p.read_text())["config"] for p in REFERENCES}
    paper = {f"configs/{e}-{t}-{h}.yml" for e in ("RCC", "BEATs") for t in ("CLIP", "BERT") for h in ("GREP", "TREP")}
    stage = {"finetuning/config.yml", "pretraining/config.yml", "features/config.yml", "configs/pretrain_rcc.yml",
             "configs/pretrain_beats.yml", "configs/baseline_seldnet.yml", "configs/synth.yml"}
    folders = {f"configs/{d}/{n}.yml" for d in ("quickstart", "benchmark") for n in ("features", "pretrain")}
    folders |= {"configs/quickstart/finetune.yml", "configs/benchmark/baseline.yml",
                "configs/benchmark/finetune_grep.yml", "configs/benchmark/finetune_trep.yml"}
    assert configs == paper | stage | folders  # the 23 YAML files of ac3216e
    assert {reference_name(c) for c in configs} == {p.name for p in REFERENCES}


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda p: json.loads(p.read_text())["config"])
def test_shipped_config_resolves_as_before(reference):
    stored = json.loads(reference.read_text())
    cfg = load_config(ROOT / stored["config"], _schemas()[stored["schema"]])
    diffs = _differences(stored["resolved"], json.loads(json.dumps(to_dict(cfg))))
    assert not diffs, f"{stored['config']} resolves differently from ac3216e:\n" + "\n".join(diffs)


def _shipped_files() -> dict[str, str]:
    """Shipped config path -> schema name, the bases included (a base takes the schema of a config naming it)."""
    files: dict[str, str] = {}
    for ref in REFERENCES:
        stored = json.loads(ref.read_text())
        todo = [ROOT / stored["config"]]
        while todo:
            path = todo.pop()
            name = path.resolve().relative_to(ROOT).as_posix()
            if name in files:
                continue
            files[name] = stored["schema"]
            bases = read_yaml(path).get(BASE_KEY) or []
            todo += [path.parent / n for n in ([bases] if isinstance(bases, str) else bases)]
    return files


def _without(data: dict[str, Any], key: tuple[str, ...]) -> dict[str, Any]:
    out = json.loads(json.dumps(data))  # a plain copy: YAML anchors no longer shared
    node = out
    for k in key[:-1]:
        node = node[k]
    del node[key[-1]]
    return out


def _leaf_keys(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    keys = []
    for k, v in data.items():
        keys += _leaf_keys(v, (*prefix, k)) if isinstance(v, dict) and v else [(*prefix, k)]
    return keys


@pytest.mark.parametrize("path, schema", sorted(_shipped_files().items()))
def test_shipped_configs_say_only_what_differs(path, schema, tmp_path):
    """Every key a shipped file sets changes its resolved config: none restates a default or its base."""
    if path in DOCUMENTED_DEFAULTS:
        pytest.skip("documents every default on purpose")
    source = ROOT / path
    own = read_yaml(source)
    names = own.pop(BASE_KEY, None) or []
    bases = [str((source.parent / n).resolve()) for n in ([names] if isinstance(names, str) else names)]
    cls = _schemas()[schema]
    full = to_dict(load_config(source, cls))
    restated = []
    for key in _leaf_keys(own):
        if key in VARIANT_KEYS:
            continue
        trial = tmp_path / "trial.yml"
        trial.write_text(yaml.safe_dump({**_without(own, key), BASE_KEY: bases}))
        try:
            same = to_dict(load_config(trial, cls)) == full
        except ConfigError:  # the config needs the key (e.g. frozen_tokenizer_eval needs tokenizer_lr 0)
            same = False
        if same:
            restated.append(".".join(key))
    assert not restated, f"{path} restates its base or the schema defaults: {restated}"


def test_the_benchmark_config_folder_is_self_contained(tmp_path):
    """synthetic_benchmark.py --configs DIR reads a copy of configs/benchmark: its bases travel with it."""
    import shutil

    from seld.tasks.baseline import BaselineConfig
    from seld.tasks.finetune import FinetuneConfig
    from seld.tasks.pretrain import PretrainConfig

    copy = tmp_path / "configs"
    shutil.copytree(ROOT / "configs" / "benchmark", copy)
    for name, cls in [("baseline", BaselineConfig), ("pretrain", PretrainConfig), ("finetune_grep", FinetuneConfig),
                      ("finetune_trep", FinetuneConfig)]:
        assert load_config(copy / f"{name}.yml", cls) == load_config(ROOT / "configs" / "benchmark" / f"{name}.yml", cls)


def test_paper_configs_are_short_overlays_of_one_base():
    for enc in ("RCC", "BEATs"):
        for text in ("CLIP", "BERT"):
            for head in ("GREP", "TREP"):
                path = ROOT / "configs" / f"{enc}-{text}-{head}.yml"
                assert len(path.read_text().splitlines()) <= 20
                assert read_yaml(path)[BASE_KEY] == "base/finetune.yml"
    for name in ("pretrain_rcc", "pretrain_beats"):
        assert read_yaml(ROOT / "configs" / f"{name}.yml")[BASE_KEY] == "base/pretrain.yml"


# --- the merge --------------------------------------------------------------------------------------

@dataclass
class Optim:
    lr: float = 1e-4
    batch_size: int = 8
    milestones: list[int] = field(default_factory=list)


@dataclass
class Run:
    train: Optim = field(default_factory=Optim)
    kind: str = "rcc"
    checkpoint: Optional[str] = None
    out_dir: str = "runs/x"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _refused(config: Path, match: str, overrides: Optional[list[str]] = None) -> str:
    """The ConfigError that loading ``config`` (with ``overrides``) raises, which must match ``match``."""
    with pytest.raises(ConfigError, match=match) as exc:
        load_config(config, Run, overrides)
    return str(exc.value)


def test_overlay_merges_mappings_and_replaces_lists_and_scalars(tmp_path):
    _write(tmp_path / "base" / "grand.yml", "train: {lr: 0.5, batch_size: 2}\ncheckpoint: ckpt.pt\n")
    _write(tmp_path / "base" / "recipe.yml",
           "base: grand.yml\ntrain: {lr: 1.0e-3, milestones: [10, 20, 30]}\nkind: beats\n")
    top = _write(tmp_path / "run.yml",
                 "base: base/recipe.yml\ntrain: {milestones: [5]}\ncheckpoint: null\nout_dir: runs/top\n")
    cfg = load_config(top, Run)
    # lr from the recipe over its grand base, batch_size from the grand base, the list replaced whole,
    # null replaces the base's value, the rest from the top file
    assert cfg == Run(train=Optim(lr=1e-3, batch_size=2, milestones=[5]), kind="beats", checkpoint=None,
                      out_dir="runs/top")
    assert read_config_file(top) == {"train": {"lr": 1e-3, "batch_size": 2, "milestones": [5]}, "checkpoint": None,
                                     "kind": "beats", "out_dir": "runs/top"}
    # overrides come last, over the top file and every base
    assert load_config(top, Run, ["train.batch_size=16", "kind=rcc"]).train.batch_size == 16


def test_a_list_of_bases_applies_left_to_right(tmp_path):
    _write(tmp_path / "a.yml", "train: {lr: 0.1, batch_size: 3}\n")
    _write(tmp_path / "b.yml", "train: {lr: 0.2}\n")
    cfg = load_config(_write(tmp_path / "c.yml", "base: [a.yml, b.yml]\n"), Run)
    assert (cfg.train.lr, cfg.train.batch_size) == (0.2, 3)
    cfg = load_config(_write(tmp_path / "d.yml", "base: [b.yml, a.yml]\n"), Run)
    assert (cfg.train.lr, cfg.train.batch_size) == (0.1, 3)


def test_a_shipped_overlay_takes_its_recipe_from_the_base():
    from seld.tasks.finetune import FinetuneConfig

    cfg = load_config(ROOT / "configs" / "RCC-CLIP-TREP.yml", FinetuneConfig)
    assert (cfg.model.head.type, cfg.train.out_dir) == ("trep", "runs/RCC-CLIP-TREP")  # the overlay
    t = cfg.train
    assert (t.epochs, t.weight_decay, t.grad_clip_norm, t.num_workers) == (50, 1e-4, 5.0, 4)
    assert (cfg.train.scheduler.name, cfg.train.scheduler.milestones) == ("multistep", [10, 20, 30, 40, 45])  # the base
    assert (cfg.train.batch_size, cfg.tokenizer_lr, cfg.data.val_splits) == (8, 1e-6, ["dev-test-sony", "dev-test-tau"])


def test_an_override_of_an_anchored_section_changes_that_section_only():
    from seld.tasks.pretrain import PretrainConfig

    path = ROOT / "configs" / "benchmark" / "pretrain.yml"  # doa: *encoder, dist: *encoder
    tok = load_config(path, PretrainConfig, ["model.tokenizer.doa.num_conformers=3"]).model.tokenizer
    assert (tok.rcc.num_conformers, tok.doa.num_conformers, tok.dist.num_conformers) == (1, 3, 1)
    assert tok.doa.channels == tok.dist.channels == [8, 16, 32, 64]


# --- errors name the file -------------------------------------------------------------------------

def test_an_unknown_key_names_the_file_it_came_from(tmp_path):
    _write(tmp_path / "base.yml", "train: {lr: 0.1}\n")
    top = _write(tmp_path / "top.yml", "base: base.yml\ntrain: {batchsize: 4}\n")
    assert "base.yml" not in _refused(top, r"top\.yml: unknown key 'train\.batchsize'")
    _write(tmp_path / "base.yml", "train: {lr: 0.1, warmup: 3}\n")
    top = _write(tmp_path / "top.yml", "base: base.yml\ntrain: {lr: 0.2}\n")
    assert "top.yml" not in _refused(top, r"base\.yml: unknown key 'train\.warmup'")


def test_a_wrong_type_names_the_file_that_set_it(tmp_path):
    _write(tmp_path / "base.yml", "train: {batch_size: 4.5}\n")
    top = _write(tmp_path / "top.yml", "base: base.yml\nkind: beats\n")
    _refused(top, r"base\.yml: key 'train\.batch_size' must be an integer, got 4\.5")
    # an override of the same key names the overrides instead
    _refused(_write(tmp_path / "ok.yml", "base: base.yml\n"), r"ok\.yml \(\+ overrides\): key 'train\.batch_size' must be "
             "an integer", ["train.batch_size=2.5"])
    _write(tmp_path / "base.yml", "train: {batch_size: 4}\n")
    _refused(top, r"top\.yml \(\+ overrides\): key 'train\.lr'", ["train.lr=fast"])


def test_a_missing_base_names_the_file_and_the_path(tmp_path):
    _refused(_write(tmp_path / "top.yml", "base: recipes/none.yml\n"),
             r"top\.yml: base 'recipes/none\.yml' not found: .*recipes/none\.yml")
    _write(tmp_path / "mid.yml", "base: gone.yml\n")
    _refused(_write(tmp_path / "top2.yml", "base: mid.yml\n"), r"mid\.yml: base 'gone\.yml' not found")


def test_a_cycle_of_bases_names_the_chain(tmp_path):
    _write(tmp_path / "a.yml", "base: b.yml\n")
    _write(tmp_path / "b.yml", "base: c.yml\n")
    _write(tmp_path / "c.yml", "base: a.yml\n")
    msg = _refused(tmp_path / "a.yml", "cycle of bases")
    assert msg.startswith(f"{tmp_path / 'c.yml'}: cycle of bases: ")
    assert msg.endswith(" -> ".join(str(tmp_path / n) for n in ("a.yml", "b.yml", "c.yml", "a.yml")))
    _refused(_write(tmp_path / "self.yml", "base: self.yml\n"), r"self\.yml: cycle of bases: .*self\.yml -> .*self\.yml$")


def test_a_base_that_is_not_a_mapping_is_named_with_the_file_naming_it(tmp_path):
    _write(tmp_path / "list.yml", "- lr: 0.1\n")
    _refused(_write(tmp_path / "top.yml", "base: list.yml\n"),
             r"list\.yml: top level must be a mapping, got list \(a 'base' of .*top\.yml")
    _refused(_write(tmp_path / "top.yml", "base: 3\n"), r"top\.yml: 'base' must be a file name or a list of file names, got 3")


def test_base_is_a_top_level_key_only(tmp_path):
    _refused(_write(tmp_path / "c.yml", "train: {base: a.yml}\n"), r"c\.yml: unknown key 'train\.base'")


# --- the resolved result: --print-config and config.resolved.yml ---------------------------------

def test_print_config_prints_the_resolved_overlay(capsys):
    from seld.cli import main

    config = "configs/RCC-CLIP-GREP.yml"
    assert main(["finetune", "--config", str(ROOT / config), "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    stored = json.loads((REFERENCE / reference_name(config)).read_text())["resolved"]
    assert not _differences(stored, printed)  # every key, as ac3216e resolved the full file
    assert printed["train"]["epochs"] == 50 and printed["train"]["batch_size"] == 8  # from the base / a default
    assert BASE_KEY not in printed


def test_the_saved_record_is_the_full_config(tmp_path):
    from seld.tasks.pretrain import PretrainConfig

    cfg = load_config(ROOT / "configs" / "pretrain_beats.yml", PretrainConfig)
    out = save_config(cfg, tmp_path / "config.resolved.yml")
    record = yaml.safe_load(out.read_text())
    assert BASE_KEY not in record and record == to_dict(cfg)
    assert record["model"]["tokenizer"]["fusion"]["num_blocks"] == 2  # a default no file names
    assert load_config(out, PretrainConfig) == cfg
