"""Feature extraction of whole dataset splits to one HDF5 file per clip (spec section 4).

Per-clip file ``<output_dir>/clips/<split>/<clip_id>.h5``, laid out as :mod:`seld.data.h5schema`
defines (one float32 ``(T, n_mels)`` dataset per channel, the ADPIT target, the clip's attributes).

A file is "complete and valid" when it opens, is of this format version, has every configured
channel with the expected shape and dtype, the target, matching ``feature_params`` and
``complete``; a rerun skips such clips and recomputes all others (those of another format version
or other feature settings too). Files are written to a temporary name and renamed, so a crash
never leaves a half-written file under the final name.

The run holds an exclusive lock on ``<output_dir>`` (:mod:`seld.locks`: file ``.seld.lock``, naming
its holder): a second run into the same folder stops at once with a message naming the holder; the
lock goes with the process that holds it (also when it is killed).
Worker processes exit by themselves when their parent process dies; a worker that dies stops the
run with :class:`WorkerDiedError` saying how it ended (instead of waiting for its lost clips).
``<output_dir>/config.yml`` is written only once the run has produced (or found) a valid clip file,
so a run that fails at start-up or on every clip leaves none behind. Clips whose audio is digital silence while their
CSV lists events, or that have one silent channel, are computed but reported in
``ExtractionReport.warnings``.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from seld.config import save_config, to_dict
from seld.data import h5schema
from seld.data.layout import Clip, discover_clips
from seld.errors import ConfigError, DataError, SeldError
from seld.features.channels import FeatureContext, compute_channels, needs_wpe, resolve_channels
from seld.features.config import FeatureConfig, num_label_frames
from seld.features.stft import num_feature_frames, pad_to_label_frames
from seld.io_utils import atomic_path
from seld.locks import FolderLock, FolderLockedError  # noqa: F401 - FolderLockedError: raised by output_lock

CLIPS_DIR = "clips"
CONFIG_FILE = "config.yml"
PARENT_CHECK_S = 0.5
"""How often a worker process checks that its parent is still alive (seconds)."""


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


# --------------------------------------------------------------------------------------------
# Per-clip files


def clip_file(output_dir: str | os.PathLike[str], split: str, clip_id: str) -> Path:
    """Path of a clip's feature file: ``<output_dir>/clips/<split>/<clip_id>.h5``."""
    return Path(output_dir) / CLIPS_DIR / split / f"{clip_id}.h5"


def feature_params(cfg: FeatureConfig) -> str:
    """JSON of every setting the stored numbers depend on (compared when resuming)."""
    params = {
        "stft": to_dict(cfg.stft),
        "mel": to_dict(cfg.mel),
        "peak_normalize": cfg.peak_normalize,
        "sample_rate": cfg.audio.sample_rate,
    }
    if needs_wpe(cfg.channels):
        params["wpe"] = to_dict(cfg.wpe)
    return json.dumps(params, sort_keys=True)


def expected_frames(cfg: FeatureConfig) -> tuple[int, int]:
    """(feature frames, label frames) of one clip of ``cfg.audio.clip_samples`` samples."""
    if cfg.audio.clip_samples <= 0:
        raise ConfigError(
            "audio.clip_samples must be > 0 for extraction to HDF5 (every clip needs the same length); "
            "use audio.pad_or_trim to fix clips of other lengths"
        )
    sr = cfg.audio.sample_rate
    return num_feature_frames(cfg.audio.clip_samples, cfg.stft.hop_length, sr), num_label_frames(
        cfg.audio.clip_samples, sr
    )


def clip_file_problem(path: str | os.PathLike[str], cfg: FeatureConfig) -> str | None:
    """Why ``path`` is not a complete, valid clip file for ``cfg`` (see :func:`seld.data.h5schema.clip_problem`:
    another format version, incomplete, other feature settings, a channel missing), or None."""
    frames, label_frames = expected_frames(cfg)
    return h5schema.clip_problem(path, cfg.channels, (frames, cfg.mel.n_mels), label_frames, feature_params(cfg))


def is_complete(path: str | os.PathLike[str], cfg: FeatureConfig) -> bool:
    """Whether ``path`` is a complete, valid clip file for ``cfg`` (a rerun skips it, else recomputes it)."""
    return clip_file_problem(path, cfg) is None


def write_clip_file(
    path: str | os.PathLike[str],
    clip: Clip,
    features: dict[str, np.ndarray],
    target: np.ndarray,
    cfg: FeatureConfig,
) -> Path:
    """Write one clip's features and target atomically (:func:`seld.data.h5schema.write_clip`)."""
    p = Path(path)
    with atomic_path(p) as tmp:
        h5schema.write_clip(tmp, cfg.channels, features, target, clip_id=clip.clip_id, split=clip.split,
                            audio_path=str(clip.wav_path), has_labels=clip.csv_path is not None,
                            feature_params=feature_params(cfg))
    return p


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


