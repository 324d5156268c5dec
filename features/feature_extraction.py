"""Extract features of every clip of the configured splits, merge them and compute normalisation.

    python features/feature_extraction.py [--config features/config.yml] [key=value ...]

A thin wrapper of ``seld features``: the work is done by :mod:`seld.features`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seld.commands._common import add_progress_argument, resolve_progress
from seld.commands.features import run_features
from seld.errors import SeldError


def main(argv: list[str] | None = None, action: str = "all", description: str | None = None) -> int:
    """Parse ``--config`` and overrides, run ``action`` (all | extract | merge); the exit code."""
    parser = argparse.ArgumentParser(description=description or __doc__.splitlines()[0])
    parser.add_argument(
        "--config", default=str(Path(__file__).resolve().with_name("config.yml")),
        help="feature config YAML (default: the config.yml next to this script)",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    add_progress_argument(parser)
    args = parser.parse_args(argv)
    try:
        return run_features(args.config, action, args.overrides, progress=resolve_progress(args.progress))
    except SeldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
