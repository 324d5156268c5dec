"""Parameter counts (total / trainable) of the default pre-training models, part by part, and
optionally the time of one forward + backward pass.

Usage: python scripts/bench/model_summary.py [--source rcc beats] [--config model.yaml] [--time]
       [--batch 8] [--device cpu|cuda] [--repeats 3]

Counts are taken on the "meta" device (no memory, instant); ``--time`` builds the model for real
(random init; a BEATs checkpoint named in --config is read) and times a pre-training step on
random (batch, C, 250, 64) inputs.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seld.config import load_config  # noqa: E402
from seld.models import ModelConfig, PretrainModel  # noqa: E402
from seld.models.summary import format_counts, part_counts, pretrain_parts  # noqa: E402


def time_step(model: PretrainModel, batch: int, device: str, repeats: int) -> float:
    """Mean seconds of one forward + backward pass."""
    model.to(device).train()
    cfg = model.cfg.tokenizer
    c_src = cfg.source_config.in_channels
    x = [torch.randn(batch, c, 250, 64, device=device) for c in (c_src, cfg.doa.in_channels, cfg.dist.in_channels)]
    times = []
    for i in range(repeats + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(*x).square().mean().backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i:  # first pass is warm-up
            times.append(time.perf_counter() - t0)
        model.zero_grad(set_to_none=True)
    return sum(times) / len(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", nargs="+", default=["rcc", "beats"], help="source encoders to summarise")
    parser.add_argument("--config", default=None, help="model YAML (ModelConfig); defaults when omitted")
    parser.add_argument("--time", action="store_true", help="also time one forward + backward pass")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    for source in args.source:
        cfg = load_config(args.config, ModelConfig, overrides=[f"tokenizer.source_encoder={source}"])
        with torch.device("meta"):
            model = PretrainModel(cfg, load_pretrained=False)
        print(f"\n== {source.upper()} tokenizer + pre-training head ==")
        print(format_counts(part_counts(pretrain_parts(model))))
        if args.time:
            torch.manual_seed(0)
            model = PretrainModel(cfg)
            sec = time_step(model, args.batch, args.device, args.repeats)
            print(f"forward + backward, batch {args.batch} on {args.device}: {sec * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
