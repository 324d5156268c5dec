"""``seld evaluate``: score a folder of DCASE2025 prediction CSVs against reference CSVs."""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from seld.commands._common import add_progress_argument, resolve_progress

if TYPE_CHECKING:
    from seld.metrics import SeldScores

HELP = "Score prediction CSVs against reference CSVs with the DCASE2025 SELD metric (F, DOAE, RDE)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, metavar="DIR", help="flat folder of prediction CSVs")
    parser.add_argument(
        "--ref", required=True, metavar="DIR",
        help="folder of reference CSVs, directly or in split sub-folders (e.g. metadata_dev)",
    )
    parser.add_argument(
        "--strict", action="store_true",
        help="score all 50 frames of every reference clip; a missing prediction counts as all misses "
        "(default: the official dcase2025 behaviour)",
    )
    parser.add_argument("--average", choices=("macro", "micro"), default="macro", help="class averaging")
    parser.add_argument("--doa-threshold", type=float, default=20.0, metavar="DEG", help="angular threshold")
    parser.add_argument(
        "--rel-dist-threshold", type=float, default=1.0, metavar="R", help="relative distance threshold"
    )
    parser.add_argument(
        "--abs-dist-threshold", type=float, default=None, metavar="M",
        help="optional absolute distance threshold in metres (not used by DCASE2025)",
    )
    parser.add_argument(
        "--jackknife", action="store_true",
        help="add 95%% leave-one-clip-out jackknife confidence intervals, built on the logit scale for F "
        "(in [0, 1]) and DOAE (in [0, 180] deg) and on the log scale for RDE, so no interval goes below 0 "
        "(the official raw-scale t interval can); a value of 0 falls back to the raw interval clipped at 0",
    )
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the scores as JSON")
    add_progress_argument(parser)


def _num(value: float) -> float | None:
    """JSON has no NaN: write None instead."""
    return value if value == value and abs(value) != float("inf") else None


def evaluation_warnings(scores: "SeldScores", pred: str) -> list[str]:
    """Lines for what was not scored: references without a prediction CSV (dcase2025 mode skips
    them, as the official code does; exit status unchanged) and predicted events past their clip's end."""
    lines = []
    if scores.mode == "dcase2025" and scores.n_missing_prediction:
        total = scores.n_clips + scores.n_missing_prediction
        lines.append(f"warning: {scores.n_missing_prediction} of {total} reference clip(s) have no prediction CSV in "
                     f"{pred} and were not scored (the official dcase2025 behaviour); --strict counts them as misses")
    if scores.n_pred_past_end:
        lines.append(f"warning: {scores.n_pred_past_end} predicted event(s) in {pred} lie past their clip's end (frame "
                     f">= {scores.config.num_frames}, after the last reference frame) and were not scored, as the "
                     "official code ignores them")
    return lines


def run(args: argparse.Namespace) -> int:
    from seld.io_utils import atomic_write_text
    from seld.metrics import MetricConfig, SeldScorer, evaluate_folders, format_table

    cfg = MetricConfig(
        mode="strict" if args.strict else "dcase2025",
        doa_threshold_deg=args.doa_threshold,
        rel_dist_threshold=args.rel_dist_threshold,
        abs_dist_threshold_m=args.abs_dist_threshold,
        average=args.average,
    )
    progress = resolve_progress(args.progress)
    jackknife = None
    if args.jackknife:
        scorer = SeldScorer(cfg)
        scores = evaluate_folders(args.pred, args.ref, cfg, progress=progress, scorer=scorer)
        jackknife = scorer.jackknife() if scorer.n_clips >= 2 else None
    else:
        scores = evaluate_folders(args.pred, args.ref, cfg, progress=progress)
    print(format_table(scores, jackknife))
    for line in evaluation_warnings(scores, args.pred):
        print(line, file=sys.stderr)
    if args.json:
        payload = scores.to_dict()
        if jackknife is not None:
            payload["jackknife"] = {
                k: {"estimate": _num(v.estimate), "std_err": _num(v.std_err), "ci": [_num(v.ci_low), _num(v.ci_high)]}
                for k, v in jackknife.items()
            }
        atomic_write_text(args.json, json.dumps(payload, indent=2, allow_nan=False) + "\n")
        print(f"\nwrote {args.json}")
    return 0
