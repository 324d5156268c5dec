"""Feature extraction of whole dataset splits to one HDF5 file per clip (spec section 4).

The features of a batch of clips (:func:`compute_batch_features`, also what inference uses) and
the run over a dataset: one per-clip file each (:mod:`seld.features.clip_files`: its path, settings,
validity and writer); a rerun skips the clips whose file is complete and valid and recomputes all
others (those of another format version or other feature settings too).

The run holds an exclusive lock on ``<output_dir>`` (:mod:`seld.locks`: file ``.seld.lock``, naming
its holder): a second run into the same folder stops at once with a message naming the holder; the
lock goes with the process that holds it (also when it is killed).
Worker processes (:mod:`seld.features.workers`) exit by themselves when their parent process dies;
a worker that dies stops the run with :class:`~seld.features.workers.WorkerDiedError` saying how it
ended and naming the clips not computed (instead of waiting for them).
``<output_dir>/config.yml`` is written only once the run has produced (or found) a valid clip file,
so a run that fails at start-up or on every clip leaves none behind. Clips whose audio is digital silence while their
CSV lists events, or that have one silent channel, are computed but reported in
``ExtractionReport.warnings``.
"""
from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from seld.config import save_config
from seld.data import h5schema
from seld.data.layout import Clip, discover_clips
from seld.errors import ConfigError, DataError
from seld.features.channels import FeatureContext, compute_channels, needs_wpe
from seld.features.clip_files import clip_file, expected_frames, is_complete, write_clip_file
from seld.features.config import FeatureConfig
from seld.features.stft import num_feature_frames, pad_to_label_frames
from seld.features.workers import in_worker_processes, spawn_cannot_import_main
from seld.locks import FolderLock, FolderLockedError  # noqa: F401 - FolderLockedError: raised by output_lock

CONFIG_FILE = "config.yml"


@dataclass
class ExtractionReport:
    """What :func:`extract_features` did."""

    done: int = 0
    """Clips computed and written in this run."""
    skipped: int = 0
    """Clips whose file was already complete and valid."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(clip id or path, reason) of every clip that could not be processed."""
    warnings: list[tuple[str, str]] = field(default_factory=list)
    """(clip id, message naming the WAV) of clips computed in this run whose audio is digital
    silence while their CSV lists events, or that have one silent channel."""

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """One line: computed, already done, failed and warned clip counts."""
        return (
            f"features: {self.done} clips computed, {self.skipped} already done, {len(self.failed)} failed, "
            f"{len(self.warnings)} with silent audio"
        )

    def failure_lines(self) -> list[str]:
        """The failed-clip count, then one line per failed clip with its reason (empty when none)."""
        if not self.failed:
            return []
        return [f"{len(self.failed)} clip(s) failed:", *(f"  {clip}: {reason}" for clip, reason in self.failed)]


# --------------------------------------------------------------------------------------------
# Computing features


CPU_CLIPS_PER_PASS = 1
"""Clips that go through the front end together on a CPU (see :func:`compute_batch_features`)."""


def feature_device(device: "str | torch.device | None" = None):  # -> torch.device
    """The torch device features are computed on (CPU when None); ConfigError naming the setting
    when CUDA is asked for but no CUDA device is visible."""
    import torch

    dev = torch.device("cpu" if device is None else device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"features: device '{device}' was asked for but torch sees no CUDA device "
            "(torch.cuda.is_available() is False); set device: cpu"
        )
    return dev


def prepare_audio(audio: np.ndarray, peak_normalize: bool, sample_rate: int, device=None):  # -> torch.Tensor
    """Peak-normalise each clip of ``audio (B, 2, n)`` and zero-pad it to whole label frames.

    Returns a float64 tensor ``(B, 2, n')`` on ``device`` (CPU by default). The peak is taken
    over both channels so the level difference between L and R is kept; an all-zero clip is left
    as it is.
    """
    import torch

    x = torch.as_tensor(np.asarray(audio), dtype=torch.float64).to(feature_device(device))
    if x.ndim != 3 or x.shape[1] != 2:
        raise ValueError(f"audio must be (batch, 2, samples), got {tuple(x.shape)}")
    if peak_normalize:
        peak = x.abs().amax(dim=(1, 2), keepdim=True)
        x = x / torch.where(peak > 0, peak, torch.ones_like(peak))
    return pad_to_label_frames(x, sample_rate)


