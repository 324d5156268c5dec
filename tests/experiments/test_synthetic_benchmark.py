"""The one-command benchmark on a tiny setting: every stage runs, the table and the PNGs are written,
a rerun skips finished stages."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


def _load_script():
    return load_script("scripts/experiments/synthetic_benchmark.py", "synthetic_benchmark")


def test_set_sizes_split_the_clips() -> None:
    bench = _load_script()
    assert bench.set_sizes(400) == {"train": 280, "val": 60, "test": 60}
    assert bench.set_sizes(8) == {"train": 4, "val": 2, "test": 2}
    assert bench.set_sizes(400, train_clips=840) == {"train": 840, "val": 60, "test": 60}


@pytest.mark.slow
def test_tiny_benchmark_writes_table_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load_script()
    cfg_dir = tmp_path / "configs"
    shutil.copytree(ROOT / "configs" / "benchmark", cfg_dir)
    with open(cfg_dir / "features.yml", "a", encoding="utf-8") as f:
        f.write("wpe: {iterations: 1}\n")  # one WPE iteration keeps the test fast
    fast = []
    for stage in ("baseline", "pretrain", "grep", "trep"):
        fast += ["--set", f"{stage}:train.epochs=1", "--set", f"{stage}:train.batch_size=2"]
    out = tmp_path / "bench"
    argv = ["--clips", "8", "--budget-minutes", "5", "--seed", "3", "--out", str(out), "--workers", "1",
            "--configs", str(cfg_dir), *fast]
    assert bench.main(argv) == 0

    results = json.loads((out / "results.json").read_text())["results"]
    assert list(results) == ["baseline", "pretrain", "grep", "trep"]
    assert results["baseline"]["params_total"] == 735_413 == results["baseline"]["params_trainable"]
    for stage, r in results.items():
        assert r["epochs"] == 1 and r["steps"] == 2  # 4 training clips, batch 2
        assert 0.0 <= r["F"] <= 1.0 and len(r["F_per_class"]) == 13
        assert r["checkpoint"].endswith("best_f.pt")
        assert (out / "predictions" / stage).is_dir()
    for stage in ("grep", "trep"):  # the frozen text encoder counts in the total only
        assert results[stage]["params_trainable"] < results[stage]["params_total"]
        # the benchmark configs use the residual head: validation with and without the text path
        tp = results[stage]["text_path_val"]
        assert set(tp) == {"with", "without"} and all(0.0 <= tp[k]["F"] <= 1.0 for k in tp)
    assert "text_path_val" not in results["pretrain"] and "text_path_val" not in results["baseline"]
    table = (out / "results.md").read_text()
    assert "What the text encoder adds" in table
    assert "| Baseline CRNN (DCASE2025) | 735,413 / 735,413 | 1 |" in table
    assert "RCC-BERT-TREP (MiniLM)" in table and "F20°/1 per class" in table
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert "learning_curves.png" in pngs and "class_scores.png" in pngs
    assert sum(p.startswith("tracks_") for p in pngs) == 4
    for p in out.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000

    # `seld infer` runs on the baseline checkpoint from audio alone and gives the same CSVs
    from seld.cli import main as seld_main

    infer_dir = tmp_path / "infer"
    wavs = out / "data" / "test" / "stereo_dev" / bench.SPLIT
    ckpt = out / results["baseline"]["checkpoint"]
    assert seld_main(["infer", "--checkpoint", str(ckpt), "--audio", str(wavs), "--out", str(infer_dir)]) == 0
    produced = sorted(infer_dir.glob("*.csv"))
    assert len(produced) == 2
    for csv in produced:
        assert csv.read_text() == (out / "predictions" / "baseline" / csv.name).read_text()

    # a rerun skips the finished stages (no training) and rewrites the same table
    capsys.readouterr()
    assert bench.main(argv) == 0
    log = capsys.readouterr().out
    assert log.count("finished earlier") == 4 and "training for at most" not in log
    assert json.loads((out / "results.json").read_text())["results"]["baseline"]["F"] == results["baseline"]["F"]

    # --extra-test-clips: a second held-out test set (seed + 3000) scored with the same checkpoints
    assert bench.main([*argv, "--stages", "report", "--extra-test-clips", "2"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["meta"]["test2"] == "2 clips, seed 3003"
    refs = {name: [p.read_text() for p in sorted((out / "data" / name / "metadata_dev" / bench.SPLIT).glob("*.csv"))]
            for name in ("test", "test2")}
    assert len(refs["test2"]) == 2 and refs["test2"] != refs["test"]  # other scenes (other seed)
    for stage, r in again["results"].items():
        assert r["F"] == results[stage]["F"]  # the first test set's scores are unchanged
        t2 = r["test2"]
        assert 0.0 <= t2["F"] <= 1.0 and t2["checkpoint"] == r["checkpoint"]
        assert len(list((out / "predictions_test2" / stage).glob("*.csv"))) == 2
    assert "Second held-out test set (2 clips, seed 3003" in (out / "results.md").read_text()
    with pytest.raises(SystemExit):
        bench.main([*argv, "--stages", "report", "--extra-test-clips", "1"])
