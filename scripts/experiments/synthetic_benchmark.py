"""One-command learning benchmark on held-out simulated rooms: the DCASE2025 baseline CRNN beside
the textseld stages, same features, same metric, a fixed wall-clock budget.

    python scripts/experiments/synthetic_benchmark.py [--clips 400] [--train-clips N] [--budget-minutes 60] [--seed 0] [--out bench_out]

Steps (a rerun skips finished ones; a killed training stage resumes from its ``last.pt``):

1. ``data``: three simulated sets drawn from different seeds (so different rooms): train
   (70 % of ``--clips``, or ``--train-clips``), validation (15 %) and test (15 %); features once per set with
   ``configs/benchmark/features.yml``; normalisation from the training set only.
2. ``baseline``: the DCASE2025 baseline CRNN (``configs/benchmark/baseline.yml``).
3. ``pretrain``: the RCC tokenizer (``configs/benchmark/pretrain.yml``).
4. ``grep`` / ``trep``: RCC-BERT-GREP and RCC-BERT-TREP with the offline MiniLM from the
   tokenizer checkpoint selected on validation (``configs/benchmark/finetune_{grep,trep}.yml``).
5. ``report``: each run's checkpoint with the best validation F (``best_f.pt``; ``last.pt`` when no
   epoch finished) scored ONCE on the test set; ``results.md``, ``results.json`` and PNG plots.
   ``--extra-test-clips N`` also simulates a second held-out test set (seed + 3000, other rooms
   again; made once, kept in ``features/test2.h5``) and scores every run on it too: 60 test clips
   leave a few points of noise, and this measures it without touching any choice.

Budget: every training stage stops after the step that crosses its share of ``--budget-minutes``
(``train.max_minutes``; validation and a least-squares head fit count). Default shares: baseline 0.43, pretrain 0.29,
GREP 0.14, TREP 0.14, so the baseline's budget equals a textseld model's (pre-training + one
fine-tuning). Data simulation and feature extraction are outside the budget.

Lanes: the stage configs train on one thread each (``train.num_threads: 1``). ``--lanes 2`` (the
default on a machine with 2 or more cores) runs two training stages at once, one core each: the
pre-training and the baseline start together, each fine-tuning starts when the tokenizer is done
and a lane is free. Every stage still gets its share of minutes on one core, so the comparison is
unchanged, and the wall time of the training falls from the budget to about 57 % of it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SETS: dict[str, tuple[float, int]] = {"train": (0.70, 0), "val": (0.15, 1000), "test": (0.15, 2000)}
"""Set -> (fraction of --clips, seed offset): different seeds give different rooms."""
EXTRA_TEST_SEED_OFFSET = 3000
"""Seed offset of the optional second test set (``--extra-test-clips``)."""
STAGES: tuple[str, ...] = ("data", "baseline", "pretrain", "grep", "trep", "report")
DEFAULT_SHARES: dict[str, float] = {"baseline": 0.43, "pretrain": 0.29, "grep": 0.14, "trep": 0.14}
"""Fractions of the training budget. The baseline gets what one textseld model gets (pre-training +
one fine-tuning: 0.29 + 0.14 = 0.43). Pre-training gets twice a fine-tuning: measured on 2 busy
cores, the tokenizer gains validation F faster per minute than either fine-tuning (docs/results)."""
RUN_NAMES: dict[str, str] = {
    "baseline": "Baseline CRNN (DCASE2025)",
    "pretrain": "RCC tokenizer (pre-training)",
    "grep": "RCC-BERT-GREP (MiniLM)",
    "trep": "RCC-BERT-TREP (MiniLM)",
}
SPLIT = "dev-train-synth"  # every simulated set is written with test_fraction 0


def set_sizes(clips: int, train_clips: int | None = None) -> dict[str, int]:
    """Clips per set: at least 2 each (the validator needs a batch; the trainer needs >= batch size);
    ``train_clips`` replaces the training set's 70 % share of ``clips``."""
    val = max(2, round(clips * SETS["val"][0]))
    test = max(2, round(clips * SETS["test"][0]))
    train = clips - val - test if train_clips is None else train_clips
    return {"train": max(2, train), "val": val, "test": test}