def compute_batch_features(
    audio: np.ndarray, channels: Iterable[str], cfg: FeatureConfig, device=None
) -> dict[str, np.ndarray]:
    """Features of a batch of equally long stereo clips ``(B, 2, n)``: name -> float32 ``(B, T, M)``.

    THE batch entry point (extraction and inference): the spectra of both channels of a clip are
    computed once and shared by all feature channels, and every mel-filtered quantity goes
    through one matrix product; on a GPU the whole batch goes through at once, on a CPU
    ``CPU_CLIPS_PER_PASS`` clips at a time (cache-sized). T = 5 x ceil(n / 2400) at hop 480
    and 24 kHz (250 for a 5 s clip); see :mod:`seld.features.stft` for the padding and trimming.
    ``device`` (``"cpu"``, ``"cuda"``, a torch.device; default ``cfg.device``) is where it is
    computed; the result is always on the CPU. A clip's features do not depend on the other clips
    of the batch.
    """
    import torch

    from seld.features.wpe import wpe

    sr = cfg.audio.sample_rate
    x = prepare_audio(audio, cfg.peak_normalize, sr, cfg.device if device is None else device)
    frames = num_feature_frames(x.shape[-1], cfg.stft.hop_length, sr)
    # On a CPU the intermediates of one 5 s clip (~20 MB) already exceed the caches: passes of
    # CPU_CLIPS_PER_PASS clips are faster per clip than the whole batch at once (figures:
    # docs/results/speed_cpu.md). A GPU takes it whole.
    step = CPU_CLIPS_PER_PASS if x.device.type == "cpu" else x.shape[0]
    channels = list(channels)
    if needs_wpe(channels) and frames < cfg.wpe.taps + cfg.wpe.delay:
        warnings.warn(
            f"WPE on clips of {x.shape[-1]} samples ({frames} frames of {cfg.stft.hop_length}): fewer frames "
            f"than wpe.taps + wpe.delay = {cfg.wpe.taps + cfg.wpe.delay}, so the prediction filter is "
            "under-determined (solved by least squares, as nara_wpe does) and the direct/reverberant "
            "channels say little; use longer clips or fewer wpe.taps",
            stacklevel=2,
        )
    contexts = [FeatureContext(x[i : i + step], frames, cfg.stft, cfg.mel, cfg.wpe, sr) for i in range(0, x.shape[0], step)]
    if len(contexts) > 1 and torch.get_num_threads() > 1 and needs_wpe(channels):
        # WPE of the whole batch in one call: on a CPU with several threads it spreads the clips
        # over them (one core each); a clip's WPE does not depend on the others (same numbers).
        # The price is memory: every clip's context is held until its WPE is done (figures:
        # docs/results/speed_cpu.md).
        direct = wpe(torch.cat([c.mid_full for c in contexts]), cfg.wpe)
        for ctx, part in zip(contexts, direct.split(step)):
            ctx.set_direct(part)
    parts: dict[str, list[np.ndarray]] = {}
    while contexts:
        ctx = contexts.pop(0)  # its intermediates are freed once its channels are out
        for k, v in compute_channels(ctx, channels).items():
            parts.setdefault(k, []).append(v.to("cpu", torch.float32).numpy())
    return {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in parts.items()}


def compute_clip_features(
    audio: np.ndarray, channels: list[str], cfg: FeatureConfig, device=None
) -> dict[str, np.ndarray]:
    """Features of one stereo clip ``(2, n)`` of any length: name -> float32 ``(T, n_mels)``.

    T = 5 x label frames, label frames = ceil(n / 2400) (the audio is zero-padded to that).
    """
    audio = np.asarray(audio)
    if audio.ndim != 2 or audio.shape[0] != 2:
        raise ValueError(f"audio must be stereo (2, samples), got shape {audio.shape}")
    return {k: v[0] for k, v in compute_batch_features(audio[None], channels, cfg, device).items()}


def _load_target(clip: Clip, label_frames: int) -> np.ndarray:
    from seld.data.metadata import read_metadata_csv
    from seld.data.targets import build_adpit_target

    if clip.csv_path is None:
        return np.zeros(h5schema.target_shape(label_frames), h5schema.TARGET_DTYPE)
    return build_adpit_target(read_metadata_csv(clip.csv_path, num_frames=label_frames), label_frames)


# --------------------------------------------------------------------------------------------
# The extraction run


_Outcome = tuple[str, str, str]  # (clip id, "done" | "failed", reason)


