"""Fine-tuning recipe ablation on the benchmark's VALIDATION set (never the test set).

Runs RCC-BERT-GREP / -TREP variants from one pre-trained tokenizer, one change at a time, same
seed, same number of steps, and prints each run's validation F / DOAE / RDE per epoch beside the
tokenizer's own validation scores.

    python scripts/experiments/recipe_ablation.py --bench bench_out [--epochs 1] [--only NAME ...]

``--bench`` is a folder prepared by ``synthetic_benchmark.py --stages data,pretrain``. Each variant
is ``seld finetune --config configs/benchmark/finetune_{grep,trep}.yml`` plus the overrides below.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

VARIANTS: dict[str, tuple[str, list[str]]] = {
    "grep_quickstart": ("grep", []),
    "grep_warmup_half_epoch": ("grep", ["head_warmup_steps={half_epoch}"]),
    "grep_head_lr_5e-3": ("grep", ["train.lr=5.0e-3"]),
    "grep_embed_0.1": ("grep", ["loss.embed_weight=0.1"]),
    "grep_tok_frozen": ("grep", ["tokenizer_lr=0.0"]),
    "grep_no_embed_loss": ("grep", ["loss.embed_weight=0.0"]),
    "grep_fixed_template": ("grep", ["train_templates=[1]"]),
    "trep_quickstart": ("trep", []),
}
"""Name -> (head, overrides); ``{steps_per_epoch}`` and ``{half_epoch}`` are filled in."""


def history(run: Path) -> list[dict]:
    from seld.checkpoint import load_checkpoint

    last = run / "checkpoints" / "last.pt"
    return load_checkpoint(last, map_location="cpu").get("history", []) if last.is_file() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", required=True, help="benchmark folder with features/ and runs/pretrain/")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run (default: all)")
    parser.add_argument("--out", default=None, help="runs folder (default: <bench>/ablation)")
    args = parser.parse_args(argv)

    from seld.config import load_config
    from seld.data import h5schema
    from seld.tasks.finetune import FinetuneConfig, run_finetuning

    bench = Path(args.bench)
    out = Path(args.out) if args.out else bench / "ablation"
    pre = bench / "runs" / "pretrain" / "checkpoints" / "best_f.pt"
    with h5schema.open_merged(bench / "features" / "train.h5") as f:
        n_train = f[h5schema.FEATURES].shape[0]
    rows = []
    for name, (head, overrides) in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        cfg_file = ROOT / "configs" / "benchmark" / f"finetune_{head}.yml"
        base = load_config(cfg_file, FinetuneConfig, [])
        steps = n_train // base.train.batch_size
        over = [o.format(steps_per_epoch=steps, half_epoch=steps // 2) for o in overrides] + [
            f"data.features_dir={bench / 'features'}", f"model.pretrained={pre}", f"train.out_dir={out / name}",
            f"train.epochs={args.epochs}", f"train.seed={args.seed}", "train.progress=false",
        ]
        print(f"== {name}: seld finetune --config {cfg_file.relative_to(ROOT)} {' '.join(overrides)}", flush=True)
        t = time.time()
        if not (out / name / "checkpoints" / "last.pt").is_file() or len(history(out / name)) < args.epochs:
            run_finetuning(load_config(cfg_file, FinetuneConfig, over))
        minutes = (time.time() - t) / 60
        hist = history(out / name)
        rows.append({"name": name, "overrides": overrides, "minutes": minutes,
                     "val": [{k: h[k] for k in ("val_F", "val_DOAE", "val_RDE") if k in h} for h in hist]})
        print(json.dumps(rows[-1]), flush=True)
    from seld.checkpoint import load_checkpoint

    tok = load_checkpoint(pre, map_location="cpu")
    best = max(tok.get("history", []), key=lambda h: h.get("val_F", -1), default={})
    print(f"\ntokenizer {pre}: val F {best.get('val_F', float('nan')):.4f}, DOAE {best.get('val_DOAE', float('nan')):.2f}, "
          f"RDE {best.get('val_RDE', float('nan')):.3f}")
    print("| variant | overrides | val F per epoch | last DOAE | last RDE | minutes |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        fs = " ".join(f"{v.get('val_F', float('nan')):.3f}" for v in r["val"])
        last = r["val"][-1] if r["val"] else {}
        print(f"| {r['name']} | {' '.join(r['overrides']) or '-'} | {fs} | {last.get('val_DOAE', float('nan')):.1f} | "
              f"{last.get('val_RDE', float('nan')):.3f} | {r['minutes']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
