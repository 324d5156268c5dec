"""Extract features of every clip of the configured splits, merge them and compute normalisation.

    python features/feature_extraction.py [--config features/config.yml] [key=value ...]

A thin wrapper of ``seld features``: the work is done by :mod:`seld.features`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seld.commands.features import run_features
from seld.errors import SeldError


def main(argv: list[str] | None = None, action: str = "all", description: str | None = None) -> int:
    """Parse ``--config`` and overrides, run ``action`` (all | extract | merge); the exit code."""
    parser = argparse.ArgumentParser(description=description or __doc__.splitlines()[0])
    parser.add_argument("--config", default=str(Path(__file__).with_name("config.yml")))
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        return run_features(args.config, action, args.overrides, progress=not args.no_progress)
    except SeldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
