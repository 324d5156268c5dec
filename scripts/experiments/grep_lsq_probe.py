"""How much of the pre-training head's output can a GREP head read linearly from the pooled embedding A?

Fits, by ridge regression on the TRAINING clips, a linear map from A (frozen tokenizer + frozen
text encoder, evaluation template) to the pre-training head's raw outputs, then scores on the
VALIDATION clips (never the test set): (1) the tokenizer with its own head, (2) that linear
read-out of A. If (2) is close to (1), a GREP head initialised this way would start at the
tokenizer's level instead of from scratch.

    python scripts/experiments/grep_lsq_probe.py --bench bench_out [--ridge 1e-3]
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
    parser.add_argument("--bench", required=True)
    parser.add_argument("--ridge", type=float, default=1e-3, help="ridge weight relative to mean diag(A'A)")
    args = parser.parse_args(argv)

    import torch

    from seld.accdoa import activate_output
    from seld.config import load_config
    from seld.data.dataset import SeldDataset
    from seld.metrics import MetricConfig
    from seld.text.templates import TEMPLATES
    from seld.train.data import make_validator
    from seld.train.stages import FinetuneConfig, _pretrained_parts, build_finetune_task, data_record

    torch.set_num_threads(1)
    bench = Path(args.bench)
    pre = bench / "runs" / "pretrain" / "checkpoints" / "best_f.pt"
    cfg = load_config(ROOT / "configs/benchmark/finetune_grep.yml", FinetuneConfig,
                      [f"data.features_dir={bench / 'features'}", f"model.pretrained={pre}"])
    task = build_finetune_task(cfg, data_record(cfg.data)).eval()
    _, pre_model = _pretrained_parts(str(pre))
    pre_model.eval()
    template = [TEMPLATES[cfg.eval_template]]

    def collect(split: str):
        ds = SeldDataset(bench / "features" / f"{split}.h5", bench / "features" / "normalization.json",
                         cfg.data.streams, train=False)
        a_rows, y_rows, own, targets = [], [], {}, {}
        with torch.no_grad():
            for i in range(len(ds)):
                it = ds[i]
                src, doa, dist = (it[k][None] for k in ("src", "doa", "dist"))
                tokens = task.tokenizer(src, doa, dist)
                a_rows.append(task.encode(src, doa, dist, template)[1][0])
                raw = pre_model.head.linear(tokens.flatten(-2))[0]
                y_rows.append(raw)
                own[it["clip_id"]] = activate_output(raw).numpy()
                targets[it["clip_id"]] = it["target"].numpy()
        return torch.cat(a_rows), torch.cat(y_rows), own, targets

    a_tr, y_tr, _, _ = collect("train")
    a_va, y_va, own_va, t_va = collect("val")
    x = torch.cat([a_tr, torch.ones(len(a_tr), 1)], 1).double()
    gram = x.T @ x
    lam = args.ridge * gram.diagonal().mean()
    w = torch.linalg.solve(gram + lam * torch.eye(len(gram), dtype=gram.dtype), x.T @ y_tr.double())
    pred_va = (torch.cat([a_va, torch.ones(len(a_va), 1)], 1).double() @ w).float()
    r2 = 1 - ((pred_va - y_va) ** 2).sum() / ((y_va - y_va.mean(0)) ** 2).sum()
    validate = make_validator(MetricConfig())
    n = 50
    probe = {cid: activate_output(pred_va[i * n:(i + 1) * n]).numpy() for i, cid in enumerate(own_va)}
    print(f"A: {tuple(a_tr.shape)} train rows; ridge {args.ridge}; R^2 of the head's raw outputs on validation: {float(r2):.3f}")
    print("tokenizer + its own head (val):", {k: round(v, 4) for k, v in validate(own_va, t_va).items()})
    print("linear read-out of A (val):    ", {k: round(v, 4) for k, v in validate(probe, t_va).items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
