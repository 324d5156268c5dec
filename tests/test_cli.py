"""The console command, the thin entry points and the SLURM launchers (run with plain bash)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seld.cli import build_parser, main, run_stage_script
from seld.commands import COMMANDS
from seld.config import read_config_file
from tests.scripts import child_pythonpath

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
    from seld.tasks.finetune import FinetuneConfig

    cfg = load_config(ROOT / "configs" / config, FinetuneConfig)
    src, text, head = config[:-4].split("-")
    assert cfg.model.head.type == head.lower()
    assert cfg.model.text_encoder.kind == text.lower()
    assert f"pretrain_{src.lower()}" in cfg.model.pretrained
    assert cfg.train.epochs == 50 and cfg.tokenizer_lr == 1e-6 and cfg.train.lr == 1e-4


@pytest.mark.parametrize("script, stage, config, resolved", [
    (["pretrain_sbatch.sh"], "pretrain", "configs/quickstart/pretrain.yml", ["train:"]),
    (["finetune_sbatch.sh"], "finetune", "configs/quickstart/finetune.yml", ["train:"]),
    (["train_sbatch.sh", "baseline"], "baseline", "configs/baseline_seldnet.yml", ["train:", "model:", "rnn_size: 128"]),
])
def test_sbatch_scripts_run_with_plain_bash(script, stage, config, resolved):
    res = subprocess.run(["bash", *script, config, "--print-config"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"textseld {stage}: config={config} processes=1" in res.stdout
    assert all(key in res.stdout for key in resolved), res.stdout
    missing = subprocess.run(["bash", *script, "nope.yml"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert missing.returncode == 2 and "config file not found: nope.yml" in missing.stderr


def test_train_sbatch_refuses_a_stage_outside_the_table_and_a_missing_config():
    unknown = subprocess.run(["bash", "train_sbatch.sh", "pretraining", "configs/pretrain_rcc.yml"],
                             cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2
    assert "error: unknown training stage 'pretraining' (expected 'pretrain', 'finetune' or 'baseline')" in unknown.stderr
    usage = subprocess.run(["bash", "train_sbatch.sh", "baseline"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert usage.returncode == 2 and "usage: train_sbatch.sh STAGE CONFIG" in usage.stderr


def test_sbatch_headers_request_resources():
    for script in ("pretrain_sbatch.sh", "finetune_sbatch.sh", "train_sbatch.sh"):
        head = (ROOT / script).read_text()
        for key in ("--job-name", "--nodes=1", "--gres=gpu", "--cpus-per-task", "--time", "--output"):
            assert f"#SBATCH {key}" in head, (script, key)


def test_stage_entry_points_are_thin_wrappers():
    for folder, stage in (("pretraining", "pretrain"), ("finetuning", "finetune")):
        res = subprocess.run([sys.executable, f"{folder}/main.py", "--config", f"configs/quickstart/{stage}.yml",
                              "--print-config"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert yaml.safe_load(res.stdout)["data"]["train_splits"] == ["dev-train-synth"]


# --- no config default that depends on the current folder (issue 13.8) ------------------------


@pytest.mark.parametrize("command", ["pretrain", "finetune", "features"])
def test_config_driven_commands_require_config_wherever_they_run(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # outside the repository: a cwd-relative default was looked up here
    assert main([command, "--print-config"] if command != "features" else [command, "workers=1"]) == 1
    err = capsys.readouterr().err
    assert f"seld {command}: error: --config FILE is required" in err
    assert "config.yml" in err  # names the shipped configs
    assert not any(tmp_path.iterdir())  # and wrote nothing


def test_stage_script_without_config_uses_its_own_folder_config(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "pretraining" / "main.py"), "--print-config"],
                         cwd=tmp_path, env=dict(ENV, PYTHONPATH=child_pythonpath()), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    want = read_config_file(ROOT / "pretraining" / "config.yml")  # the file over its base
    assert yaml.safe_load(res.stdout)["model"]["tokenizer"]["source_encoder"] == want["model"]["tokenizer"]["source_encoder"]


def test_run_stage_script_takes_the_config_next_to_the_script_unless_given(tmp_path, capsys):
    (tmp_path / "config.yml").write_text("train:\n  batch_size: 3\n")
    script = tmp_path / "main.py"  # need not exist: only its folder counts
    assert run_stage_script("pretrain", script, ["--print-config", "train.epochs=2"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert (cfg["train"]["batch_size"], cfg["train"]["epochs"]) == (3, 2)
    for given in (["--config", "configs/pretrain_rcc.yml"], ["--config=configs/pretrain_rcc.yml"]):
        assert run_stage_script("pretrain", script, [*given, "--print-config"]) == 0
        assert yaml.safe_load(capsys.readouterr().out)["train"]["batch_size"] != 3


# --- progress bars (issue 13.15) ----------------------------------------------------------------

LONG_RUNNING = ["pretrain", "finetune", "infer", "embed", "evaluate", "features", "synth"]


@pytest.mark.parametrize("command", LONG_RUNNING)
def test_long_running_commands_take_progress_and_no_progress(command):
    help_text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
    assert "--progress, --no-progress" in help_text and "terminal" in help_text


def test_progress_defaults_to_whether_stderr_is_a_terminal(monkeypatch):
    from seld.commands._common import resolve_progress

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert resolve_progress(None) is True and "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    assert resolve_progress(False) is False
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"  # transformers/hub loading bars off too
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert resolve_progress(None) is False and resolve_progress(True) is True


def test_transformers_loading_bars_are_switched_off_without_progress(monkeypatch):
    transformers_logging = pytest.importorskip("transformers.utils.logging")
    from seld.commands._common import resolve_progress

    monkeypatch.setattr(transformers_logging, "_tqdm_active", True)  # restored after the test
    assert transformers_logging.is_progress_bar_enabled()
    resolve_progress(False)
    assert not transformers_logging.is_progress_bar_enabled()


@pytest.mark.parametrize("flags, shown", [([], False), (["--progress"], True), (["--no-progress"], False)])
def test_training_progress_follows_the_flag(flags, shown, monkeypatch):
    import dataclasses

    from seld.tasks import pretrain

    seen = {}

    def run(cfg):
        seen["cfg"] = cfg

    monkeypatch.setattr(pretrain, "PARTS", dataclasses.replace(pretrain.PARTS, run=run))  # read through STAGES
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)  # as in a log file or pipe
    assert main(["pretrain", "--config", "configs/quickstart/pretrain.yml", *flags]) == 0
    assert seen["cfg"].train.progress is shown


def test_evaluate_draws_no_bar_into_a_log_unless_asked(tmp_path, capsys):
    from seld.data.metadata import Event, write_metadata_csv

    for folder in ("ref", "pred"):
        for i in range(3):
            write_metadata_csv(tmp_path / folder / f"c{i}.csv", [Event(f, 1, 0, 10.0, 200.0) for f in range(5)])
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--ref", str(tmp_path / "ref")]
    assert main(args) == 0
    assert "scoring" not in capsys.readouterr().err
    assert main(args + ["--progress"]) == 0
    assert "scoring: 100%" in capsys.readouterr().err


def test_python_dash_m_seld_is_the_seld_command(tmp_path):
    # a checkout on PYTHONPATH without `pip install` (a cluster node, the GPU machine) runs `python -m seld`
    env = dict(ENV, PYTHONPATH=child_pythonpath())
    res = subprocess.run([sys.executable, "-m", "seld", "evaluate", "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: seld evaluate")
    res = subprocess.run([sys.executable, "-m", "seld", "pretrain"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 1 and "--config FILE is required" in res.stderr


# --- the local SLURM of the tests runs root daemons from a private folder (issue 31) -------------

SLURM_LOCAL = ROOT / "scripts" / "ci" / "slurm_local.sh"


def _slurm_local(action: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("SLURM_CONF", "SLURM_LOCAL_DIR")}
    return subprocess.run(["bash", str(SLURM_LOCAL), action], env=dict(base, TMPDIR=str(tmp_path / "tmp"), **env),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("how", ["group-writable", "link", "another user's"])
def test_slurm_local_refuses_a_folder_others_could_write(how, tmp_path):
    # before: a fixed /tmp/textseld-slurm, which anyone could create first, held root daemons' config
    (tmp_path / "tmp").mkdir()
    folder = tmp_path / "slurm"
    folder.mkdir(mode=0o700)
    given = folder
    if how == "group-writable":
        folder.chmod(0o775)
        want = f"{folder} is writable by its group or others (mode 775)"
    elif how == "link":
        given = tmp_path / "link"
        given.symlink_to(folder)
        want = f"{given} is a symbolic link"
    else:
        if os.getuid() != 0:
            pytest.skip("giving a folder to another user needs root")
        os.chown(folder, 65534, 65534)
        want = f"{folder} is not a folder of "
    res = _slurm_local("start", tmp_path, SLURM_LOCAL_DIR=str(given))
    assert res.returncode == 3 and want in res.stderr, res.stderr
    assert list(folder.iterdir()) == []  # nothing written there, nothing installed


def test_slurm_local_finds_its_folder_from_slurm_conf_and_stop_removes_the_one_start_made(tmp_path):
    (tmp_path / "tmp").mkdir()
    res = _slurm_local("status", tmp_path, SLURM_CONF="/etc/slurm/slurm.conf")  # a system conf is not ours
    assert res.returncode == 1 and "no local SLURM to status: set SLURM_CONF" in res.stderr
    made = tmp_path / "tmp" / "textseld-slurm.Ab3dEf7h"  # as start's mktemp -d leaves it, daemons stopped
    made.mkdir(mode=0o700)
    (made / ".made-by-slurm-local").touch()
    (made / "slurm.conf").write_text("# written by scripts/ci/slurm_local.sh for this host\n")
    res = _slurm_local("stop", tmp_path, SLURM_CONF=str(made / "slurm.conf"))
    assert res.returncode == 0 and "slurm_local: stopped" in res.stdout, res.stderr
    assert not made.exists()
    assert list((tmp_path / "tmp").iterdir()) == []
