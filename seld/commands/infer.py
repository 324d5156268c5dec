"""``seld infer``: DCASE2025 CSVs for stereo recordings of any length."""
from __future__ import annotations

import argparse
import sys

from seld.commands._common import add_recording_arguments, device_name, resolve_progress

HELP = "Run a trained checkpoint on stereo 24 kHz WAV files (any length) and write DCASE2025 CSVs."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recording_arguments(parser, "folder for the CSVs (one per recording)")
    parser.add_argument("--threshold", type=float, default=0.5, help="activity threshold (default 0.5)")
    parser.add_argument("--merge-deg", type=float, default=15.0, help="merge same-class tracks closer than this")
    parser.add_argument("--captions", action="store_true",
                        help="also write <recording>.captions.jsonl (one sentence per frame and per segment of "
                        "unchanged events) and .captions.txt (the segments) beside each CSV, with the templates and "
                        "rules of the ground-truth sentences")


def run(args: argparse.Namespace) -> int:
    from seld.inference import InferenceOptions, infer_to_csv, set_threads
    from seld.query import caption_writer
    from seld.train.stages import load_task

    progress = resolve_progress(args.progress)
    set_threads(args.num_threads)
    device = device_name(args.device)
    model = load_task(args.checkpoint, device)
    opts = InferenceOptions(threshold=args.threshold, merge_deg=args.merge_deg, batch_size=args.batch_size,
                            resample=args.resample, mono_to_stereo=args.mono_to_stereo)
    on_events = caption_writer(model) if args.captions else None  # <clip>.captions.* beside each CSV
    report = infer_to_csv(model, args.audio, args.out, opts, device, progress=progress, on_events=on_events)
    for line in report.failure_lines():
        print(line, file=sys.stderr)
    print(f"wrote {len(report.written)} CSV file(s) to {args.out}")
    return 0 if report.ok else 1