# ----------------------------------------------------------------------------- data
def prepare_data(out: Path, clips: int, seed: int, workers: int | None, cfg_dir: Path,
                 train_clips: int | None = None) -> Path:
    """Simulate the three sets, extract their features, and link them as ``<out>/features/{train,val,test}.h5``."""
    for name, n in set_sizes(clips, train_clips).items():
        prepare_set(out, name, n, seed + SETS[name][1], workers, cfg_dir)
    return out / "features"


def prepare_set(out: Path, name: str, n: int, seed: int, workers: int | None, cfg_dir: Path) -> Path:
    """Simulate one set of ``n`` clips from ``seed``, extract its features and link them as
    ``<out>/features/<name>.h5``; the training set also writes the normalisation every set uses."""
    from seld.config import load_config
    from seld.data.synth import SynthConfig, generate_dataset
    from seld.features.config import FeatureConfig
    from seld.features.extract import extract_features
    from seld.features.merge import merge_splits, merged_file

    feats = out / "features"
    feats.mkdir(parents=True, exist_ok=True)
    synth_cfg = SynthConfig(test_fraction=0.0)
    root = out / "data" / name
    print(f"[data] {name}: {n} clips, seed {seed} -> {root}", flush=True)
    generate_dataset(root, n, seed, synth_cfg, workers=workers, progress=False)
    fcfg = load_config(
        cfg_dir / "features.yml", FeatureConfig,
        [f"dataset_root={root}", f"output_dir={out / 'features_per_set' / name}",
         f"splits=[{SPLIT}]", f"train_splits=[{SPLIT}]"],
    )
    if workers is not None:
        fcfg.workers = workers
    report = extract_features(fcfg, progress=False)
    if report.failed:
        raise SystemExit(f"feature extraction failed for {len(report.failed)} clip(s): {report.failed[:3]}")
    merged = merged_file(fcfg.output_dir, SPLIT)
    if report.done or not merged.is_file():
        merge_splits(fcfg, progress=False)
    link = feats / f"{name}.h5"
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(merged, feats))
    if name == "train":
        shutil.copyfile(Path(fcfg.output_dir) / "normalization.json", feats / "normalization.json")
        shutil.copyfile(Path(fcfg.output_dir) / "config.yml", feats / "config.yml")
    return link


# ----------------------------------------------------------------------------- training
def stage_config_file(cfg_dir: Path, stage: str) -> Path:
    return cfg_dir / {"baseline": "baseline.yml", "pretrain": "pretrain.yml",
                      "grep": "finetune_grep.yml", "trep": "finetune_trep.yml"}[stage]


def selected_checkpoint(run_dir: Path) -> Path:
    """The checkpoint chosen on validation: ``best_f.pt``, else ``last.pt`` (no epoch finished)."""
    ckpts = run_dir / "checkpoints"
    for name in ("best_f.pt", "last.pt"):
        if (ckpts / name).is_file():
            return ckpts / name
    raise SystemExit(f"{run_dir}: no checkpoint; run its stage first")


def train_stage(stage: str, out: Path, seed: int, minutes: float, cfg_dir: Path, extra: list[str]) -> dict[str, Any]:
    """Train one stage within ``minutes`` (skipped when its ``benchmark_done.json`` exists)."""
    from seld.config import load_config
    from seld.io_utils import atomic_write_text
    from seld.train import stages as st

    run_dir = out / "runs" / stage
    done = run_dir / "benchmark_done.json"
    if done.is_file():
        print(f"[{stage}] finished earlier ({done}); skipped", flush=True)
        return json.loads(done.read_text())
    overrides = [
        f"data.features_dir={out / 'features'}", "data.train_splits=[train]", "data.val_splits=[val]",
        f"train.out_dir={run_dir}", f"train.seed={seed}", f"train.max_minutes={minutes}", "train.progress=false",
    ]
    if stage in ("grep", "trep"):
        overrides.append(f"model.pretrained={selected_checkpoint(out / 'runs' / 'pretrain')}")
    schema, runner = {
        "baseline": (st.BaselineConfig, st.run_baseline),
        "pretrain": (st.PretrainConfig, st.run_pretraining),
        "grep": (st.FinetuneConfig, st.run_finetuning),
        "trep": (st.FinetuneConfig, st.run_finetuning),
    }[stage]
    cfg = load_config(stage_config_file(cfg_dir, stage), schema, overrides + extra)
    print(f"[{stage}] training for at most {minutes:.1f} min -> {run_dir}", flush=True)
    t = time.time()
    trainer = runner(cfg)
    info = {
        "minutes": (time.time() - t) / 60.0,
        "epochs": len(trainer.history),
        "steps": trainer.global_step,
        "budget_minutes": minutes,
    }
    atomic_write_text(done, json.dumps(info, indent=2) + "\n")
    return info


