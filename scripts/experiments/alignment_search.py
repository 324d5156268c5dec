"""Search, on validation, for a fine-tuning recipe whose tokens the frozen text encoder reads as
language: each variant fine-tunes from the same tokenizer checkpoint with the same seed and epochs,
and after every ``--every`` epochs its ``last.pt`` is scored on the validation set (SELD F and the
sentence retrieval of A), so every variant has a curve, not a best epoch.

    python scripts/experiments/alignment_search.py --features BENCH/seed0/features \\
        --pretrained BENCH/seed0/runs/pretrain/checkpoints/best_f.pt --out search_out \\
        --variant frozen= --variant live_mae=projection_lr=1e-4 \\
        --variant live_nce=projection_lr=1e-4,loss.embed=infonce --epochs 8 --every 2

A variant is ``NAME=OVERRIDE[,OVERRIDE...]`` on ``--config`` (default: the benchmark's GREP). The
training is cut in chunks by raising ``train.epochs`` and resuming (bit-exact), so a curve costs no
more training than one run. Results: ``<out>/search.json``, ``search.md`` and ``search.png``; a rerun
continues where it stopped. Choices made here use the validation set only; never pass a test set.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _benchmark() -> Any:
    """The benchmark script as a module (its scoring and alignment code, one implementation)."""
    spec = importlib.util.spec_from_file_location("synthetic_benchmark", Path(__file__).with_name("synthetic_benchmark.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["synthetic_benchmark"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, rest = text.partition("=")
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"--variant {text!r}: expected NAME=OVERRIDE[,OVERRIDE...] with a plain NAME")
    return name, [o for o in rest.split(",") if o]


def score_checkpoint(bench: Any, ckpt: Path, features: Path) -> dict[str, Any]:
    """Validation SELD scores and sentence retrieval of the model in ``ckpt``."""
    from seld.tasks.loading import load_task

    model = load_task(ckpt)
    seed_dir = features.parent  # predict_split reads <seed_dir>/features/<split>.h5
    outputs = bench.predict_split(model, seed_dir, "val", embed=bench.has_language(model.task))
    scores = bench.seld_scores(outputs)
    row: dict[str, Any] = {"F": float(scores.F), "DOAE": float(scores.DOAE), "RDE": float(scores.RDE)}
    if outputs.embeddings is not None:
        row["alignment"] = bench.alignment_on(model.task, outputs)
    return row


def run_variant(bench: Any, name: str, overrides: list[str], args: argparse.Namespace, curves: dict[str, Any]) -> None:
    from seld.config import load_config
    from seld.tasks.finetune import FinetuneConfig, run_finetuning

    run_dir = Path(args.out) / name
    curve = curves.setdefault(name, {"overrides": overrides, "points": []})
    done = {p["epoch"] for p in curve["points"]}
    for epochs in range(args.every, args.epochs + 1, args.every):
        if epochs in done:
            continue
        base = [f"data.features_dir={args.features}", "data.train_splits=[train]", "data.val_splits=[val]",
                f"model.pretrained={args.pretrained}", f"train.out_dir={run_dir}", f"train.seed={args.seed}",
                f"train.epochs={epochs}", "train.max_minutes=null", "train.progress=false"]
        cfg = load_config(Path(args.config), FinetuneConfig, base + overrides)
        t = time.time()
        run_finetuning(cfg)
        row = score_checkpoint(bench, run_dir / "checkpoints" / "last.pt", Path(args.features))
        row.update(epoch=epochs, train_minutes=(time.time() - t) / 60.0)
        curve["points"].append(row)
        al = row.get("alignment", {})
        print(f"[{name}] epoch {epochs}: val F {100 * row['F']:.1f}, R@1 {100 * al.get('recall_at_1', float('nan')):.1f} "
              f"(chance {100 * al.get('chance_recall_at_1', float('nan')):.2f}), median rank {al.get('median_rank', '-')}", flush=True)
        save(Path(args.out), curves, args)


def save(out: Path, curves: dict[str, Any], args: argparse.Namespace) -> None:
    from seld.io_utils import atomic_write_text

    meta = {"command": "python scripts/experiments/alignment_search.py " + " ".join(sys.argv[1:]),
            "features": str(args.features), "pretrained": str(args.pretrained), "seed": args.seed}
    atomic_write_text(out / "search.json", json.dumps({"meta": meta, "curves": curves}, indent=2) + "\n")
    lines = ["# Alignment search on validation", "", f"Command: `{meta['command']}`", "",
             "| variant | overrides | epoch | val F (%) | R@1 (%) (chance) | R@10 (%) | median rank / candidates |",
             "|---|---|---|---|---|---|---|"]
    for name, c in curves.items():
        for p in c["points"]:
            al = p.get("alignment")
            cells = (f"{100 * al['recall_at_1']:.1f} ({100 * al['chance_recall_at_1']:.2f}) | {100 * al['recall_at_10']:.1f} | "
                     f"{al['median_rank']:g} / {al['candidates']}") if al else "- | - | -"
            lines.append(f"| {name} | `{','.join(c['overrides']) or '(config)'}` | {p['epoch']} | {100 * p['F']:.1f} | {cells} |")
    atomic_write_text(out / "search.md", "\n".join(lines) + "\n")
    plot(out / "search.png", curves)


def plot(path: Path, curves: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seld.io_utils import atomic_path

    fig, (ax_f, ax_r) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, c) in enumerate(curves.items()):
        pts = sorted(c["points"], key=lambda p: p["epoch"])
        color = plt.get_cmap("tab10")(i % 10)
        ax_f.plot([p["epoch"] for p in pts], [100 * p["F"] for p in pts], marker="o", color=color, label=name)
        al = [(p["epoch"], 100 * p["alignment"]["recall_at_1"], 100 * p["alignment"]["chance_recall_at_1"]) for p in pts if p.get("alignment")]
        if al:
            ax_r.plot([a[0] for a in al], [a[1] for a in al], marker="o", color=color, label=name)
            ax_r.axhline(10 * al[-1][2], color="grey", ls=":", lw=0.8)
    ax_f.set_xlabel("epoch")
    ax_f.set_ylabel("validation F20°/1 (%)")
    ax_r.set_xlabel("epoch")
    ax_r.set_ylabel("validation sentence R@1 (%) (dotted: 10 x chance)")
    for ax in (ax_f, ax_r):
        ax.grid(alpha=0.3)
    ax_f.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True, help="folder with train.h5, val.h5 and normalization.json")
    parser.add_argument("--pretrained", required=True, help="the tokenizer checkpoint every variant starts from")
    parser.add_argument("--config", default=str(ROOT / "configs" / "benchmark" / "finetune_grep.yml"))
    parser.add_argument("--out", default="search_out")
    parser.add_argument("--variant", action="append", required=True, metavar="NAME=OVERRIDES")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--every", type=int, default=2, help="score every this many epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.every < 1 or args.epochs < args.every:
        parser.error("need 1 <= --every <= --epochs")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prior = json.loads((out / "search.json").read_text())["curves"] if (out / "search.json").is_file() else {}
    bench = _benchmark()
    for text in args.variant:
        name, overrides = parse_variant(text)
        if name in prior and prior[name]["overrides"] != overrides:
            raise SystemExit(f"{out / name}: variant {name} was run with {prior[name]['overrides']}, now {overrides}; "
                             "use another name or --out")
        run_variant(bench, name, overrides, args, prior)
    return 0


if __name__ == "__main__":
    sys.exit(main())
