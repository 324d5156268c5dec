"""The feature benchmarks run on a tiny setting and print their side-by-side figures (no timing asserts)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from seld.features import native

from tests.features.simdata import write_dataset
from tests.scripts import load_script as load_path

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"


def load_script(name: str):
    return load_path(BENCH / f"{name}.py", f"bench_{name}")


def test_bench_wpe_prints_reference_and_ours(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_script("bench_wpe")
    assert bench.main(["--clips", "1", "--seconds", "1", "--repeats", "1", "--threads", "1",
                       "--taps", "8", "--iterations", "1", "--profile"]) == 0
    out = capsys.readouterr().out
    compiled = native.kernel() is not None
    for label in ("nara_wpe complex128", "nara_wpe complex64", "ours     complex128", "GFLOP/clip", "where our time goes",
                  *(("ours     complex128, torch products", "compiled kernel wpe_kernel-") if compiled
                    else ("no compiled kernel",))):
        assert label in out, label
    # the profile names every phase of seld.features.wpe with its share of the busy time (the
    # compiled kernel reads the weights in place: no weights phase)
    shares = {name: float(pct) for name, pct in re.findall(r"^  (wpe\.\w+|rest)\s+[0-9.]+ s\s+(-?[0-9.]+) %", out, re.M)}
    assert set(shares) == {"wpe.lag_products", "wpe.products", "wpe.solve", "wpe.prediction", "rest",
                           *(() if compiled else ("wpe.weights",))}
    assert abs(sum(shares.values()) - 100.0) < 0.5
    err = float(re.search(r"\(complex128\), per clip: ([0-9.e+-]+)", out).group(1))
    assert err < 1e-6  # the printed parity is real: ours equals nara_wpe
    if compiled:
        between = float(re.search(r"the two differ by ([0-9.e+-]+)", out).group(1))
        assert between < 1e-6  # kernel and torch products: the same WPE


def test_bench_features_prints_old_new_and_memory(tmp_path: Path) -> None:
    # run as a script: its memory probes are spawned processes that re-import it by path
    write_dataset(tmp_path / "data", {"dev-train-synth": 1, "dev-test-synth": 1}, seed=0)
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_features.py"), "--data", str(tmp_path / "data"),
         "--keep", str(tmp_path / "work"), "--clips", "2", "--batch-size", "2", "--threads", "1",
         "--repeats", "1", "--workers", "1", "--merge-clips", "2", "--wpe-iterations", "1", "--wpe-taps", "8"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    print(out)
    for label in ("features without WPE: one clip per call", "features with WPE:    per clip + nara_wpe",
                  "extraction to HDF5 with WPE, 1 workers", "extraction to HDF5 with WPE, 1 process", "merge + normalisation of     2 clips", "merge + normalisation of     8 clips",
                  "merge peak memory growth", "training dataset reads"):
        assert label in out, label
    assert (tmp_path / "work" / "merge8" / "dev-train-synth.h5").is_file()


def test_bench_features_child_failure_is_raised_not_waited_for() -> None:
    # before: an exception in a spawned memory probe left the parent blocked on its queue forever
    code = (f"import sys, math; sys.path.insert(0, {str(BENCH)!r}); import bench_features as b\n"
            "assert b.in_child(abs, -3) == 3\n"
            "try:\n    b.in_child(math.sqrt, -1.0)\nexcept RuntimeError as e:\n    print('raised:', e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "raised: sqrt failed in its child process: ValueError: math domain error" in proc.stdout


def test_bench_features_rejects_a_zero_merge_size(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load_script("bench_features").main(["--merge-clips", "0"])
    assert "--merge-clips must be >= 1, got 0" in capsys.readouterr().err
