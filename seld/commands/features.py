"""``seld features``: extract per-clip features, merge them per split, compute normalisation.

    seld features --config features/config.yml [key=value ...]        # extract + merge + stats
    seld features merge --config features/config.yml [key=value ...]  # merge + stats only
    seld features extract --config features/config.yml [key=value ...]  # extract only

Overrides use the config's dotted keys, e.g. ``workers=8 wpe.iterations=3``. The exit code is 1
when any clip failed; each failed clip is printed with its reason at the end.
"""
from __future__ import annotations

import argparse
import sys

HELP = "extract features to HDF5 (per clip), merge them per split and compute normalisation stats"
ACTIONS = ("all", "extract", "merge")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "args",
        nargs="*",
        metavar="[ACTION] [KEY=VALUE ...]",
        help="optional action (all | extract | merge; default all), then config overrides",
    )
    parser.add_argument("--config", "-c", default=None, help="feature config YAML (default: built-in defaults)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def split_action(args: list[str]) -> tuple[str, list[str]]:
    """(action, overrides) from the positional arguments."""
    from seld.errors import ConfigError

    action = "all"
    if args and "=" not in args[0]:
        action = args[0]
        args = args[1:]
        if action not in ACTIONS:
            raise ConfigError(f"unknown action '{action}'; valid: {', '.join(ACTIONS)}")
    bad = [a for a in args if "=" not in a]
    if bad:
        raise ConfigError(f"expected KEY=VALUE overrides, got {bad}")
    return action, args


def run_features(config: str | None, action: str, overrides: list[str], progress: bool = True) -> int:
    """Run ``action`` on the config; print failures; return the exit code."""
    from seld.config import load_config
    from seld.features.config import FeatureConfig
    from seld.features.extract import extract_features
    from seld.features.merge import merge_splits

    cfg = load_config(config, FeatureConfig, overrides)
    code = 0
    if action in ("all", "extract"):
        report = extract_features(cfg, progress=progress)
        print(f"features: {report.done} clips computed, {report.skipped} already done, {len(report.failed)} failed")
        if report.failed:
            code = 1
    else:
        report = None
    if action in ("all", "merge"):
        paths = merge_splits(cfg, progress=progress)
        for p in paths:
            print(f"merged: {p}")
    if report is not None and report.failed:
        print(f"{len(report.failed)} clip(s) failed:", file=sys.stderr)
        for clip, reason in report.failed:
            print(f"  {clip}: {reason}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    action, overrides = split_action(args.args)
    return run_features(args.config, action, overrides, progress=not args.no_progress)
