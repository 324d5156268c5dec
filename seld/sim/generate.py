"""A simulated DCASE2025-style stereo SELD set on disk (spec section 7): ``seld synth``.

Layout written by :func:`generate_dataset` (``fold`` prefixes from the config)::

    <out>/stereo_dev/dev-train-synth/fold3_room<R>_mix<MMM>.wav   <out>/metadata_dev/dev-train-synth/....csv
    <out>/stereo_dev/dev-test-synth/fold4_room<R>_mix<MMM>.wav    <out>/metadata_dev/dev-test-synth/....csv
    <out>/synth_config.yml      seed, clip count and the resolved config (checked when resuming)

Every clip is a pure function of ``(seed, clip index, config)`` (:func:`seld.sim.scenes.render_clip`),
so serial, parallel and resumed runs write identical files. :func:`summarize_dataset` prints what a
set holds.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seld.config import dump_config, to_dict
from seld.constants import (
    LABEL_FRAMES,
    LABEL_HOP_SECONDS,
    NUM_CLASSES,
    SHORT_CLASS_NAMES,
    SYNTH_TEST_SPLIT,
    SYNTH_TRAIN_SPLIT,
)
from seld.data.audio import write_stereo
from seld.data.layout import audio_dir, metadata_dir
from seld.data.metadata import Event, read_metadata_csv, write_metadata_csv
from seld.errors import ConfigError, DataError
from seld.io_utils import atomic_write_text
from seld.sim.scenes import SynthConfig, clip_rng, render_clip

STAMP_NAME = "synth_config.yml"


# ---------------------------------------------------------------- the dataset
@dataclass(frozen=True)
class ClipJob:
    """Where clip ``index`` goes."""

    index: int
    split: str
    stem: str
    wav_path: Path
    csv_path: Path


@dataclass
class SynthReport:
    """What a :func:`generate_dataset` run did."""

    out_dir: Path
    generated: int
    skipped: int
    num_train: int
    num_test: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"{self.out_dir}: {self.generated} clips generated, {self.skipped} already present "
            f"({self.num_train} train, {self.num_test} test) in {self.seconds:.1f} s"
        )


def num_test_clips(num_clips: int, test_fraction: float) -> int:
    """Test clips among ``num_clips``: round(N * fraction), at least 1 (N >= 2, fraction > 0), at most N - 1."""
    if num_clips < 2 or test_fraction <= 0:
        return 0
    return int(min(num_clips - 1, max(1, round(num_clips * test_fraction))))


def plan_clips(out_dir: Path, num_clips: int, seed: int, cfg: SynthConfig) -> list[ClipJob]:
    """The file of every clip; test clips are spread evenly over the indices."""
    n_test = num_test_clips(num_clips, cfg.test_fraction)
    width = max(3, len(str(num_clips)))
    jobs = []
    for i in range(num_clips):
        is_test = (i + 1) * n_test // num_clips > i * n_test // num_clips
        split, fold = (SYNTH_TEST_SPLIT, cfg.test_fold) if is_test else (SYNTH_TRAIN_SPLIT, cfg.train_fold)
        room = int(clip_rng(seed, i).integers(cfg.room.num_rooms)) + 1  # same draw as render_clip
        stem = f"fold{fold}_room{room}_mix{i + 1:0{width}d}"
        wav = audio_dir(out_dir, split) / f"{stem}.wav"
        jobs.append(ClipJob(i, split, stem, wav, metadata_dir(out_dir, split) / f"{stem}.csv"))
    return jobs


def write_clip(job: ClipJob, seed: int, cfg: SynthConfig) -> int:
    """Render and write one clip: the WAV first, then the CSV, each atomically (a CSV implies a WAV)."""
    audio, events, _ = render_clip(seed, job.index, cfg)
    write_stereo(job.wav_path, audio)
    write_metadata_csv(job.csv_path, events)
    return job.index


def _is_finished(job: ClipJob) -> bool:
    return job.csv_path.is_file() and job.wav_path.is_file()


def _check_stamp(out_dir: Path, stamp: str) -> None:
    path = out_dir / STAMP_NAME
    if path.is_file() and path.read_text(encoding="utf-8") != stamp:
        raise ConfigError(
            f"{path}: {out_dir} holds a simulated set made with another seed, clip count or config; "
            "resume with the same settings, or use a new --out folder"
        )
    if not path.is_file():
        atomic_write_text(path, stamp)


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Delete temporary files of writes that a killed run left behind (``.<name>.<random>.tmp``)."""
    for split in (SYNTH_TRAIN_SPLIT, SYNTH_TEST_SPLIT):
        for folder in (audio_dir(out_dir, split), metadata_dir(out_dir, split)):
            if folder.is_dir():
                for tmp in folder.glob(".fold*.tmp"):
                    tmp.unlink(missing_ok=True)


_WORKER: dict = {}


def _init_worker(seed: int, cfg: SynthConfig) -> None:
    _WORKER["seed"], _WORKER["cfg"] = seed, cfg


def _worker_write(job: ClipJob) -> int:
    return write_clip(job, _WORKER["seed"], _WORKER["cfg"])


