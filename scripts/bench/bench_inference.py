"""Benchmark of ``seld infer``: the old per-file path and the batched path, side by side in one process.

Usage: python scripts/bench/bench_inference.py [--clips 8] [--seconds 5] [--model quickstart|tiny]
                                               [--batch-size 16] [--threads 1] [--old-threads N]
                                               [--wpe-taps 60] [--wpe-iterations 5] [--repeats 1]
                                               [--device cpu|cuda] [--tokenizer DIR]

A fine-tuning checkpoint is built with random weights (no download): ``quickstart`` = the RCC
tokenizer of ``configs/quickstart/pretrain.yml`` (d_model 64, tokens 384) with a MiniLM-sized BERT
(6 layers, width 384, built from its config) and a GREP head, i.e. the quickstart RCC-BERT-GREP;
``tiny`` = the test-suite sizes. ``--clips`` WAV files of ``--seconds`` of noise are written to a
temporary folder; both paths read them from disk and return the (frames, 117) outputs.

* old: what ``seld infer`` did before batching: per file, features of its windows, the model in
  chunks of 8 windows under ``no_grad``, ``(x - mean) / std`` normalisation, torch's default
  thread count (``--old-threads``).
* new: :func:`seld.inference.predict_recordings`: windows of consecutive files share batches of
  ``--batch-size`` (features and forward pass), ``inference_mode``, ``--threads`` torch threads,
  the next batch's features computed in a background thread while the model runs (and once
  without that prefetch). With ``--device cuda`` the new path runs features and model on the GPU
  (``seld infer --device cuda``); the old path stays on the CPU, as it was.

Printed: wall and CPU seconds per file and files/s of each path (median of ``--repeats``), the
speed-up, the largest output difference, and the new path's split (CPU seconds) between features
and model with the model's GFLOP per file and the rate reached. On a shared machine wall times are
noisy (CPU seconds less so): compare runs made in the same process only.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def build_checkpoint(path: Path, model: str, wpe_taps: int, wpe_iterations: int,
                     vocab: Optional[str] = None) -> Path:
    """A fine-tuning checkpoint with random weights; see the module docstring for the sizes."""
    from seld.checkpoint import save_checkpoint
    from seld.config import load_config, to_dict
    from seld.features.config import FeatureConfig, WpeConfig
    from seld.models.heads import HeadConfig
    from seld.models.text_encoders import TextEncoderConfig, minilm_path, tiny_text_encoder_config
    from seld.tasks.finetune import FinetuneConfig, FinetuneModelConfig, build_finetune_task
    from seld.tasks.pretrain import PretrainConfig

    if model == "quickstart":
        tokenizer = load_config(ROOT / "configs/quickstart/pretrain.yml", PretrainConfig, []).model.tokenizer
        text = TextEncoderConfig(kind="bert", tokenizer=vocab or str(minilm_path()), model_config=dict(
            vocab_size=30522, hidden_size=384, intermediate_size=1536, num_hidden_layers=6,
            num_attention_heads=12, max_position_embeddings=512))
    elif model == "tiny":
        from seld.models.tiny import EMBED_DIM, tiny_tokenizer

        tokenizer = tiny_tokenizer("rcc")
        text = tiny_text_encoder_config("bert", width=EMBED_DIM, layers=1, heads=2)
    else:
        raise SystemExit(f"--model must be quickstart or tiny, got {model!r}")
    cfg = FinetuneConfig(model=FinetuneModelConfig(pretrained=None, tokenizer=tokenizer, text_encoder=text,
                                                   head=HeadConfig(type="grep")))
    features = FeatureConfig(wpe=WpeConfig(taps=wpe_taps, iterations=wpe_iterations))
    channels = sorted(set(cfg.data.streams.src + cfg.data.streams.doa + cfg.data.streams.dist))
    record = {"normalization": {c: {"mean": -4.0, "std": 3.0} for c in channels}, "features": to_dict(features)}
    torch.manual_seed(0)
    task = build_finetune_task(cfg, record, load_weights=False)
    return save_checkpoint(path, {"model": task.state_dict(), "task": task.checkpoint_extras()})


def write_clips(folder: Path, n: int, seconds: float, seed: int = 0) -> list[Path]:
    """``n`` stereo WAVs of decaying noise bursts (not silence: WPE and peak normalisation work)."""
    from seld.constants import SAMPLE_RATE
    from seld.data.audio import write_stereo

    rng = np.random.default_rng(seed)
    samples = int(seconds * SAMPLE_RATE)
    paths = []
    for i in range(n):
        env = np.exp(-np.arange(samples) % SAMPLE_RATE / (0.2 * SAMPLE_RATE))
        audio = 0.3 * env * rng.standard_normal((2, samples))
        paths.append(write_stereo(folder / f"clip{i:03d}.wav", audio.astype(np.float32)))
    return paths


def old_path(model: Any, files: list[Path]) -> list[np.ndarray]:
    """The per-file inference of ``seld infer`` before batching across files (kept here as the baseline)."""
    from seld.constants import CLIP_SAMPLES, LABEL_FRAMES
    from seld.data.audio import load_stereo
    from seld.features.extract import compute_batch_features
    from seld.features.normalization import MIN_STD
    from seld.inference import InferenceOptions, audio_config

    fcfg = model.feature_config
    acfg = audio_config(model, InferenceOptions())
    s = model.streams
    views = s.eval_source_views()  # one source input per view (streams.src_eval); predictions averaged
    channels = s.required_channels(train=False)
    outs = []
    for wav in files:
        audio = load_stereo(wav, acfg)
        label_frames = -(-audio.shape[1] // 2400)
        n_windows = -(-audio.shape[1] // CLIP_SAMPLES)
        padded = np.zeros((2, n_windows * CLIP_SAMPLES), dtype=np.float32)
        padded[:, : audio.shape[1]] = audio
        clips = padded.reshape(2, n_windows, CLIP_SAMPLES).transpose(1, 0, 2)
        feats = compute_batch_features(np.ascontiguousarray(clips), channels, fcfg)
        feats = {k: (v - model.normalization[k]["mean"]) / max(model.normalization[k]["std"], MIN_STD) for k, v in feats.items()}
        def stack(chans: list[str]) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(np.stack([feats[c] for c in chans], 1), dtype=np.float32))

        doa, dist = stack(s.doa), stack(s.dist)
        srcs = [stack(v) for v in views]
        parts = []
        with torch.no_grad():
            for i in range(0, n_windows, 8):
                sl = slice(i, i + 8)
                parts.append(torch.stack([model.task.predict(x[sl], doa[sl], dist[sl]).float() for x in srcs]).mean(0))
        outs.append(torch.cat(parts).reshape(n_windows * LABEL_FRAMES, -1)[:label_frames].numpy())
    return outs


def new_path(model: Any, files: list[Path], batch_size: int, prefetch: bool = True,
             device: str = "cpu") -> list[np.ndarray]:
    """The batched path of ``seld infer`` (files read from disk, windows shared across files)."""
    from seld.data.audio import load_stereo
    from seld.inference import InferenceOptions, audio_config, predict_recordings

    opts = InferenceOptions(batch_size=batch_size, prefetch=prefetch)
    acfg = audio_config(model, opts)
    recs = ((wav, load_stereo(wav, acfg)) for wav in files)
    return [out for _, out in predict_recordings(model, recs, opts, device)]


def split_new(model: Any, files: list[Path], batch_size: int) -> tuple[float, float]:
    """Seconds of features and of the model for the new path's batches (one pass)."""
    from seld.data.audio import load_stereo
    from seld.inference import InferenceOptions, WindowFeatures, audio_config, split_windows

    acfg = audio_config(model, InferenceOptions())
    windows = np.concatenate([split_windows(load_stereo(w, acfg))[0] for w in files])
    features = WindowFeatures(model)
    t_feat = t_model = 0.0
    for i in range(0, len(windows), batch_size):
        t0 = time.process_time()
        streams = features(windows[i : i + batch_size])
        t1 = time.process_time()
        with torch.inference_mode():
            model.task.predict(streams["src"], streams["doa"], streams["dist"])
        t_feat += t1 - t0
        t_model += time.process_time() - t1
    return t_feat, t_model


