"""scripts/bench/gpu_checks.sh: its user-path part runs on a CPU (the GPU parts need a GPU machine)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.scripts import child_pythonpath

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench" / "gpu_checks.sh"


def test_gpu_checks_user_path_runs_on_cpu_and_scores(tmp_path):
    log = tmp_path / "log"
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=child_pythonpath(), DEVICE="cpu", ONLY="cli-path",
               CLI_CLIPS="8", CLI_EPOCHS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    res = subprocess.run(["bash", str(SCRIPT), str(log)], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    text = log.read_text()
    # only the part asked for ran, each stage of the user's path, ending in the DCASE2025 scores
    assert "=== cli-path: rc 0" in text and "=== gpu-tests" not in text and "=== wpe" not in text
    for step in ("8 clips generated", "features: 8 clips computed", "epoch 1/1", "wrote 2 CSV file(s)", "F20deg/1"):
        assert step in text, step
    assert "=== parts failed: 0" in text


def test_gpu_checks_without_a_gpu_stops_with_one_line_naming_the_cpu_way(tmp_path):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=child_pythonpath())
    res = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert "torch sees no CUDA device" in res.stderr and "DEVICE=cpu ONLY=cli-path" in res.stderr
    assert "===" not in res.stdout  # no part started
