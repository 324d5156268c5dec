"""``seld features``: extract per-clip features, merge them per split, compute normalisation.

    seld features --config features/config.yml [key=value ...]        # extract + merge + stats
    seld features merge --config features/config.yml [key=value ...]  # merge + stats only
    seld features extract --config features/config.yml [key=value ...]  # extract only

``--config`` is required, as for the other config-driven commands. Overrides use the config's
dotted keys, e.g. ``workers=8 wpe.iterations=3``. Each failed clip is printed with its reason
(and the count) as soon as extraction ends, before any merge; the exit code is then 1. Clips with
silent audio are warned about by file name while extracting and counted in the summary line.
Only one ``seld features`` at a time may write an output folder (the second stops with a message
naming the first).
"""
from __future__ import annotations

import argparse
import sys

from seld.commands._common import add_progress_argument, require_config, resolve_progress

HELP = "Extract features to HDF5 (per clip), merge them per split and compute normalisation statistics."
ACTIONS = ("all", "extract", "merge")


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", "-c", default=None,
        help="feature config YAML (required; shipped: features/config.yml, configs/quickstart/features.yml)",
    )
    add_progress_argument(parser)


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


def parse_rest(args: argparse.Namespace) -> tuple[str, list[str], str | None, bool | None]:
    """(action, overrides, config, progress flag or None) from the parsed options and the collected rest."""
    rest = argparse.ArgumentParser(prog="seld features", description=HELP)
    _options(rest)
    rest.add_argument("positional", nargs="*")
    extra = rest.parse_intermixed_args(args.args)
    action, overrides = split_action(extra.positional)
    config = extra.config if extra.config is not None else args.config
    progress = extra.progress if extra.progress is not None else args.progress
    return action, overrides, config, progress


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
    """Run ``action`` on the config (None: the built-in defaults); print failures; return the exit code.

    The summary line and every failed clip with its reason are printed right after extraction,
    before the merge (which may then stop, e.g. when every clip of a split failed). Extraction and
    merge each lock the output folder.
    """
    from seld.config import load_config
    from seld.features.config import FeatureConfig
    from seld.features.extract import extract_features, output_lock
    from seld.features.merge import merge_splits

    cfg = load_config(config, FeatureConfig, overrides)
    code = 0
    if action in ("all", "extract"):
        report = extract_features(cfg, progress=progress)  # locks the output folder itself
        print(report.summary())
        sys.stdout.flush()
        for line in report.failure_lines():
            print(line, file=sys.stderr)
        sys.stderr.flush()
        if report.failed:
            code = 1
    if action in ("all", "merge"):
        with output_lock(cfg.output_dir, create=False):
            paths = merge_splits(cfg, progress=progress)
        for p in paths:
            print(f"merged: {p}")
    return code


def run(args: argparse.Namespace) -> int:
    action, overrides, config, progress = parse_rest(args)
    return run_features(require_config(config, "features"), action, overrides, progress=resolve_progress(progress))