def _exit_when_parent_dies(parent_pid: int, interval_s: float = PARENT_CHECK_S) -> threading.Thread:
    """Start a daemon thread that ends this process as soon as ``parent_pid`` is no longer its parent.

    A killed parent (even by SIGKILL) would otherwise leave the workers computing and writing
    files; when the parent dies the worker is re-parented, so ``os.getppid()`` changes.
    """

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(interval_s)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def _worker_init(parent_pid: int | None = None) -> None:
    """One thread per worker process (the workers are the parallelism); exit with the parent."""
    import torch

    if parent_pid is not None:
        _exit_when_parent_dies(parent_pid)
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
    except ImportError:  # pragma: no cover
        pass


def _worker_task(args: tuple[FeatureConfig, list[Clip]]) -> tuple[list[_Outcome], list[tuple[str, str]]]:
    """Outcomes of one batch of clips and the silence warnings of the clips computed."""
    cfg, clips = args
    outcomes = _process_clips(cfg, clips)
    done = {clip_id for clip_id, status, _ in outcomes if status == "done"}
    warnings = [(c.clip_id, w) for c in clips if c.clip_id in done for w in silence_warnings(c)]
    return outcomes, warnings


def output_lock(out_dir: str | os.PathLike[str], create: bool = True) -> FolderLock:
    """The lock of a feature output folder (``with output_lock(dir):``; see :mod:`seld.locks`).

    A missing ``out_dir`` is created when ``create``, else nothing is locked. Raises
    FolderLockedError naming the holder (pid, host, start time) when another run holds it.
    Re-entrant within one process; released when the holder ends, however it ends.
    """
    return FolderLock(out_dir, "seld features", create=create)


class WorkerDiedError(SeldError):
    """A feature worker process ended without a result (killed, or crashed in native code)."""


def _in_worker_processes(tasks: list[tuple[FeatureConfig, list[Clip]]], workers: int) -> Iterator[
        tuple[list[_Outcome], list[tuple[str, str]]]]:
    """Results of ``tasks`` computed in ``workers`` "spawn" processes, as each finishes.

    A pool that replaces dead workers loses their tasks and waits for them forever; this one stops:
    a worker that dies (a signal, a crash in native code) raises :class:`WorkerDiedError` naming
    how it ended and the clips not computed. Clip files written so far are kept (a rerun skips
    them); the other workers are stopped.
    """
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                               initargs=(os.getpid(),))
    processes = getattr(pool, "_processes", None)  # how a dead worker ended (CPython keeps them here)
    pending = {pool.submit(_worker_task, task): task[1] for task in tasks}
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                clips = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    finished = [f for f in pending if f.done() and not f.cancelled() and f.exception() is None]
                    lost = sorted(c.clip_id for batch in [clips, *(b for f, b in pending.items() if f not in finished)]
                                  for c in batch)
                    shown = ", ".join(lost[:4]) + (f" and {len(lost) - 4} more" if len(lost) > 4 else "")
                    raise WorkerDiedError(
                        f"a feature worker process {_how_workers_ended(processes)}; {len(lost)} clip(s) were not "
                        f"computed ({shown}); the clip files written so far are kept (a rerun skips them); with "
                        "workers: 1 the clips run in this process, where an error shows") from None
                yield result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if pending:  # stopped early (a dead worker, Ctrl-C): do not wait for the batches still running
            for process in list((processes or {}).values()):
                process.terminate()


def _how_workers_ended(processes: dict | None) -> str:
    """'was killed by SIGBUS' (or 'exited with status 3'), from the pool's worker processes."""
    import signal

    codes: list[int] = []
    for _ in range(40):  # the pool reaps its workers in its own thread, just after it reports the break
        codes = [p.exitcode for p in list((processes or {}).values()) if p.exitcode not in (None, 0)]
        if codes:
            break
        time.sleep(0.05)
    # the pool terminates the surviving workers (SIGTERM) once one has died: name another cause first
    codes.sort(key=lambda c: c == -signal.SIGTERM)
    if not codes:
        return "ended without a result"
    code = codes[0]
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _chunks(items: list[Clip], size: int) -> Iterator[list[Clip]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _num_workers(cfg: FeatureConfig, num_tasks: int) -> int:
    if cfg.device != "cpu":
        return 1  # one process drives the GPU; batches are the parallelism
    workers = cfg.workers or (os.cpu_count() or 1)
    return max(1, min(workers, num_tasks))


def spawn_cannot_import_main() -> str | None:
    """Why "spawn" workers could not start from this process, or None when they can.

    A spawned worker re-runs the parent's ``__main__`` from its file. A script read from stdin
    (``python - < script.py``) names the file ``<stdin>``, which does not exist: every worker dies
    while starting, the pool starts new ones forever and the parent waits forever.
    """
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file is not None and not os.path.isfile(main_file):
        return f"the main script {main_file!r} is not a file that worker processes can import"
    return None


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
    that dies raises :class:`WorkerDiedError` (see :func:`_in_worker_processes`); a calling script needs the usual ``if __name__ == "__main__":`` guard.
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
                consume(_in_worker_processes(tasks, workers))
        finally:
            bar.close()
    return report