def _process_clips(cfg: FeatureConfig, clips: list[Clip]) -> list[_Outcome]:
    """Compute and write the files of ``clips`` (one batch); never raises for a bad clip."""
    from seld.data.audio import load_stereo

    _, label_frames = expected_frames(cfg)
    out: list[_Outcome] = []
    loaded: list[tuple[Clip, np.ndarray, np.ndarray]] = []
    for clip in clips:
        try:
            audio = load_stereo(clip.wav_path, cfg.audio)
            target = _load_target(clip, label_frames)
        except DataError as exc:
            out.append((clip.clip_id, "failed", str(exc)))
            clip_file(cfg.output_dir, clip.split, clip.clip_id).unlink(missing_ok=True)
            continue
        loaded.append((clip, audio, target))
    if not loaded:
        return out
    try:
        batch = compute_batch_features(np.stack([a for _, a, _ in loaded]), cfg.channels, cfg)
        per_clip = [{k: v[i] for k, v in batch.items()} for i in range(len(loaded))]
    except Exception:  # noqa: BLE001 - isolate the clip that breaks the batch
        per_clip = []
        for clip, audio, _ in loaded:
            try:
                per_clip.append(compute_clip_features(audio, cfg.channels, cfg))
            except Exception as exc:  # noqa: BLE001
                per_clip.append({"__error__": f"{clip.wav_path}: feature computation failed: {exc!r}"})
    for (clip, _, target), feats in zip(loaded, per_clip):
        if "__error__" in feats:
            out.append((clip.clip_id, "failed", str(feats["__error__"])))
            continue
        try:
            write_clip_file(clip_file(cfg.output_dir, clip.split, clip.clip_id), clip, feats, target, cfg)
        except OSError as exc:
            out.append((clip.clip_id, "failed", f"cannot write features: {exc}"))
            continue
        out.append((clip.clip_id, "done", ""))
    return out


def silence_warnings(clip: Clip) -> list[str]:
    """Warnings naming ``clip.wav_path`` when its audio is digital silence (every sample 0).

    * both channels silent while the clip's CSV lists events: the labels describe sound that
      is not in the file;
    * exactly one channel silent: a dead channel (a stereo recording always differs from 0 in
      both channels when anything sounds).

    A silent clip with a header-only CSV (or none, e.g. eval) is valid and gives no warning.
    Reads the file's raw samples (no resampling); unreadable files give no warning here (the
    extraction reports them as failures).
    """
    import soundfile as sf

    from seld.data.metadata import read_metadata_csv

    try:
        audio, _ = sf.read(str(clip.wav_path), dtype="float32", always_2d=True)  # (n, channels)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError):
        return []
    if audio.ndim != 2 or audio.shape[1] != 2 or audio.shape[0] == 0:
        return []
    silent = ~np.any(audio != 0, axis=0)  # (2,)
    if silent.all():
        if clip.csv_path is None:
            return []
        try:
            n_events = len(read_metadata_csv(clip.csv_path))
        except DataError:
            return []
        if n_events:
            return [f"{clip.wav_path}: audio is digital silence but {clip.csv_path} lists {n_events} event row(s)"]
        return []
    if silent.any():
        side = "left (channel 0)" if silent[0] else "right (channel 1)"
        return [f"{clip.wav_path}: the {side} channel is digital silence"]
    return []


def _worker_task(args: tuple[FeatureConfig, list[Clip]]) -> tuple[list[_Outcome], list[tuple[str, str]]]:
    """Outcomes of one batch of clips and the silence warnings of the clips computed."""
    cfg, clips = args
    outcomes = _process_clips(cfg, clips)
    done = {clip_id for clip_id, status, _ in outcomes if status == "done"}
    warnings = [(c.clip_id, w) for c in clips if c.clip_id in done for w in silence_warnings(c)]
    return outcomes, warnings


def _worker_died_message(how: str, lost: list[tuple[FeatureConfig, list[Clip]]]) -> str:
    """The WorkerDiedError text: how the worker ended, the clips not computed, what a rerun does."""
    ids = sorted(c.clip_id for _, clips in lost for c in clips)
    shown = ", ".join(ids[:4]) + (f" and {len(ids) - 4} more" if len(ids) > 4 else "")
    return (f"a feature worker process {how}; {len(ids)} clip(s) were not computed ({shown}); the clip files "
            "written so far are kept (a rerun skips them); with workers: 1 the clips run in this process, where an "
            "error shows")