NEEDS: dict[str, tuple[str, ...]] = {"baseline": (), "pretrain": (), "grep": ("pretrain",), "trep": ("pretrain",)}
"""Training stages that must finish before a stage starts (fine-tuning reads the tokenizer)."""


def run_in_lanes(stages: list[str], lanes: int, lane_argv: list[str], out: Path) -> None:
    """Run training ``stages`` as child processes of this script, at most ``lanes`` at a time.

    A stage starts when the stages it needs (``NEEDS``) have finished, pre-training first (the
    fine-tunings wait for it). Each child prints into ``<out>/runs/<stage>.log``; a failed child
    stops the others and the run (rerun to resume: finished stages are skipped).
    """
    finished: set[str] = {s for s in DEFAULT_SHARES if (out / "runs" / s / "benchmark_done.json").is_file()}
    for stage in stages:
        if stage in finished:
            print(f"[{stage}] finished earlier ({out / 'runs' / stage / 'benchmark_done.json'}); skipped", flush=True)
    order = ("pretrain", "baseline", "grep", "trep")
    pending = sorted((s for s in stages if s not in finished), key=order.index)
    running: dict[str, subprocess.Popen] = {}
    logs = out / "runs"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        while pending or running:
            for stage in list(pending):
                if len(running) >= lanes:
                    break
                if all(n in finished for n in NEEDS[stage]):
                    pending.remove(stage)
                    print(f"[lanes] {stage} started (log: {logs / f'{stage}.log'})", flush=True)
                    with open(logs / f"{stage}.log", "a") as log:  # the child keeps its own handle
                        running[stage] = subprocess.Popen(
                            [sys.executable, str(Path(__file__).resolve()), *lane_argv, "--stages", stage, "--lanes", "1"],
                            stdout=log, stderr=subprocess.STDOUT,
                        )
            if pending and not running:
                raise SystemExit(f"stages {pending} wait for {[NEEDS[s] for s in pending]}, which are neither done nor selected")
            time.sleep(2.0)
            for stage, proc in list(running.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                del running[stage]
                if rc != 0:
                    raise SystemExit(f"[lanes] {stage} failed (exit {rc}); see {logs / f'{stage}.log'}")
                finished.add(stage)
                print(f"[lanes] {stage} finished", flush=True)
    finally:
        for proc in running.values():
            proc.terminate()
        for proc in running.values():
            proc.wait()


# ----------------------------------------------------------------------------- scoring and report
def score_on_test(stage: str, out: Path, model: Any, splits: tuple[str, ...] = ("test",)) -> list[dict[str, Any]]:
    """Score the run's validation-selected checkpoint, loaded as ``model`` (``load_task``), once on each
    ``features/<split>.h5``; write its CSVs to ``predictions/<stage>`` (``test``) or ``predictions_<split>/<stage>``."""
    import numpy as np

    from seld.decoding import write_prediction_csvs

    ckpt = selected_checkpoint(out / "runs" / stage)
    task = model.task
    params = list(task.parameters())
    results = []
    for split in splits:
        preds, scores = _predict_and_score(task.predict, model.streams, out, split)
        pred_dir = out / ("predictions" if split == "test" else f"predictions_{split}") / stage
        write_prediction_csvs(pred_dir, list(preds), [preds[c] for c in preds])
        results.append({
            "checkpoint": str(ckpt.relative_to(out)),
            "F": float(scores.F), "DOAE": float(scores.DOAE), "RDE": float(scores.RDE),
            "F_per_class": [float(v) for v in np.nan_to_num(scores.classwise_F)],
            "params_total": int(sum(p.numel() for p in params)),
            "params_trainable": int(sum(p.numel() for p in params if p.requires_grad)),
        })
    return results


def _predict_and_score(predict: Any, streams: Any, out: Path, split: str) -> tuple[dict[str, Any], Any]:
    """``predict(src, doa, dist)`` over ``features/<split>.h5`` in batches of 8 clips: (outputs by clip, scores)."""
    import torch

    from seld.data.dataset import SeldDataset
    from seld.data.targets import target_to_events
    from seld.metrics import MetricConfig, score_outputs

    ds = SeldDataset(out / "features" / f"{split}.h5", out / "features" / "normalization.json", streams, train=False)
    preds, refs = {}, {}
    with torch.no_grad():
        for start in range(0, len(ds), 8):
            items = [ds[i] for i in range(start, min(len(ds), start + 8))]
            batch = {k: torch.stack([it[k] for it in items]) for k in ("src", "doa", "dist")}
            outputs = predict(batch["src"], batch["doa"], batch["dist"]).float().numpy()
            for it, o in zip(items, outputs):
                preds[it["clip_id"]] = o
                refs[it["clip_id"]] = target_to_events(it["target"].numpy())
    return preds, score_outputs(preds, refs, MetricConfig())


def text_path_on_validation(model: Any, out: Path) -> dict[str, Any] | None:
    """For a fine-tuning run with ``model.head.residual`` (its selected checkpoint loaded as ``model``):
    validation F/DOAE/RDE with and without the text encoder's path (the tokens' direct path alone),
    i.e. what the text encoder adds; None for other runs. Validation only: the test set stays scored once."""
    task = model.task
    if getattr(task, "token_head", None) is None:
        return None
    row: dict[str, Any] = {}
    for key, predict in (("with", task.predict), ("without", task.predict_direct_path)):
        scores = _predict_and_score(predict, model.streams, out, "val")[1]
        row[key] = {"F": float(scores.F), "DOAE": float(scores.DOAE), "RDE": float(scores.RDE)}
    return row


def _fmt(v: Any, pct: bool = False) -> str:
    import math

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:.1f}" if pct else f"{v:.2f}"


