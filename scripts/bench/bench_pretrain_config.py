"""Training clips/s of a pre-training config on its own features, for several variants side by side.

Usage: python scripts/bench/bench_pretrain_config.py --features DIR [--config configs/benchmark/pretrain.yml]
                                                     [--steps 12] [--warmup 2] [--threads 1]
                                                     [--variant "KEY=VALUE KEY=VALUE" ...]

Each ``--variant`` is a set of config overrides (space-separated, the syntax of ``seld pretrain``);
no ``--variant`` = the config as it is. For each it builds the tokenizer from the seed, reads
training batches from ``DIR`` (``data.features_dir``) and times full steps (forward, ADPIT loss,
backward, Adam) in this one process, printing the parameter count, the median ms per step over
``--steps`` after ``--warmup`` and the training clips/s. This is how the benchmark's pre-training
width and batch size were compared (docs/results/README.md); a figure taken while another job runs
on the same cores is not a figure.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from bench_training import time_optimizer_steps  # noqa: E402
from torch.utils.data import DataLoader, default_collate  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def time_variant(config: str, features: str, overrides: list[str], steps: int, warmup: int) -> dict[str, Any]:
    """Median seconds per training step of ``config`` + ``overrides`` on the features in ``features``."""
    from seld.config import load_config
    from seld.tasks.pretrain import PretrainConfig, build_pretrain_task
    from seld.tasks.runner import data_record
    from seld.train.data import build_stage_datasets

    cfg = load_config(config, PretrainConfig, [f"data.features_dir={features}", *overrides])
    train_set, _, _ = build_stage_datasets(cfg.data, seed=cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    task = build_pretrain_task(cfg, data_record(cfg.data))
    batch_size = cfg.train.batch_size
    generator = torch.Generator().manual_seed(cfg.train.seed)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=default_collate,
                        generator=generator)
    if len(loader) == 0:
        raise SystemExit(f"{features}: fewer training clips ({len(train_set)}) than one batch ({batch_size})")

    def epochs() -> Iterator[dict[str, Any]]:  # shuffled batches, epoch after epoch
        while True:
            yield from loader

    stream = epochs()
    per_step = time_optimizer_steps(task, lambda step: next(stream), steps, warmup, torch.device("cpu"),
                                    lr=cfg.train.lr)
    return {
        "params": sum(p.numel() for p in task.parameters()),
        "seconds_per_step": per_step,
        "clips_per_s": batch_size / per_step,
        "batch_size": batch_size,
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", required=True, help="merged features folder (data.features_dir)")
    parser.add_argument("--config", default=str(ROOT / "configs" / "benchmark" / "pretrain.yml"))
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--variant", action="append", default=None,
                        help='config overrides, space-separated, e.g. "train.batch_size=8" (repeatable)')
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    torch.set_num_threads(args.threads)
    print(f"{args.config} on {args.features}: {args.threads} torch thread(s), median of {args.steps} steps "
          f"after {args.warmup}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    for variant in args.variant or [""]:
        overrides = variant.split()
        name = variant or "(config as is)"
        res = time_variant(args.config, args.features, overrides, args.steps, args.warmup)
        results[name] = res
        print(f"{name}: {res['params']:,} parameters, batch {res['batch_size']}, "
              f"{1000 * res['seconds_per_step']:.0f} ms/step, {res['clips_per_s']:.1f} clips/s", flush=True)
    return results


if __name__ == "__main__":
    main()