def generate_dataset(
    out_dir: str | os.PathLike[str],
    num_clips: int,
    seed: int,
    cfg: SynthConfig | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> SynthReport:
    """Write ``num_clips`` simulated clips in the DCASE2025 layout under ``out_dir``; skip finished ones.

    ``workers`` processes (default: CPU count; 1 = in this process) render clips in parallel.
    Raises ConfigError when ``out_dir`` holds a set made with different settings.
    """
    from tqdm import tqdm

    cfg = cfg or SynthConfig()
    if num_clips < 0:
        raise ConfigError(f"number of clips must be >= 0, got {num_clips}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    out = Path(out_dir)
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    _check_stamp(out, dump_config({"seed": int(seed), "num_clips": int(num_clips), "config": to_dict(cfg)}))
    _remove_stale_temporaries(out)
    jobs = plan_clips(out, num_clips, int(seed), cfg)
    for split in (SYNTH_TRAIN_SPLIT, SYNTH_TEST_SPLIT):
        audio_dir(out, split).mkdir(parents=True, exist_ok=True)
        metadata_dir(out, split).mkdir(parents=True, exist_ok=True)
    pending = [j for j in jobs if not _is_finished(j)]
    skipped = len(jobs) - len(pending)
    workers = max(1, min(workers or os.cpu_count() or 1, len(pending) or 1))
    bar = tqdm(total=len(jobs), initial=skipped, desc="synth", unit="clip", disable=not progress)
    try:
        if workers == 1:
            for job in pending:
                write_clip(job, int(seed), cfg)
                bar.update(1)
        else:
            # fork (Linux) needs no `if __name__ == "__main__"` guard in the caller's script and starts
            # fast; the workers use no OpenMP/torch, only numpy/scipy FFTs and pyroomacoustics (1 thread).
            methods = mp.get_all_start_methods()
            ctx = mp.get_context("fork" if "fork" in methods else "spawn")
            pool = ctx.Pool(workers, initializer=_init_worker, initargs=(int(seed), cfg))
            with pool:
                for _ in pool.imap_unordered(_worker_write, pending, chunksize=1):
                    bar.update(1)
    finally:
        bar.close()
    n_test = sum(j.split == SYNTH_TEST_SPLIT for j in jobs)
    return SynthReport(out, len(pending), skipped, len(jobs) - n_test, n_test, time.perf_counter() - t0)


# ---------------------------------------------------------------- summary
def _event_segments(events: list[Event]) -> list[tuple[int, int, int]]:
    """(class, source, frames) for each run of consecutive frames of one (class, source, position)."""
    by_key: dict[tuple, list[int]] = defaultdict(list)
    for e in events:
        by_key[(e.class_idx, e.source, e.azimuth, e.distance_cm)].append(e.frame)
    segments = []
    for (cls, src, _, _), frames in by_key.items():
        frames.sort()
        start = prev = frames[0]
        for f in frames[1:] + [None]:
            if f is None or f != prev + 1:
                segments.append((cls, src, prev - start + 1))
                if f is not None:
                    start = f
            if f is not None:
                prev = f
    return segments


def summarize_dataset(root: str | os.PathLike[str]) -> str:
    """A printable table of a simulated set: clips per split, events per class, polyphony, azimuths, distances."""
    root = Path(root)
    lines: list[str] = []
    splits = [s for s in (SYNTH_TRAIN_SPLIT, SYNTH_TEST_SPLIT) if audio_dir(root, s).is_dir()]
    if not splits:
        raise DataError(f"{root}: no {SYNTH_TRAIN_SPLIT} or {SYNTH_TEST_SPLIT} folder under stereo_dev/")
    class_events: Counter = Counter()
    class_frames: Counter = Counter()
    polyphony: Counter = Counter()
    same_class_frames = 0
    azimuths: list[float] = []
    distances: list[float] = []
    lines.append(f"Simulated SELD set at {root}")
    for split in splits:
        wavs = sorted(audio_dir(root, split).glob("*.wav"))
        labelled = 0
        for wav in wavs:
            csv = metadata_dir(root, split) / f"{wav.stem}.csv"
            if not csv.is_file():
                continue
            labelled += 1
            events = read_metadata_csv(csv, num_frames=LABEL_FRAMES)
            per_frame = Counter(e.frame for e in events)
            for f in range(LABEL_FRAMES):
                polyphony[per_frame.get(f, 0)] += 1
            per_frame_class = Counter((e.frame, e.class_idx) for e in events)
            same_class_frames += sum(1 for v in per_frame_class.values() if v > 1)
            for cls, _, n in _event_segments(events):
                class_events[cls] += 1
                class_frames[cls] += n
            azimuths += [e.azimuth for e in events]
            distances += [e.distance_m for e in events]
        lines.append(f"  {split:<16} {len(wavs):>6} clips ({labelled} labelled)")
    lines.append("")
    lines.append(f"  {'class':<20} {'events':>7} {'seconds':>8}")
    for c in range(NUM_CLASSES):
        seconds = class_frames[c] * LABEL_HOP_SECONDS
        lines.append(f"  {c:>2} {SHORT_CLASS_NAMES[c]:<17} {class_events[c]:>7} {seconds:>8.1f}")
    total_frames = sum(polyphony.values())
    lines.append("")
    lines.append("  polyphony (share of 100 ms frames): " + ", ".join(
        f"{k}: {polyphony[k] / max(total_frames, 1):.2f}" for k in sorted(polyphony)
    ))
    lines.append(f"  frames with two or more events of one class: {same_class_frames}")
    if azimuths:
        lines.append(f"  azimuth (folded) {min(azimuths):.0f} .. {max(azimuths):.0f} deg")
        lines.append(f"  distance {min(distances):.2f} .. {max(distances):.2f} m")
    return "\n".join(lines)
