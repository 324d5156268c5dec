"""``seld synth``: write a simulated DCASE2025-style stereo SELD set (spec section 7)."""
from __future__ import annotations

import argparse

from seld.commands._common import add_progress_argument, resolve_progress

HELP = "Simulate a DCASE2025-layout stereo SELD dataset (shoebox rooms, 13 procedural classes)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset root to write (stereo_dev/, metadata_dev/)")
    parser.add_argument("--clips", required=True, type=int, metavar="N", help="number of 5 s clips")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument(
        "--config", default=None, metavar="FILE", help="generator YAML (default: built-in values, see configs/synth.yml)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, metavar="W", help="parallel processes (default: CPU count; 1 = serial)"
    )
    add_progress_argument(parser)
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. events.max_polyphony=2 mix.snr_db=[20,30]"
    )


def run(args: argparse.Namespace) -> int:
    from seld.errors import ConfigError
    from seld.sim.generate import generate_dataset, summarize_dataset
    from seld.sim.scenes import load_synth_config

    if args.clips < 1:
        raise ConfigError(f"--clips must be >= 1, got {args.clips}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    cfg = load_synth_config(args.config, args.overrides)
    report = generate_dataset(args.out, args.clips, args.seed, cfg, workers=args.workers, progress=resolve_progress(args.progress))
    print(report)
    print(summarize_dataset(args.out))
    return 0
