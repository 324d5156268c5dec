"""The one-command benchmark on a tiny setting: every stage runs, the table and the PNGs are written,
a rerun skips finished stages."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seld.io_utils import file_sha256
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


def _load_script():
    return load_script("scripts/experiments/synthetic_benchmark.py", "synthetic_benchmark")


def test_set_sizes_split_the_clips() -> None:
    bench = _load_script()
    assert bench.set_sizes(400) == {"train": 280, "val": 60, "test": 60}
    assert bench.set_sizes(8) == {"train": 4, "val": 2, "test": 2}
    assert bench.set_sizes(400, train_clips=840) == {"train": 840, "val": 60, "test": 60}


def _child(code: str, log_path: Path) -> tuple[subprocess.Popen, Path]:
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT), log_path


def test_lanes_start_a_job_after_its_inputs_and_never_run_more_than_lanes(tmp_path: Path) -> None:
    bench = _load_script()
    needs = {"tok1": (), "tok2": (), "ft1": ("tok1",), "ft2": ("tok2",), "ft3": ("tok1", "tok2")}
    events: list[tuple[str, str]] = []
    procs: dict[str, subprocess.Popen] = {}

    def start(job: str) -> tuple[subprocess.Popen, Path]:
        live = [j for j, p in procs.items() if p.poll() is None]
        events.append(("start", job))
        assert len(live) < 2, f"{job} started beside {live}"
        procs[job], log = _child(f"import time; time.sleep(0.1); print('{job}')", tmp_path / f"{job}.log")
        return procs[job], log

    def ready(job: str, finished: set[str]) -> bool:
        ok = set(needs[job]) <= finished
        if ok:
            assert all(procs[n].poll() == 0 for n in needs[job])  # its inputs have exited
        return ok

    bench.run_children(list(needs), 2, start, str, "t", ready, poll_s=0.02)
    assert [j for _, j in events][:2] == ["tok1", "tok2"] and sorted(j for _, j in events) == sorted(needs)
    assert all(p.returncode == 0 for p in procs.values())
    assert (tmp_path / "ft3.log").read_text() == "ft3\n"


def test_lanes_stop_every_child_when_one_fails_or_a_job_cannot_start(tmp_path: Path) -> None:
    bench = _load_script()
    procs: dict[str, subprocess.Popen] = {}

    def start(job: str) -> tuple[subprocess.Popen, Path]:
        code = "import sys; sys.exit(3)" if job == "bad" else "import time; time.sleep(60)"
        procs[job], log = _child(code, tmp_path / f"{job}.log")
        return procs[job], log

    with pytest.raises(SystemExit, match=r"\[t\] bad failed \(exit 3\); see .*bad\.log"):
        bench.run_children(["slow", "bad", "later"], 2, start, str, "t", poll_s=0.02)
    assert procs["slow"].returncode is not None and "later" not in procs  # stopped, and nothing more started
    with pytest.raises(SystemExit, match=r"\[t\] ft wait for runs that are neither done nor selected"):
        bench.run_children(["ft"], 2, start, str, "t", lambda job, finished: False, poll_s=0.02)


@pytest.mark.slow
def test_tiny_benchmark_writes_table_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _load_script()
    cfg_dir = tmp_path / "configs"
    shutil.copytree(ROOT / "configs" / "benchmark", cfg_dir)
    with open(cfg_dir / "features.yml", "a", encoding="utf-8") as f:
        f.write("wpe: {iterations: 1}\n")  # one WPE iteration keeps the test fast
    fast = []
    for kind in ("baseline", "pretrain", "finetune"):
        fast += ["--set", f"{kind}:train.epochs=1", "--set", f"{kind}:train.batch_size=2"]
    fast += ["--set", "pretrain_cont:train.epochs=2"]  # one epoch on top of the tokenizer's
    out = tmp_path / "bench"
    argv = ["--clips", "8", "--budget-minutes", "5", "--seed", "3", "--seeds", "2", "--out", str(out),
            "--workers", "1", "--configs", str(cfg_dir), "--lanes", "2", *fast]
    assert bench.main(argv) == 0

    for seed in (3, 4):  # every seed has its own rooms and its own table
        results = json.loads((out / f"seed{seed}" / "results.json").read_text())["results"]
        assert list(results) == list(bench.RUNS)
        assert results["baseline"]["params_total"] == 735_413 == results["baseline"]["params_trainable"]
        for name, r in results.items():
            # 4 training clips, batch 2; the continued tokenizer adds its epoch to the tokenizer's
            assert r["epochs"] == (2 if name == "pretrain_cont" else 1)
            assert 0.0 <= r["F"] <= 1.0 and len(r["F_per_class"]) == 13 and 0.0 <= r["val"]["F"] <= 1.0
            assert r["checkpoint"].endswith("best_f.pt")
            assert (out / f"seed{seed}" / "predictions" / name).is_dir()
        for name in ("grep", "trep", "grep_random", "trep_random", "paper_grep"):
            assert results[name]["params_trainable"] < results[name]["params_total"]  # the frozen encoder
            for split in ("val", "test"):  # A against the split's own sentences
                al = results[name]["alignment"][split]
                assert 0.0 <= al["recall_at_1"] <= al["recall_at_5"] <= al["recall_at_10"] <= 1.0 and al["candidates"] >= 1
                assert al["sounding"]["frames"] < al["frames"] and al["sounding"]["candidates"] == al["candidates"]
        # the random twin has the pre-trained encoder's shape and trainable size, not its weights
        assert results["grep_random"]["params_total"] == results["grep"]["params_total"]
        assert results["grep_random"]["params_trainable"] == results["grep"]["params_trainable"]
        # the no-language control: the same trainable head, no encoder, no alignment
        assert results["nolang"]["params_trainable"] == results["grep"]["params_trainable"]
        assert results["nolang"]["params_total"] < results["grep"]["params_total"]
        assert "alignment" not in results["nolang"]
        assert "text_path_val" in results["grep"] and "text_path_val" not in results["paper_grep"]  # residual or not
        q = results["grep"]["query"]  # asked in words, through the text encoder
        assert 0.0 <= q["paraphrase_accuracy"] <= 1.0 and q["n_queries"] >= 1 and "query" not in results["nolang"]
    seed_table = (out / "seed3" / "results.md").read_text()
    assert "| Baseline CRNN (DCASE2025) | 735,413 / 735,413 | 1 |" in seed_table
    assert "GREP, MiniLM random weights" in seed_table and "Alignment of A with language" in seed_table
    pngs = sorted(p.name for p in (out / "seed3").glob("*.png"))
    assert "learning_curves.png" in pngs and "class_scores.png" in pngs and "retrieval_example_grep.png" in pngs
    assert sum(p.startswith("tracks_") for p in pngs) == 4
    for p in [*out.glob("*.png"), *(out / "seed3").glob("*.png")]:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000

    # across seeds: every comparison paired over the two seeds, on validation and test
    summary = json.loads((out / "results.json").read_text())["summary"]
    per = {s: json.loads((out / f"seed{s}" / "results.json").read_text())["results"] for s in (3, 4)}
    comp = {(c["a"], c["b"]): c for c in summary["comparisons"]}
    c = comp[("grep", "grep_random")]["F"]["test"]
    diffs = [per[s]["grep"]["F"] - per[s]["grep_random"]["F"] for s in (3, 4)]
    assert c["n"] == 2 and c["mean"] == pytest.approx(sum(diffs) / 2)
    assert c["low"] <= c["mean"] <= c["high"]
    assert summary["best_textseld"] in ("grep", "trep", "paper_grep")
    assert (summary["best_textseld"], "baseline") in comp and ("grep", "pretrain_cont") in comp
    table = (out / "results.md").read_text()
    assert "Paired differences a - b over seeds" in table and "pre-trained - random encoder (GREP)" in table
    assert (out / "comparisons.png").is_file()

    # `seld infer` runs on the baseline checkpoint from audio alone and gives the same CSVs
    from seld.cli import main as seld_main

    infer_dir = tmp_path / "infer"
    seed_dir = out / "seed3"
    wavs = seed_dir / "data" / "test" / "stereo_dev" / bench.SPLIT
    ckpt = seed_dir / per[3]["baseline"]["checkpoint"]
    assert seld_main(["infer", "--checkpoint", str(ckpt), "--audio", str(wavs), "--out", str(infer_dir)]) == 0
    produced = sorted(infer_dir.glob("*.csv"))
    assert len(produced) == 2
    for csv in produced:
        assert csv.read_text() == (seed_dir / "predictions" / "baseline" / csv.name).read_text()

    # the seeds were scored in two report lanes, each row kept beside its run with the checkpoint's hash
    assert (out / "seed4" / "report.log").is_file()
    kept = json.loads((seed_dir / "runs" / "grep" / "report_row.json").read_text())
    assert kept["key"]["report_version"] == bench.REPORT_VERSION and kept["row"]["F"] == per[3]["grep"]["F"]
    assert kept["key"]["sha256"] == file_sha256(seed_dir / kept["key"]["checkpoint"])

    # a rerun skips the finished runs (no training) and rewrites the same tables from the kept rows
    capsys.readouterr()

    def no_scoring(*args: object) -> None:
        raise AssertionError("the rerun scored a checkpoint again")

    monkeypatch.setattr(bench, "score_checkpoint", no_scoring)
    assert bench.main([*argv, "--lanes", "1"]) == 0
    monkeypatch.undo()
    log = capsys.readouterr().out
    assert log.count("finished earlier") == 2 * len(bench.RUNS) and "training for at most" not in log
    again = json.loads((out / "seed3" / "results.json").read_text())["results"]
    assert again["baseline"]["F"] == per[3]["baseline"]["F"]

    # --extra-test-clips: a second held-out test set per seed (seed + 3000) scored with the same checkpoints
    assert bench.main([*argv, "--stages", "report", "--runs", "baseline,grep", "--extra-test-clips", "2"]) == 0
    again = json.loads((out / "seed3" / "results.json").read_text())
    assert again["meta"]["test2"] == "2 clips, seed 3003"
    refs = {name: [p.read_text() for p in sorted((seed_dir / "data" / name / "metadata_dev" / bench.SPLIT).glob("*.csv"))]
            for name in ("test", "test2")}
    assert len(refs["test2"]) == 2 and refs["test2"] != refs["test"]  # other scenes (other seed)
    for name, r in again["results"].items():
        assert r["F"] == per[3][name]["F"]  # the first test set's scores are unchanged
        assert 0.0 <= r["test2"]["F"] <= 1.0 and r["test2"]["checkpoint"] == r["checkpoint"]
        assert len(list((seed_dir / "predictions_test2" / name).glob("*.csv"))) == 2
    assert "test2" in json.loads((out / "results.json").read_text())["summary"]["runs"]["grep"]
    with pytest.raises(SystemExit):
        bench.main([*argv, "--stages", "report", "--extra-test-clips", "1"])
    with pytest.raises(SystemExit):
        bench.main([*argv, "--runs", "grep,no_such_run"])


def test_run_table_budgets_and_overrides() -> None:
    bench = _load_script()
    shares = dict(bench.DEFAULT_SHARES)
    # every control gets exactly the minutes of the row it controls; the baseline a whole textseld model
    assert bench.run_minutes(bench.RUNS["grep_random"], 60, shares) == bench.run_minutes(bench.RUNS["grep"], 60, shares)
    assert bench.run_minutes(bench.RUNS["nolang"], 60, shares) == pytest.approx(8.4)
    assert bench.run_minutes(bench.RUNS["baseline"], 60, shares) == pytest.approx(
        bench.run_minutes(bench.RUNS["pretrain"], 60, shares) + bench.run_minutes(bench.RUNS["grep"], 60, shares))
    # the continued tokenizer's clock carries over: its limit is the tokenizer's minutes plus a fine-tuning's
    assert bench.run_minutes(bench.RUNS["pretrain_cont"], 60, shares) == pytest.approx(17.4 + 8.4)
    sets = [("finetune", "train.lr=1e-3"), ("grep", "train.batch_size=2"), ("pretrain", "train.epochs=1")]
    assert bench.run_overrides(bench.RUNS["grep_random"], sets) == ["model.text_encoder.init=random", "train.lr=1e-3"]
    assert bench.run_overrides(bench.RUNS["grep"], sets) == ["train.lr=1e-3", "train.batch_size=2"]
    assert bench.run_overrides(bench.RUNS["pretrain_cont"], sets) == ["train.epochs=1"]
    assert bench.seeds_of(5, 3) == [5, 6, 7]
