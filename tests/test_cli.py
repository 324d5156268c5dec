"""The console command, the thin entry points and the SLURM launchers (run with plain bash)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seld.cli import build_parser, main
from seld.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, HF_HUB_OFFLINE="1", PYTHON=sys.executable)


def test_every_subcommand_has_help():
    parser = build_parser()
    text = parser.format_help()
    for name in COMMANDS:
        assert name in text
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([name, "--help"])
        assert exc.value.code == 0


def test_print_config_applies_overrides(capsys):
    assert main(["pretrain", "--config", "configs/pretrain_rcc.yml", "train.batch_size=4", "--print-config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["train"]["batch_size"] == 4
    assert cfg["model"]["tokenizer"]["source_encoder"] == "rcc"


def test_bad_config_key_is_a_clean_error(tmp_path, capsys):
    bad = tmp_path / "bad.yml"
    bad.write_text("train:\n  batchsize: 4\n")
    assert main(["finetune", "--config", str(bad), "--print-config"]) == 1
    err = capsys.readouterr().err
    assert "bad.yml" in err and "unknown key 'train.batchsize'" in err


@pytest.mark.parametrize("config", sorted(p.name for p in (ROOT / "configs").glob("*-*-*.yml")))
def test_eight_finetuning_configs_load(config):
    from seld.config import load_config
    from seld.train.stages import FinetuneConfig

    cfg = load_config(ROOT / "configs" / config, FinetuneConfig)
    src, text, head = config[:-4].split("-")
    assert cfg.model.head.type == head.lower()
    assert cfg.model.text_encoder.kind == text.lower()
    assert f"pretrain_{src.lower()}" in cfg.model.pretrained
    assert cfg.train.epochs == 50 and cfg.tokenizer_lr == 1e-6 and cfg.train.lr == 1e-4


@pytest.mark.parametrize("script, stage", [("pretrain_sbatch.sh", "pretrain"), ("finetune_sbatch.sh", "finetune")])
def test_sbatch_scripts_run_with_plain_bash(script, stage):
    res = subprocess.run(["bash", script, f"configs/quickstart/{stage}.yml", "--print-config"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"textseld {stage}: config=configs/quickstart/{stage}.yml processes=1" in res.stdout
    assert "train:" in res.stdout
    missing = subprocess.run(["bash", script, "nope.yml"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert missing.returncode == 2 and "config file not found: nope.yml" in missing.stderr


def test_sbatch_headers_request_resources():
    for script in ("pretrain_sbatch.sh", "finetune_sbatch.sh"):
        head = (ROOT / script).read_text()
        for key in ("--job-name", "--nodes=1", "--gres=gpu", "--cpus-per-task", "--time", "--output"):
            assert f"#SBATCH {key}" in head, (script, key)


def test_stage_entry_points_are_thin_wrappers():
    for folder, stage in (("pretraining", "pretrain"), ("finetuning", "finetune")):
        res = subprocess.run([sys.executable, f"{folder}/main.py", "--config", f"configs/quickstart/{stage}.yml",
                              "--print-config"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert yaml.safe_load(res.stdout)["data"]["train_splits"] == ["dev-train-synth"]
