"""``seld baseline``: train the DCASE2025 baseline CRNN with the same engine, features and metric."""
from __future__ import annotations

import argparse

from seld.commands._common import add_config_arguments

HELP = "Train the DCASE2025 baseline CRNN (audio-only, multi-ACCDOA) with ADPIT; resumes from <out_dir>/checkpoints/last.pt."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, "baseline")


def run(args: argparse.Namespace) -> int:
    from seld.commands._common import require_config, resolve_progress
    from seld.config import dump_config, load_config
    from seld.train.stages import BaselineConfig, run_baseline

    cfg = load_config(require_config(args.config, "baseline"), BaselineConfig, args.overrides)
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    if not resolve_progress(args.progress):
        cfg.train.progress = False
    run_baseline(cfg)
    return 0
