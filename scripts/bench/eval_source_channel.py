"""Validation scores of one checkpoint with each evaluation choice of the source channel
(``data.streams.src_eval``: mid | l | r | mean_lr), on the merged feature file of a split.

Usage: python scripts/bench/eval_source_channel.py --checkpoint RUN/checkpoints/best_f.pt
       --features-dir DIR --split dev-test-synth [--normalization JSON] [--options mid l r mean_lr] [--batch 8]

Prints one line per option: F (%), DOAE (deg), RDE, with the DCASE2025 metric of the config's
defaults. The source-channel choice in training is whatever the checkpoint was trained with.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seld.data.dataset import SOURCE_EVAL_VIEWS, SeldDataset, source_view_batches  # noqa: E402
from seld.metrics import MetricConfig  # noqa: E402
from seld.tasks.loading import load_task  # noqa: E402
from seld.train.data import make_validator  # noqa: E402


@torch.no_grad()
def evaluate(checkpoint: str, features_dir: str, split: str, option: str, batch: int,
             normalization: str | None = None) -> dict[str, float]:
    """DCASE2025 F / DOAE / RDE of ``checkpoint`` on ``split`` with ``src_eval = option``."""
    loaded = load_task(checkpoint)
    streams = dataclasses.replace(loaded.streams, src_eval=option)
    norm = normalization or Path(features_dir) / "normalization.json"
    ds = SeldDataset(Path(features_dir) / f"{split}.h5", norm, streams, train=False)
    preds, targets = {}, {}
    for b in DataLoader(ds, batch_size=batch):
        out = torch.stack([loaded.task.predict(v["src"], v["doa"], v["dist"]) for v in source_view_batches(b)]).mean(0)
        for cid, o, t in zip(b["clip_id"], out.numpy(), b["target"].numpy()):
            preds[cid], targets[cid] = o, t
    return make_validator(MetricConfig())(preds, targets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--features-dir", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--normalization", default=None, help="statistics of the training split (default: <features-dir>/normalization.json)")
    parser.add_argument("--options", nargs="+", default=list(SOURCE_EVAL_VIEWS), choices=list(SOURCE_EVAL_VIEWS))
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    print(f"{'src_eval':10s} {'F %':>7s} {'DOAE':>7s} {'RDE':>7s}")
    for option in args.options:
        s = evaluate(args.checkpoint, args.features_dir, args.split, option, args.batch, args.normalization)
        print(f"{option:10s} {100 * s['F']:7.2f} {s['DOAE']:7.2f} {s['RDE']:7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
