"""``seld infer``: DCASE2025 CSVs for stereo recordings of any length."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from seld.commands._common import add_recording_arguments, device_name, resolve_progress

if TYPE_CHECKING:
    from seld.inference import InferenceReport

HELP = ("Run a trained checkpoint on stereo 24 kHz WAV files (any length) and write DCASE2025 CSVs, with "
        "infer_manifest.json (checkpoint, settings, files written); --out is locked while it runs.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recording_arguments(parser, "folder for the CSVs (one per recording)",
                            "a training checkpoint of any stage (seld pretrain, finetune or baseline)")
    parser.add_argument("--threshold", type=float, default=0.5, help="activity threshold (default 0.5)")
    parser.add_argument("--merge-deg", type=float, default=15.0, help="merge same-class tracks closer than this")
    parser.add_argument("--captions", action="store_true",
                        help="also write <recording>.captions.jsonl (one sentence per frame and per segment of "
                        "unchanged events) and .captions.txt (the segments) beside each CSV, with the templates and "
                        "rules of the ground-truth sentences")


def run(args: argparse.Namespace) -> int:
    from seld.inference import InferenceOptions, infer_to_csv, list_audio, set_threads, write_manifest
    from seld.locks import FolderLock
    from seld.query import caption_writer
    from seld.tasks.loading import load_task

    progress = resolve_progress(args.progress)
    set_threads(args.num_threads)
    device = device_name(args.device)
    started = time.time()
    model = load_task(args.checkpoint, device)
    list_audio(args.audio)  # a bad checkpoint or audio path stops here, leaving no --out folder behind
    opts = InferenceOptions(threshold=args.threshold, merge_deg=args.merge_deg, batch_size=args.batch_size,
                            resample=args.resample, mono_to_stereo=args.mono_to_stereo)
    on_events = caption_writer(model) if args.captions else None  # <clip>.captions.* beside each CSV
    with FolderLock(args.out, "seld infer"):  # a folder in use stops the run, naming the holder
        report = infer_to_csv(model, args.audio, args.out, opts, device, progress=progress, on_events=on_events)
        manifest = write_manifest(args.out, args.checkpoint, args.audio, opts, report, started,
                                  extra={"captions": bool(args.captions)})
    for line in report.failure_lines():
        print(line, file=sys.stderr)
    print(summary_line(args.out, report, manifest))
    return 0 if report.ok else 1


def summary_line(out: str, report: "InferenceReport", manifest: Path) -> str:
    """'wrote N CSV file(s) to OUT (manifest: ...)', and what else the folder holds: stale CSVs
    removed (their recording failed now) and CSVs of earlier runs."""
    from seld.inference import earlier_csvs

    line = f"wrote {len(report.written)} CSV file(s) to {out} (manifest: {manifest})"
    if report.removed:
        line += (f"; removed {len(report.removed)} stale CSV(s) of an earlier run whose recording failed now: "
                 + ", ".join(p.name for p in report.removed))
    earlier = earlier_csvs(out, report)
    if earlier:
        line += f"; {len(earlier)} other CSV(s) there are from earlier runs (listed in the manifest)"
    return line