def write_report(out: Path, results: dict[str, dict[str, Any]], meta: dict[str, Any]) -> None:
    """``results.json``, ``results.md`` and the PNG plots under ``out``."""
    from seld.constants import SHORT_CLASS_NAMES
    from seld.io_utils import atomic_write_text
    from seld.plots import plot_class_scores, plot_clip_tracks, plot_learning_curves

    atomic_write_text(out / "results.json", json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    lines = [
        "# Synthetic benchmark: held-out rooms, test set scored once", "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; started {meta['started']}.  ",
        "Sets (different seeds, so different rooms): " + ", ".join(f"{k} {v}" for k, v in meta["sets"].items())
        + f". Training budget {meta['budget_minutes']:g} min, shared "
        + ", ".join(f"{k} {v:.0%}" for k, v in meta["shares"].items())
        + " (data simulation and features not counted). Checkpoints selected on validation F (`best_f.pt`), "
        "the test set scored once (DCASE2025 metric, F20°/1, macro).", "",
        "| model | params trainable / total | epochs | minutes | F20°/1 (%) | DOAE (°) | RDE |",
        "|---|---|---|---|---|---|---|",
    ]
    for stage, r in results.items():
        lines.append(
            f"| {RUN_NAMES[stage]} | {r['params_trainable']:,} / {r['params_total']:,} | {r['epochs']} | "
            f"{r['minutes']:.1f} | {_fmt(r['F'], pct=True)} | {_fmt(r['DOAE'])} | {_fmt(r['RDE'])} |"
        )
    lines += ["", "F20°/1 per class (%):", "",
              "| model | " + " | ".join(SHORT_CLASS_NAMES) + " |", "|---" * (len(SHORT_CLASS_NAMES) + 1) + "|"]
    for stage, r in results.items():
        lines.append(f"| {RUN_NAMES[stage]} | " + " | ".join(_fmt(v, pct=True) for v in r["F_per_class"]) + " |")
    if any("test2" in r for r in results.values()):
        lines += ["", f"Second held-out test set ({meta['test2']}: rooms of neither training nor validation; "
                  "the same checkpoints, scored once, used for no choice):", "",
                  "| model | F20°/1 (%) | DOAE (°) | RDE | first test set F (%) |", "|---|---|---|---|---|"]
        for stage, r in results.items():
            t2 = r.get("test2")
            if t2:
                lines.append(f"| {RUN_NAMES[stage]} | {_fmt(t2['F'], pct=True)} | {_fmt(t2['DOAE'])} | "
                             f"{_fmt(t2['RDE'])} | {_fmt(r['F'], pct=True)} |")
    with_path = {s: r["text_path_val"] for s, r in results.items() if r.get("text_path_val")}
    if with_path:
        lines += ["", "What the text encoder adds (`model.head.residual` runs: output = pre-training head(tokens) + "
                  "text head; the same checkpoints on the validation set, without the text head's term):", "",
                  "| model | val F with / without the text path (%) | DOAE (°) | RDE |", "|---|---|---|---|"]
        for stage, tp in with_path.items():
            w, wo = tp["with"], tp["without"]
            lines.append(f"| {RUN_NAMES[stage]} | {_fmt(w['F'], pct=True)} / {_fmt(wo['F'], pct=True)} | "
                         f"{_fmt(w['DOAE'])} / {_fmt(wo['DOAE'])} | {_fmt(w['RDE'])} / {_fmt(wo['RDE'])} |")
    figures = {}
    runs = {RUN_NAMES[s]: out / "runs" / s for s in results}
    # fine-tunings start where their tokenizer's training ended: plot them on the model's whole budget
    pre_minutes = results.get("pretrain", {}).get("minutes", 0.0)
    shifts = {RUN_NAMES[s]: pre_minutes for s in results if s in ("grep", "trep")}
    figures["learning_curves"] = plot_learning_curves(runs, out / "learning_curves.png", shifts)
    figures["class_scores"] = plot_class_scores({RUN_NAMES[s]: r for s, r in results.items()}, out / "class_scores.png")
    ref_dir = out / "data" / "test" / "metadata_dev" / SPLIT
    clips = sorted(p.stem for p in ref_dir.glob("*.csv"))
    if clips:
        busiest = max(clips, key=lambda c: len((ref_dir / f"{c}.csv").read_text().splitlines()))
        for stage in results:
            figures[f"tracks_{stage}"] = plot_clip_tracks(
                out / "predictions" / stage, ref_dir, busiest, out / f"tracks_{stage}_{busiest}.png")
    lines += ["", "Figures: " + ", ".join(f"`{Path(p).name}`" for p in figures.values()), ""]
    atomic_write_text(out / "results.md", "\n".join(lines))
    print("\n".join(lines), flush=True)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=400, help="simulated clips in all (70/15/15 %% train/val/test)")
    parser.add_argument(
        "--train-clips", type=int, default=None,
        help="training clips instead of 70 %% of --clips (validation and test keep their 15 %% each)",
    )
    parser.add_argument("--budget-minutes", type=float, default=60.0, help="total training wall-clock budget")
    parser.add_argument("--seed", type=int, default=0, help="data seed (sets use seed, seed+1000, seed+2000) and train.seed")
    parser.add_argument("--out", default="bench_out", help="output folder (data, features, runs, results)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma list among {','.join(STAGES)}")
    parser.add_argument("--workers", type=int, default=None, help="processes for simulation/features (default: CPU count)")
    parser.add_argument(
        "--shares", default=",".join(f"{k}={v}" for k, v in DEFAULT_SHARES.items()),
        help="budget fraction per training stage (default: %(default)s)",
    )
    parser.add_argument("--configs", default=str(ROOT / "configs" / "benchmark"), help="folder of the stage YAMLs")
    parser.add_argument(
        "--set", action="append", default=[], metavar="STAGE:KEY=VALUE",
        help="config override for one stage, e.g. baseline:train.batch_size=8 (repeatable)",
    )
    parser.add_argument(
        "--lanes", type=int, default=min(2, os.cpu_count() or 1),
        help="training stages run at once, one core each (default: %(default)s = min(2, CPU count)); "
        "each stage keeps its share of minutes",
    )
    parser.add_argument(
        "--extra-test-clips", type=int, default=0,
        help=f"report: also score every run on a second held-out test set of this many clips "
        f"(seed + {EXTRA_TEST_SEED_OFFSET}; simulated once; default 0 = none)",
    )
    args = parser.parse_args(argv)
    if args.train_clips is not None and args.train_clips < 2:
        parser.error("--train-clips must be at least 2")
    if args.extra_test_clips < 0 or args.extra_test_clips == 1:
        parser.error("--extra-test-clips must be 0 (none) or at least 2")
    out = Path(args.out)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {unknown}; valid: {','.join(STAGES)}")
    cfg_dir = Path(args.configs)
    shares = {k: float(v) for k, v in (item.split("=") for item in args.shares.split(","))}
    extra: dict[str, list[str]] = {s: [] for s in DEFAULT_SHARES}
    for item in args.set:
        stage, _, override = item.partition(":")
        if stage not in extra or "=" not in override:
            parser.error(f"--set {item!r}: expected STAGE:KEY=VALUE with STAGE among {','.join(extra)}")
        extra[stage].append(override)
    if "data" in stages:
        t = time.time()
        prepare_data(out, args.clips, args.seed, args.workers, cfg_dir, args.train_clips)
        print(f"[data] done in {(time.time() - t) / 60:.1f} min", flush=True)
    training = [s for s in DEFAULT_SHARES if s in stages]
    if args.lanes > 1 and len(training) > 1:
        lane_argv = [f"--clips={args.clips}", f"--budget-minutes={args.budget_minutes}", f"--seed={args.seed}",
                     f"--out={out}", f"--shares={args.shares}", f"--configs={cfg_dir}"]
        lane_argv += [f"--set={item}" for item in args.set]
        run_in_lanes(training, args.lanes, lane_argv, out)
    else:
        for stage in training:
            train_stage(stage, out, args.seed, args.budget_minutes * shares[stage], cfg_dir, extra[stage])
    if "report" in stages:
        import platform

        from seld.train.stages import load_task

        results = {}
        extra_seed = args.seed + EXTRA_TEST_SEED_OFFSET
        if args.extra_test_clips:
            made = out / "data" / "test2" / "made.json"
            want = {"clips": args.extra_test_clips, "seed": extra_seed}
            if not (made.is_file() and json.loads(made.read_text()) == want and (out / "features" / "test2.h5").exists()):
                shutil.rmtree(out / "data" / "test2", ignore_errors=True)
                shutil.rmtree(out / "features_per_set" / "test2", ignore_errors=True)
                prepare_set(out, "test2", args.extra_test_clips, extra_seed, args.workers, cfg_dir)
                made.write_text(json.dumps(want) + "\n")
        for stage in DEFAULT_SHARES:
            done = out / "runs" / stage / "benchmark_done.json"
            if done.is_file():
                info = json.loads(done.read_text())
                model = load_task(selected_checkpoint(out / "runs" / stage))  # once for every score below
                scores = score_on_test(stage, out, model, ("test", "test2") if args.extra_test_clips else ("test",))
                results[stage] = {**info, **scores[0], **({"test2": scores[1]} if args.extra_test_clips else {})}
                if stage in ("grep", "trep"):
                    text_path = text_path_on_validation(model, out)
                    if text_path is not None:
                        results[stage]["text_path_val"] = text_path
        meta = {
            "command": "python scripts/experiments/synthetic_benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{platform.node()}, {os.cpu_count()} CPU core(s), {platform.processor() or platform.machine()}",
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "sets": {k: f"{n} clips, seed {args.seed + SETS[k][1]}" for k, n in set_sizes(args.clips, args.train_clips).items()},
            **({"test2": f"{args.extra_test_clips} clips, seed {extra_seed}"} if args.extra_test_clips else {}),
            "budget_minutes": args.budget_minutes,
            "shares": shares,
        }
        write_report(out, results, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
