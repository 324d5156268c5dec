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


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default=None, help="feature config YAML (default: built-in defaults)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _options(parser)
    # REMAINDER so that options may also follow the action or the overrides
    # (`seld features merge --config F a=b`); run() parses what it collects.
    parser.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        metavar="[ACTION] [KEY=VALUE ...]",
        help="optional action (all | extract | merge; default all), then config overrides",
    )


def parse_rest(args: argparse.Namespace) -> tuple[str, list[str], str | None, bool]:
    """(action, overrides, config, progress) from the parsed options and the collected rest."""
    rest = argparse.ArgumentParser(prog="seld features", description=HELP)
    _options(rest)
    rest.add_argument("positional", nargs="*")
    extra = rest.parse_intermixed_args(args.args)
    action, overrides = split_action(extra.positional)
    config = extra.config if extra.config is not None else args.config
    return action, overrides, config, not (args.no_progress or extra.no_progress)


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
    action, overrides, config, progress = parse_rest(args)
    return run_features(config, action, overrides, progress=progress)