def model_flops(model: Any, batch_size: int) -> float:
    """Floating-point operations of one forward pass of ``batch_size`` windows (torch's flop counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    from seld.constants import CLIP_SAMPLES
    from seld.inference import WindowFeatures

    rng = np.random.default_rng(0)
    streams = WindowFeatures(model)((0.1 * rng.standard_normal((batch_size, 2, CLIP_SAMPLES))).astype(np.float32))
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.task.predict(streams["src"], streams["doa"], streams["dist"])
    return float(counter.get_total_flops())


def _timed(fn, threads: int, repeats: int) -> tuple[float, float, Any]:
    """(median wall seconds, median CPU seconds of this process, last result) of ``repeats`` calls."""
    torch.set_num_threads(threads)
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), out


def main(argv: Optional[list[str]] = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each file")
    parser.add_argument("--model", default="quickstart", choices=["quickstart", "tiny"])
    parser.add_argument("--batch-size", type=int, default=16, help="windows per batch (new path)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the new path")
    parser.add_argument("--old-threads", type=int, default=None, help="torch threads of the old path (default: torch's)")
    parser.add_argument("--wpe-taps", type=int, default=60)
    parser.add_argument("--wpe-iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device of the new path")
    parser.add_argument("--tokenizer", default=None,
                        help="folder with the BERT vocabulary of the quickstart model (default: the MiniLM package's)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_inference.py: --device cuda asked for, but torch sees no CUDA device")

    from seld.tasks.loading import load_task

    default_threads = torch.get_num_threads()
    old_threads = args.old_threads or default_threads
    with tempfile.TemporaryDirectory(prefix="bench_infer_") as tmp:
        tmp_path = Path(tmp)
        ckpt = build_checkpoint(tmp_path / "ft.pt", args.model, args.wpe_taps, args.wpe_iterations, args.tokenizer)
        model = load_task(ckpt)
        dev = args.device
        model_new = load_task(ckpt, dev) if dev != "cpu" else model
        files = write_clips(tmp_path / "wav", args.clips, args.seconds)
        new_path(model_new, files[:1], args.batch_size, device=dev)  # warm-up: imports, mel basis, tokenizer cache
        t_old, c_old, out_old = _timed(lambda: old_path(model, files), old_threads, args.repeats)
        t_new, c_new, out_new = _timed(lambda: new_path(model_new, files, args.batch_size, device=dev),
                                       args.threads, args.repeats)
        t_seq, c_seq, out_seq = _timed(lambda: new_path(model_new, files, args.batch_size, prefetch=False, device=dev),
                                       args.threads, args.repeats)
        torch.set_num_threads(args.threads)
        if dev == "cpu":  # CPU seconds say nothing of GPU work
            t_feat, t_model = split_new(model, files, args.batch_size)
            flops = model_flops(model, 1)
        torch.set_num_threads(default_threads)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(out_old, out_new))
    diff = max([diff] + [float(np.abs(a - b).max()) for a, b in zip(out_seq, out_new)])
    n = args.clips
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {n} files of {args.seconds:g} s, "
          f"model {args.model}, WPE taps {args.wpe_taps} x {args.wpe_iterations} iterations, new path on {dev}")
    print(f"old  per file, {old_threads} thread(s): {t_old / n:.3f} s/file wall ({c_old / n:.3f} CPU s)  "
          f"{n / t_old:6.2f} files/s")
    print(f"new  batch {args.batch_size}, {args.threads} thread(s): {t_new / n:.3f} s/file wall ({c_new / n:.3f} CPU s)  "
          f"{n / t_new:6.2f} files/s  speed-up {t_old / t_new:.2f}x wall")
    print(f"new  without prefetch: {t_seq / n:.3f} s/file wall ({c_seq / n:.3f} CPU s)  {n / t_seq:6.2f} files/s")
    out = {"old_s_per_file": t_old / n, "new_s_per_file": t_new / n, "speedup": t_old / t_new,
           "old_cpu_s_per_file": c_old / n, "new_cpu_s_per_file": c_new / n, "new_no_prefetch_s_per_file": t_seq / n}
    if dev == "cpu":
        windows = -(-int(args.seconds * 24000) // 120000)
        gflop = flops * windows / 1e9
        print(f"new  split (CPU s): features {t_feat / n:.3f} s/file, model {t_model / n:.3f} s/file "
              f"({gflop:.1f} GFLOP/file: {gflop / max(t_model / n, 1e-9):.1f} GFLOP/s)")
        out.update(features_s_per_file=t_feat / n, model_s_per_file=t_model / n, model_gflop_per_file=gflop)
    print(f"largest |old - new| output difference: {diff:.2e}")
    out["max_diff"] = diff
    return out


if __name__ == "__main__":
    main()
