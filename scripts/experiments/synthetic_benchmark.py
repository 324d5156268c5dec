"""One-command learning benchmark on held-out simulated rooms: the DCASE2025 baseline CRNN beside
the textseld stages, same features, same metric, a fixed wall-clock budget.

    python scripts/experiments/synthetic_benchmark.py [--clips 400] [--budget-minutes 60] [--seed 0] [--out bench_out]

Steps (a rerun skips finished ones; a killed training stage resumes from its ``last.pt``):

1. ``data``: three simulated sets drawn from different seeds (so different rooms): train
   (70 % of ``--clips``), validation (15 %) and test (15 %); features once per set with
   ``configs/benchmark/features.yml``; normalisation from the training set only.
2. ``baseline``: the DCASE2025 baseline CRNN (``configs/benchmark/baseline.yml``).
3. ``pretrain``: the RCC tokenizer (``configs/benchmark/pretrain.yml``).
4. ``grep`` / ``trep``: RCC-BERT-GREP and RCC-BERT-TREP with the offline MiniLM from the
   tokenizer checkpoint selected on validation (``configs/benchmark/finetune_{grep,trep}.yml``).
5. ``report``: each run's checkpoint with the best validation F (``best_f.pt``; ``last.pt`` when no
   epoch finished) scored ONCE on the test set; ``results.md``, ``results.json`` and PNG plots.

Budget: every training stage stops after the step that crosses its share of ``--budget-minutes``
(``train.max_minutes``; validation time counts). Default shares: baseline 0.4, pretrain 0.2,
GREP 0.2, TREP 0.2, so the baseline's budget equals a textseld model's (pre-training + one
fine-tuning). Data simulation and feature extraction are outside the budget.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SETS: dict[str, tuple[float, int]] = {"train": (0.70, 0), "val": (0.15, 1000), "test": (0.15, 2000)}
"""Set -> (fraction of --clips, seed offset): different seeds give different rooms."""
STAGES: tuple[str, ...] = ("data", "baseline", "pretrain", "grep", "trep", "report")
DEFAULT_SHARES: dict[str, float] = {"baseline": 0.4, "pretrain": 0.2, "grep": 0.2, "trep": 0.2}
RUN_NAMES: dict[str, str] = {
    "baseline": "Baseline CRNN (DCASE2025)",
    "pretrain": "RCC tokenizer (pre-training)",
    "grep": "RCC-BERT-GREP (MiniLM)",
    "trep": "RCC-BERT-TREP (MiniLM)",
}
SPLIT = "dev-train-synth"  # every simulated set is written with test_fraction 0


def set_sizes(clips: int) -> dict[str, int]:
    """Clips per set: at least 2 each (the validator needs a batch; the trainer needs >= batch size)."""
    val = max(2, round(clips * SETS["val"][0]))
    test = max(2, round(clips * SETS["test"][0]))
    return {"train": max(2, clips - val - test), "val": val, "test": test}


# ----------------------------------------------------------------------------- data
def prepare_data(out: Path, clips: int, seed: int, workers: int | None, cfg_dir: Path) -> Path:
    """Simulate the three sets, extract their features, and link them as ``<out>/features/{train,val,test}.h5``."""
    from seld.config import load_config
    from seld.data.synth import SynthConfig, generate_dataset
    from seld.features.config import FeatureConfig
    from seld.features.extract import extract_features
    from seld.features.merge import merge_splits, merged_file

    feats = out / "features"
    feats.mkdir(parents=True, exist_ok=True)
    synth_cfg = SynthConfig(test_fraction=0.0)
    for name, n in set_sizes(clips).items():
        root = out / "data" / name
        print(f"[data] {name}: {n} clips, seed {seed + SETS[name][1]} -> {root}", flush=True)
        generate_dataset(root, n, seed + SETS[name][1], synth_cfg, workers=workers, progress=False)
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
    return feats


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=400, help="simulated clips in all (70/15/15 %% train/val/test)")
    parser.add_argument("--budget-minutes", type=float, default=60.0, help="total training wall-clock budget")
    parser.add_argument("--seed", type=int, default=0, help="data seed (sets use seed, seed+1000, seed+2000) and train.seed")
    parser.add_argument("--out", default="bench_out", help="output folder (data, features, runs, results)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma list among {','.join(STAGES)}")
    parser.add_argument("--workers", type=int, default=None, help="processes for simulation/features (default: CPU count)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {unknown}; valid: {','.join(STAGES)}")
    cfg_dir = ROOT / "configs" / "benchmark"
    if "data" in stages:
        t = time.time()
        prepare_data(out, args.clips, args.seed, args.workers, cfg_dir)
        print(f"[data] done in {(time.time() - t) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
