"""How much of the pre-training head's output can a GREP head read linearly from the pooled embedding A?

Fits, by ridge regression on the TRAINING clips, a linear map from A (frozen tokenizer + frozen
text encoder, evaluation template) to the pre-training head's raw outputs, then scores on the
VALIDATION clips (never the test set): (1) the tokenizer with its own head, (2) that linear
read-out of A. If (2) is close to (1), a GREP head initialised this way would start at the
tokenizer's level instead of from scratch.

    python scripts/experiments/grep_lsq_probe.py --bench bench_out [--ridge 1e-3 1e-2]
    python scripts/experiments/grep_lsq_probe.py --features quickstart_out/features \
        --pretrained quickstart_out/runs/pretrain_rcc/checkpoints/last.pt --config configs/quickstart/finetune.yml

The collection and the fit are the library's (seld/train/head_init.py, ``model.head.init: lstsq``).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", help="benchmark output folder (features/, runs/pretrain/checkpoints/best_f.pt)")
    parser.add_argument("--features", help="features folder (instead of --bench)")
    parser.add_argument("--pretrained", help="pre-training checkpoint (instead of --bench)")
    parser.add_argument("--config", default=str(ROOT / "configs/benchmark/finetune_grep.yml"), help="fine-tuning config")
    parser.add_argument("--ridge", type=float, nargs="+", default=[1e-3],
                        help="ridge weight(s) relative to mean diag(X'X), X = [A, 1]")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides, e.g. model.text_encoder.pooling=mean")
    args = parser.parse_args(argv)
    if not args.bench and not (args.features and args.pretrained):
        parser.error("give --bench, or --features and --pretrained")

    import torch

    from seld.accdoa import activate_output
    from seld.config import load_config
    from seld.data.dataset import SeldDataset
    from seld.metrics import MetricConfig
    from seld.tasks.finetune import FinetuneConfig, _pretrained_parts, build_finetune_task
    from seld.tasks.runner import data_record
    from seld.train.data import make_validator
    from seld.train.head_init import collect_fit_data, ridge_fit

    torch.set_num_threads(1)
    features = Path(args.features) if args.features else Path(args.bench) / "features"
    pre = args.pretrained or str(Path(args.bench) / "runs" / "pretrain" / "checkpoints" / "best_f.pt")
    cfg = load_config(args.config, FinetuneConfig, [f"data.features_dir={features}", f"model.pretrained={pre}", *args.set])
    task = build_finetune_task(cfg, data_record(cfg.data)).eval()
    _, pre_model = _pretrained_parts(str(pre))

    def collect(split: str):
        ds = SeldDataset(features / f"{split}.h5", features / "normalization.json", cfg.data.streams, train=False)
        a, y = collect_fit_data(task, pre_model.head, ds)  # the library's code: model.head.init=lstsq uses it
        return a, y, [ds.clip_ids[i] for i in range(len(ds))], {ds.clip_ids[i]: ds[i]["target"].numpy() for i in range(len(ds))}

    def per_clip(rows: torch.Tensor, ids: list[str]):
        n = len(rows) // len(ids)
        return {cid: activate_output(rows[i * n:(i + 1) * n]).numpy() for i, cid in enumerate(ids)}

    a_tr, y_tr, _, _ = collect(cfg.data.train_splits[0])
    a_va, y_va, ids_va, t_va = collect(cfg.data.val_splits[0])
    validate = make_validator(MetricConfig())
    print(f"A: {tuple(a_tr.shape)} train rows")
    print("tokenizer + its own head (val):", {k: round(v, 4) for k, v in validate(per_clip(y_va, ids_va), t_va).items()})
    for ridge in args.ridge:
        w, b = ridge_fit(a_tr, y_tr, ridge)
        pred_va = (a_va.double() @ w + b).float()
        r2 = 1 - ((pred_va - y_va) ** 2).sum() / ((y_va - y_va.mean(0)) ** 2).sum()
        print(f"ridge {ridge:g}: R^2 of the head's raw outputs on validation {float(r2):.3f}; linear read-out of A (val):",
              {k: round(v, 4) for k, v in validate(per_clip(pred_va, ids_va), t_va).items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
