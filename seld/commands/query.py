"""``seld query``: ask a fine-tuned model in words.

Two modes, chosen by what is given with ``--text``:

- ``--index EMB.h5`` (a file of ``seld embed``): the frames and clips whose audio-driven embedding
  A is closest (cosine) to the text's embedding by the checkpoint's own frozen text encoder, with
  the events the model decoded there. The index names its checkpoint; ``--checkpoint`` may point
  to the same file moved, and any other checkpoint is an error.
- ``--checkpoint CKPT --audio FILE_OR_DIR``: the track (frames, azimuth, distance) of the class
  the text names ("where is the telephone?"), the class being read from the text encoder
  (:class:`seld.query.ClassMatcher`); a text that names no class is answered "no match" (exit 0).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from seld.commands._common import add_audio_arguments, device_name, positive_int, resolve_progress
from seld.constants import LABEL_HOP_SECONDS

HELP = "Ask a fine-tuned model in words: rank the frames of a seld embed index, or find the track of the class a text names."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from seld.text.paraphrases import DEFAULT_MATCH_THRESHOLD

    parser.add_argument("--text", required=True, help='the query, e.g. "a woman speaking on the left" or "where is the phone?"')
    parser.add_argument("--index", metavar="EMB.h5", default=None, help="rank the frames of this seld embed file")
    parser.add_argument("--audio", metavar="FILE_OR_DIR", default=None,
                        help="find the queried class's track in this WAV file or folder (needs --checkpoint)")
    parser.add_argument("--checkpoint", metavar="CKPT", default=None,
                        help="fine-tuned checkpoint (with --index: default the one the index records; must be that file)")
    parser.add_argument("--top", type=positive_int, default=10, metavar="N", help="frames and clips to list (default 10)")
    parser.add_argument("--json", metavar="OUT", default=None, help="also write the answer to this JSON file")
    parser.add_argument("--match-threshold", type=float, default=DEFAULT_MATCH_THRESHOLD, metavar="X",
                        help="class step: centred cosine below which the text names no class "
                        f"(default {DEFAULT_MATCH_THRESHOLD})")
    parser.add_argument("--threshold", type=float, default=0.5, help="activity threshold of decoding (default 0.5)")
    parser.add_argument("--merge-deg", type=float, default=15.0, help="merge same-class tracks closer than this")
    add_audio_arguments(parser)


def _write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        from seld.io_utils import atomic_write_text

        atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {path}")


def _events_words(events: list[Any]) -> str:
    """``"telephone 30° 2 m; man −40° 1.5 m"``, or ``-`` for a silent frame."""
    from seld.constants import SHORT_CLASS_NAMES
    from seld.text.sentences import format_azimuth

    return "; ".join(f"{SHORT_CLASS_NAMES[e.class_idx]} {format_azimuth(e.azimuth)} {e.distance_cm / 100:g} m"
                     for e in events) or "-"


def _run_retrieval(args: argparse.Namespace) -> int:
    from seld.embeddings import read_embedding_index
    from seld.query import check_index_checkpoint, retrieve
    from seld.tasks.loading import load_task

    index = read_embedding_index(args.index)
    checkpoint = check_index_checkpoint(index, args.checkpoint)
    model = load_task(checkpoint, device_name(args.device))
    result = retrieve(index, model, args.text, args.top, str(checkpoint), args.threshold, args.merge_deg)
    print(f'query: "{args.text}" ({result.n_frames} frames of {len(index.embeddings)} recording(s), checkpoint {checkpoint})')
    for title, hits in (("best frames", result.frames), ("best clips (at their best frame)", result.clips)):
        print(f"{title}:")
        print(f"{'rank':>4}  {'clip':<28} {'frame':>5}  {'time (s)':<11} {'score':>6}  decoded events")
        for rank, h in enumerate(hits, 1):
            events = _events_words(h.events) if h.caption is not None else "(index stores no outputs)"
            time = f"{h.frame * LABEL_HOP_SECONDS:.1f}-{(h.frame + 1) * LABEL_HOP_SECONDS:.1f}"
            print(f"{rank:>4}  {h.clip:<28} {h.frame:>5}  {time:<11} {h.score:>6.3f}  {events}")
    _write_json(args.json, result.to_dict())
    return 0


def _run_localisation(args: argparse.Namespace) -> int:
    from seld.inference import InferenceOptions, finetuned_task
    from seld.query import ClassMatcher, class_embedder, localise_class
    from seld.tasks.loading import load_task

    model = load_task(args.checkpoint, device_name(args.device))
    task = finetuned_task(model, f"{args.checkpoint}: class queries need")
    match = ClassMatcher(class_embedder(task), args.match_threshold).match([args.text])[0]
    answer: dict[str, Any] = {"query": args.text, "class": match.name, "class_idx": match.class_idx,
                              "score": match.score, "threshold": match.threshold}
    if match.class_idx is None:
        from seld.constants import SHORT_CLASS_NAMES

        closest = SHORT_CLASS_NAMES[match.best_class]
        print(f'no match: "{args.text}" names none of the 13 classes (closest: {closest}, score {match.score:.3f} '
              f"< threshold {match.threshold:g})")
        _write_json(args.json, {**answer, "closest": closest, "recordings": None})
        return 0
    print(f'"{args.text}" -> {match.name} (score {match.score:.3f}, threshold {match.threshold:g})')
    opts = InferenceOptions(threshold=args.threshold, merge_deg=args.merge_deg, batch_size=args.batch_size,
                            resample=args.resample, mono_to_stereo=args.mono_to_stereo)
    tracks, report = localise_class(model, args.audio, match.class_idx, opts, device_name(args.device))
    for track in tracks:
        segments = track.segments
        if not segments:
            print(f"{track.audio.name}: {match.name} not detected ({track.label_frames} frames)")
            continue
        print(f"{track.audio.name}: {match.name} in {len({e.frame for e in track.events})} of {track.label_frames} frames")
        for s in segments:
            print(f"  source {s.source}: frames {s.start_frame}-{s.end_frame - 1} ({s.start_frame * LABEL_HOP_SECONDS:.1f}-"
                  f"{s.end_frame * LABEL_HOP_SECONDS:.1f} s), azimuth {s.azimuth_deg:g}°, distance {s.distance_m:g} m (medians)")
    for line in report.failure_lines():
        print(line, file=sys.stderr)
    _write_json(args.json, {**answer, "recordings": [t.to_dict() for t in tracks],
                            "failed": [{"audio": str(p), "reason": r} for p, r in report.failed]})
    return 0 if report.ok else 1


def run(args: argparse.Namespace) -> int:
    from seld.errors import ConfigError
    from seld.inference import set_threads

    resolve_progress(args.progress)
    set_threads(args.num_threads)

    if (args.index is None) == (args.audio is None):
        raise ConfigError("give either --index EMB.h5 (rank its frames) or --audio FILE_OR_DIR with --checkpoint "
                          "(find the queried class's track)")
    if args.audio is not None and args.checkpoint is None:
        raise ConfigError("--audio needs --checkpoint CKPT (the fine-tuned model to run)")
    if args.index is not None:
        return _run_retrieval(args)
    return _run_localisation(args)
