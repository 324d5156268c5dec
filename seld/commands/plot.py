"""``seld plot``: reference vs predicted tracks of one clip, or learning curves of runs, as PNG."""
from __future__ import annotations

import argparse

HELP = "Plot a clip's reference vs predicted tracks (activity, azimuth, distance) or runs' learning curves (PNG)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", metavar="DIR", help="folder of predicted DCASE2025 CSVs (seld infer --out)")
    parser.add_argument("--ref", metavar="DIR", help="folder of reference CSVs (searched recursively)")
    parser.add_argument("--clip", metavar="NAME", help="clip name (file stem, with or without .csv)")
    parser.add_argument(
        "--runs", nargs="+", metavar="RUN_DIR",
        help="instead of a clip: learning curves of these training runs (their train.out_dir)",
    )
    parser.add_argument("--out", required=True, metavar="FILE.png", help="image to write")


def run(args: argparse.Namespace) -> int:
    from seld.errors import ConfigError
    from seld.plots import plot_clip_tracks, plot_learning_curves

    if args.runs:
        from pathlib import Path

        labels = [Path(p).name or p for p in args.runs]
        if len(set(labels)) < len(labels):  # same folder names: keep the paths
            labels = list(args.runs)
        path = plot_learning_curves(dict(zip(labels, args.runs)), args.out)
    else:
        if not (args.pred and args.ref and args.clip):
            raise ConfigError("give --pred, --ref and --clip (or --runs for learning curves)")
        path = plot_clip_tracks(args.pred, args.ref, args.clip, args.out)
    print(f"wrote {path}")
    return 0
