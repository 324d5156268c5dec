"""``scripts/bench/bench_inference.py`` on a tiny setting: it runs, prints its figures, and the old and
new inference paths give the same outputs (no timing asserts)."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from tests.scripts import load_script
from tests.train.conftest import single_thread

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench" / "bench_inference.py"


def _load():
    return load_script(SCRIPT, "bench_inference")


def test_bench_inference_tiny(capsys):
    before = torch.get_num_threads()
    with single_thread():
        res = _load().main(["--model", "tiny", "--clips", "2", "--seconds", "6", "--batch-size", "2",
                            "--old-threads", "1", "--wpe-taps", "3", "--wpe-iterations", "1"])
    out = capsys.readouterr().out
    print(out)
    assert "old  per file" in out and "new  batch 2" in out and "speed-up" in out and "features" in out
    assert res["max_diff"] < 1e-5  # old per-file path == new batched path
    assert all(math.isfinite(v) and v > 0 for k, v in res.items() if k != "max_diff")
    assert torch.get_num_threads() == before or torch.get_num_threads() == 1
