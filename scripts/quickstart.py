"""The whole textseld path on a small simulated set, on CPU, in minutes (``make quickstart``).

    simulated DCASE2025 data -> features (HDF5) -> RCC tokenizer pre-training
      -> RCC-BERT-GREP fine-tuning with the offline MiniLM -> inference on dev-test-synth -> DCASE2025 scores

Every stage is the library call behind its ``seld`` subcommand, driven by ``configs/quickstart/*.yml``.
A rerun skips finished work (clips, feature files) and resumes training from ``last.pt``.

    python scripts/quickstart.py [--out quickstart_out] [--clips 64] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _stage(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.time()


def _selected(ckpt_dir: Path) -> Path:
    """The run's checkpoint selected on validation F (``best_f.pt``); ``last.pt`` if none was validated.

    Fine-tuning starts from the selected tokenizer, not from the last epoch's: on this small set
    validation F swings by several points between epochs (8.8 % at the best epoch vs 3.7 % at the
    last in one run).
    """
    best = ckpt_dir / "best_f.pt"
    return best if best.is_file() else ckpt_dir / "last.pt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="quickstart_out", help="folder for data, features, runs and predictions")
    parser.add_argument("--clips", type=int, default=80, help="simulated clips (a quarter go to dev-test-synth)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="override configs/quickstart/pretrain.yml")
    parser.add_argument("--finetune-epochs", type=int, default=None, help="override configs/quickstart/finetune.yml")
    args = parser.parse_args(argv)

    from seld.config import load_config
    from seld.constants import SYNTH_TEST_SPLIT
    from seld.sim.generate import generate_dataset, summarize_dataset
    from seld.features.config import FeatureConfig
    from seld.features.extract import extract_features
    from seld.features.merge import merge_splits
    from seld.inference import InferenceOptions, infer_to_csv
    from seld.metrics import MetricConfig, evaluate_folders, format_table
    from seld.tasks.finetune import FinetuneConfig, run_finetuning
    from seld.tasks.loading import load_task
    from seld.tasks.pretrain import PretrainConfig, run_pretraining

    out = Path(args.out)
    cfg_dir = ROOT / "configs" / "quickstart"
    timings: dict[str, float] = {}
    t_all = time.time()

    t = _stage(f"1/5 simulated data: {args.clips} clips -> {out / 'data'}")
    generate_dataset(out / "data", args.clips, args.seed, workers=None, progress=True)
    print(summarize_dataset(out / "data"))
    timings["data"] = time.time() - t

    t = _stage("2/5 features (log-mel, ILD, IVy, WPE direct/reverberant) -> HDF5")
    fcfg = load_config(cfg_dir / "features.yml", FeatureConfig,
                       [f"dataset_root={out / 'data'}", f"output_dir={out / 'features'}"])
    report = extract_features(fcfg, progress=True)
    if report.failed:
        for name, reason in report.failed:
            print(f"failed: {name}: {reason}", file=sys.stderr)
        return 1
    merge_splits(fcfg, progress=False)
    timings["features"] = time.time() - t

    runs = out / "runs"
    t = _stage("3/5 tokenizer pre-training (RCC, ADPIT)")
    pre_over = [f"data.features_dir={out / 'features'}", f"train.out_dir={runs / 'pretrain_rcc'}", f"train.seed={args.seed}"]
    if args.pretrain_epochs is not None:
        pre_over.append(f"train.epochs={args.pretrain_epochs}")
    pre = run_pretraining(load_config(cfg_dir / "pretrain.yml", PretrainConfig, pre_over))
    timings["pretrain"] = time.time() - t

    t = _stage("4/5 fine-tuning RCC-BERT-GREP through the frozen MiniLM")
    ft_over = [
        f"data.features_dir={out / 'features'}",
        f"train.out_dir={runs / 'RCC-BERT-GREP'}",
        f"model.pretrained={_selected(pre.ckpt_dir)}",
        f"train.seed={args.seed}",
    ]
    if args.finetune_epochs is not None:
        ft_over.append(f"train.epochs={args.finetune_epochs}")
    ft = run_finetuning(load_config(cfg_dir / "finetune.yml", FinetuneConfig, ft_over))
    timings["finetune"] = time.time() - t

    t = _stage(f"5/5 inference on {SYNTH_TEST_SPLIT} and DCASE2025 scoring")
    ckpt = _selected(ft.ckpt_dir)
    model = load_task(ckpt)
    pred_dir = out / "predictions" / "RCC-BERT-GREP"
    report = infer_to_csv(model, out / "data" / "stereo_dev" / SYNTH_TEST_SPLIT, pred_dir, InferenceOptions(), progress=True)
    if not report.ok:
        print("\n".join(report.failure_lines()), file=sys.stderr)
        return 1
    ref_dir = out / "data" / "metadata_dev" / SYNTH_TEST_SPLIT
    scores = evaluate_folders(pred_dir, ref_dir, MetricConfig())
    print(format_table(scores))
    timings["score"] = time.time() - t

    print("\nstage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + f"; total {time.time() - t_all:.0f} s")
    print(f"checkpoint: {ckpt}\npredictions: {pred_dir}\nTensorBoard: tensorboard --logdir {runs}")
    print(f"RESULT  F20/1 {100 * scores.F:.1f} %   DOAE {scores.DOAE:.1f} deg   RDE {scores.RDE:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