def output_lock(out_dir: str | os.PathLike[str], create: bool = True) -> FolderLock:
    """The lock of a feature output folder (``with output_lock(dir):``; see :mod:`seld.locks`).

    A missing ``out_dir`` is created when ``create``, else nothing is locked. Raises
    FolderLockedError naming the holder (pid, host, start time) when another run holds it.
    Re-entrant within one process; released when the holder ends, however it ends.
    """
    return FolderLock(out_dir, "seld features", create=create)


def _chunks(items: list[Clip], size: int) -> Iterator[list[Clip]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _num_workers(cfg: FeatureConfig, num_tasks: int) -> int:
    if cfg.device != "cpu":
        return 1  # one process drives the GPU; batches are the parallelism
    workers = cfg.workers or (os.cpu_count() or 1)
    return max(1, min(workers, num_tasks))


def list_clips(cfg: FeatureConfig) -> tuple[list[Clip], list[tuple[str, str]]]:
    """Clips of ``cfg.splits`` and (clip, reason) of those rejected up front (missing labels)."""
    clips = discover_clips(cfg.dataset_root, cfg.splits, require_labels=False)
    good: list[Clip] = []
    bad: list[tuple[str, str]] = []
    for clip in clips:
        if clip.csv_path is None and cfg.require_labels and clip.split != "eval":
            bad.append((clip.clip_id, f"{clip.wav_path}: no label file in metadata_dev/{clip.split}/"))
        else:
            good.append(clip)
    return good, bad


def extract_features(cfg: FeatureConfig, progress: bool = True) -> ExtractionReport:
    """Write the per-clip feature file of every clip of ``cfg.splits`` that lacks a valid one.

    Bad clips are collected in ``report.failed`` (with the reason) while all good clips are
    written; clips with silent audio are written and listed in ``report.warnings``. The resolved
    config is saved as ``<output_dir>/config.yml`` once a valid clip file exists (never by a run
    that fails at start-up or on every clip). The output folder is locked for the run (see
    :func:`output_lock`). With more than one worker the clips are computed in "spawn" worker
    processes (safe with torch and BLAS thread pools) that exit when this process dies; a worker
    that dies raises :class:`~seld.features.workers.WorkerDiedError` naming the clips not computed; a
    calling script needs the usual ``if __name__ == "__main__":`` guard.
    """
    from tqdm import tqdm

    expected_frames(cfg)  # validates clip_samples before any work
    feature_device(cfg.device)  # CUDA asked for but absent: stop before any work
    clips, rejected = list_clips(cfg)  # a missing dataset root or split stops here
    out_dir = Path(cfg.output_dir)
    report = ExtractionReport(failed=list(rejected))
    with output_lock(out_dir):
        config_saved = False

        def save_config_once() -> None:
            nonlocal config_saved
            if not config_saved:
                save_config(cfg, out_dir / CONFIG_FILE)
                config_saved = True

        todo: list[Clip] = []
        for clip in clips:
            if is_complete(clip_file(out_dir, clip.split, clip.clip_id), cfg):
                report.skipped += 1
            else:
                todo.append(clip)
        if report.skipped:
            save_config_once()
        tasks = [(cfg, chunk) for chunk in _chunks(todo, cfg.batch_size)]
        bar = tqdm(total=len(todo), desc="features", unit="clip", disable=not progress or not todo, file=sys.stderr)
        workers = _num_workers(cfg, len(tasks))
        why_not = spawn_cannot_import_main() if workers > 1 else None
        if why_not:
            print(f"warning: features in this process, not {workers} workers: {why_not}", file=sys.stderr)
            workers = 1

        def consume(results: Iterable[tuple[list[_Outcome], list[tuple[str, str]]]]) -> None:
            for outcomes, warnings in results:
                for clip_id, status, reason in outcomes:
                    if status == "done":
                        report.done += 1
                        save_config_once()
                    else:
                        report.failed.append((clip_id, reason))
                for clip_id, message in warnings:
                    report.warnings.append((clip_id, message))
                    bar.write(f"warning: {message}", file=sys.stderr)
                bar.update(len(outcomes))

        try:
            if workers == 1:
                consume(_worker_task(t) for t in tasks)
            else:
                consume(in_worker_processes(_worker_task, tasks, workers, _worker_died_message))
        finally:
            bar.close()
    return report
