"""Training throughput of both stages at real size with random weights (nothing downloaded).

Usage: python scripts/bench/bench_training.py [--stages rcc,beats,clip,bert,live] [--batch-size 2] [--steps 2]
                                              [--device cpu|cuda] [--amp none|bf16] [--channels-last]
                                              [--threads N] [--size real|tiny] [--tokenizer DIR]
                                              [--budget-minutes 8.4] [--clips 280]

* ``rcc`` / ``beats``: pre-training steps/s (forward, ADPIT, backward, Adam) of the tokenizers of
  ``configs/pretrain_rcc.yml`` and ``configs/pretrain_beats.yml`` (BEATs at its official size,
  12 layers x 768, random init instead of the checkpoint).
* ``clip`` / ``bert``: fine-tuning sentences/s (a sentence = one 100 ms frame of one clip, 50 per
  clip) of a full step (RCC tokenizer -> template injection -> frozen text encoder -> GREP head;
  ADPIT + alignment loss against ground-truth sentence embeddings; backward; Adam) through CLIP
  ViT-B-16 (open_clip config) and BERT L-12/H-512/A-8 (``BertConfig``), both random init. The
  ground-truth sentence cache is warm (as after the first epoch); its cold cost is printed apart.
* tokens per sentence, ours (padded to the longest in the batch) vs the authors' (padded to 77),
  and the frozen encoder's forward time at both lengths.
* ``live`` (not in the default list): the benchmark's GREP fine-tuning (``configs/benchmark/
  finetune_grep.yml``: MiniLM, its batch of 4 clips and 10 training frames per clip, the tokenizer
  of ``configs/benchmark/pretrain.yml`` with random weights) timed two ways on the same weights: the
  frozen-token step (``tokenizer_lr: 0``: no backward before the text head) and the live language
  path (``projection_lr`` > 0: gradients through the frozen text encoder to the projections), their
  ratio (goal: at most 2x) and the epochs each gets from its steps alone (validation not counted)
  in ``--budget-minutes`` over ``--clips`` training clips (defaults: the default benchmark's GREP
  share, 0.14 x 60 minutes, and its 280 training clips).

Real-size models are slow on a CPU: keep ``--steps`` and ``--batch-size`` small there (defaults:
2 steps of 2 clips after one warm-up step); ``--size tiny`` runs the same code on test-size models.
Timings on a shared machine are noisy.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = 77
"""The authors pad every sentence to CLIP's context length."""


def _tokenizer_config(source: str, size: str, embed_dim: int):
    from seld.config import load_config
    from seld.data.dataset import StreamConfig
    from seld.tasks.base import apply_stream_channels
    from seld.tasks.pretrain import PretrainConfig

    if size == "tiny":
        from seld.models.tiny import tiny_tokenizer

        return apply_stream_channels(tiny_tokenizer(source, embed_dim=embed_dim), StreamConfig())
    cfg = load_config(ROOT / f"configs/pretrain_{source}.yml", PretrainConfig, [])
    tok = cfg.model.tokenizer
    tok.embed_dim = embed_dim
    if source == "beats":
        tok.beats.checkpoint = None  # official architecture, random weights
    return apply_stream_channels(tok, cfg.data.streams)


def _text_encoder_config(kind: str, size: str, vocab: Optional[str] = None):
    from seld.models.text_encoders import TextEncoderConfig, minilm_path, tiny_text_encoder_config

    if size == "tiny":
        return tiny_text_encoder_config(kind, width=12, layers=1, heads=2)
    if kind == "clip":  # ViT-B-16's text tower: width 512, 12 layers, 8 heads, context 77
        return TextEncoderConfig(kind="clip", name="ViT-B-16", pretrained=None, quick_gelu=True)
    # google/bert_uncased_L-12_H-512_A-8 (its vocabulary is BERT-base uncased, as in the MiniLM folder)
    arch = dict(vocab_size=30522, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                num_attention_heads=8, max_position_embeddings=512)
    return TextEncoderConfig(kind="bert", tokenizer=vocab or str(minilm_path()), model_config=arch)


def random_batch(batch_size: int, seed: int, device: torch.device) -> dict[str, Any]:
    """Feature maps ``(B, C, 250, 64)`` and ADPIT targets of 1-3 random events per clip."""
    from seld.data.metadata import Event
    from seld.data.targets import build_adpit_target

    rng = np.random.default_rng(seed)
    targets = []
    for _ in range(batch_size):
        events = []
        for source in range(int(rng.integers(1, 4))):
            cls, az, dist = int(rng.integers(13)), float(rng.integers(-90, 91)), float(rng.integers(50, 500))
            start = int(rng.integers(0, 40))
            events += [Event(f, cls, source, az, dist) for f in range(start, min(50, start + int(rng.integers(5, 50))))]
        targets.append(build_adpit_target(events))
    g = torch.Generator().manual_seed(seed)
    return {
        "src": torch.randn(batch_size, 1, 250, 64, generator=g).to(device),
        "doa": torch.randn(batch_size, 4, 250, 64, generator=g).to(device),
        "dist": torch.randn(batch_size, 2, 250, 64, generator=g).to(device),
        "target": torch.from_numpy(np.stack(targets)).to(device),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_optimizer_steps(task: Any, batch_for_step: Callable[[int], dict[str, Any]], steps: int, warmup: int,
                         device: torch.device, amp: str = "none", lr: float = 1e-4,
                         channels_last: bool = False) -> float:
    """Seconds per full training step (forward + loss, backward, Adam on the trainable
    parameters): median of ``steps`` timed steps after ``warmup`` untimed ones; step ``i`` trains
    on ``batch_for_step(i)`` (fetched outside the timing). ``amp`` and ``channels_last`` as ``train.amp`` /
    ``train.channels_last``."""
    task.to(device).train()
    if channels_last:
        task.to(memory_format=torch.channels_last)
    params = [p for p in task.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16")
    times = []
    for step in range(warmup + steps):
        batch = batch_for_step(step)
        _sync(device)
        t0 = time.perf_counter()
        with autocast:
            loss = task.step(batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if step >= warmup:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def time_steps(task: Any, args: argparse.Namespace, device: torch.device) -> float:
    """Seconds per optimiser step on random batches (median of ``--steps`` after one warm-up step)."""
    return time_optimizer_steps(task, lambda step: random_batch(args.batch_size, step, device), args.steps, 1,
                                device, args.amp, channels_last=args.channels_last)


def bench_pretrain(source: str, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    from seld.models.pretrain import ModelConfig, PretrainModel
    from seld.tasks.pretrain import PretrainTask

    torch.manual_seed(0)
    model = PretrainModel.from_config(ModelConfig(tokenizer=_tokenizer_config(source, args.size, 512)), load_pretrained=False)
    n_params = sum(p.numel() for p in model.parameters())
    sec = time_steps(PretrainTask(model, {}), args, device)
    print(f"pre-training {source:5s} ({n_params / 1e6:6.1f} M params): {1 / sec:7.3f} steps/s "
          f"({args.batch_size / sec:7.2f} clips/s, batch {args.batch_size})")
    return {f"pretrain_{source}_steps_per_s": 1 / sec}


def _sentences(task: Any, args: argparse.Namespace) -> list[str]:
    from seld.text.sentences import frame_sentences
    from seld.text.templates import TEMPLATES

    batch = random_batch(max(args.batch_size, 4), 123, torch.device("cpu"))
    return [s for i, t in enumerate(batch["target"].numpy()) for s in frame_sentences(t, TEMPLATES[i % len(TEMPLATES)])]


def bench_finetune(kind: str, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    from seld.models.heads import HeadConfig
    from seld.tasks.finetune import FinetuneConfig, FinetuneModelConfig, build_finetune_task
    from seld.text.templates import TEMPLATES
    from seld.text.tokenization import SentenceBatch

    te_cfg = _text_encoder_config(kind, args.size, args.tokenizer)
    width = 12 if args.size == "tiny" else 512
    cfg = FinetuneConfig(model=FinetuneModelConfig(
        pretrained=None, tokenizer=_tokenizer_config("rcc", args.size, width), text_encoder=te_cfg,
        head=HeadConfig(type="grep")))
    torch.manual_seed(0)
    task = build_finetune_task(cfg, {}, load_weights=False)
    enc = task.text_encoder.to(device)
    tok = enc.tokenizer
    # cold ground-truth cache: every sentence of a batch encoded once (the first epoch)
    sentences = _sentences(task, args)
    t0 = time.perf_counter()
    task.gt_cache.embed(sentences, device=device)  # each distinct sentence once (frames repeat them)
    _sync(device)
    cold = time.perf_counter() - t0
    unique = task.gt_cache.num_encoded
    # warm cache, as after the first epoch: every sentence of the timed steps (any template) encoded beforehand
    from seld.text.sentences import frame_sentences

    for step in range(args.steps + 1):
        tgt = random_batch(args.batch_size, step, torch.device("cpu"))["target"].numpy()
        task.gt_cache.embed([s for t in tgt for tmpl in TEMPLATES for s in frame_sentences(t, tmpl)], device=device)
    sec = time_steps(task, args, device)
    n_sent = args.batch_size * 50
    # tokens per sentence: trimmed to the longest of the batch (ours) vs the authors' 77
    batch = tok.encode_sentences(sentences)
    lengths = batch.attention_mask.sum(1).float()
    templates = tok.encode_templates(list(TEMPLATES))
    trimmed = SentenceBatch(*batch)
    padded = SentenceBatch(
        torch.nn.functional.pad(batch.input_ids, (0, CONTEXT - batch.input_ids.shape[1]), value=tok.pad_id),
        torch.nn.functional.pad(batch.attention_mask, (0, CONTEXT - batch.input_ids.shape[1])),
        batch.eot_positions,
    )
    fwd = {}
    with torch.inference_mode():
        for name, b in (("trimmed", trimmed), ("77", padded)):
            enc.encode_ids(b)  # warm-up
            _sync(device)
            t0 = time.perf_counter()
            out = enc.encode_ids(b)[0]
            _sync(device)
            fwd[name] = time.perf_counter() - t0
            fwd[name + "_out"] = out
    same = float((fwd["trimmed_out"] - fwd["77_out"]).abs().max())
    n_params = sum(p.numel() for p in enc.parameters())
    print(f"fine-tuning RCC-{kind.upper()}-GREP (text encoder {n_params / 1e6:5.1f} M params): "
          f"{n_sent / sec:8.2f} sentences/s ({1 / sec:.3f} steps/s, batch {args.batch_size} clips x 50 frames, warm cache)")
    print(f"  ground-truth cache, cold: {len(sentences)} frame sentences, {unique} distinct, encoded in {cold:.3f} s "
          f"({unique / cold:.2f} sentences/s)")
    print(f"  tokens per sentence: ground truth {lengths.mean():.1f} mean / {int(lengths.max())} max, templates "
          f"{templates.attention_mask.sum(1).float().mean():.1f} mean; we pad to the longest in the batch "
          f"({batch.input_ids.shape[1]}), the authors to {CONTEXT}")
    print(f"  frozen encoder forward on {len(sentences)} frame sentences (no cache): {fwd['trimmed']:.3f} s at {batch.input_ids.shape[1]} "
          f"tokens, {fwd['77']:.3f} s at {CONTEXT} tokens ({fwd['77'] / fwd['trimmed']:.1f}x); pooled outputs differ by {same:.1e}")
    return {f"finetune_{kind}_sentences_per_s": n_sent / sec, f"{kind}_tokens_trimmed": float(batch.input_ids.shape[1]),
            f"{kind}_mean_tokens": float(lengths.mean()), f"{kind}_forward_ratio_77": fwd["77"] / fwd["trimmed"],
            f"{kind}_pooled_diff_77": same}


def _live_task(args: argparse.Namespace) -> tuple[Any, Any]:
    """The benchmark's GREP fine-tuning task with random tokenizer weights, and its config."""
    from seld.config import load_config
    from seld.models.text_encoders import tiny_text_encoder_config
    from seld.tasks.base import apply_stream_channels
    from seld.tasks.finetune import FinetuneConfig, build_finetune_task
    from seld.tasks.pretrain import PretrainConfig

    # the task is built without its pre-trained tokenizer; the step is held or live below, not by the config
    overrides = ["model.pretrained=null", "frozen_tokenizer_eval=false", "projection_lr=null"]
    cfg = load_config(ROOT / "configs/benchmark/finetune_grep.yml", FinetuneConfig, overrides)
    cfg.model.text_encoder.tokenizer = args.tokenizer or cfg.model.text_encoder.tokenizer
    if args.size == "tiny":
        cfg.model.text_encoder = tiny_text_encoder_config("bert", width=12, layers=1, heads=2)
        cfg.model.tokenizer = _tokenizer_config("rcc", "tiny", 12)
    else:
        pre = load_config(ROOT / "configs/benchmark/pretrain.yml", PretrainConfig, [])
        cfg.model.tokenizer = apply_stream_channels(pre.model.tokenizer, pre.data.streams)
    torch.manual_seed(0)
    task = build_finetune_task(cfg, {}, load_weights=False)
    task.frozen_tokenizer_eval = True  # the benchmark's frozen_tokenizer_eval: the held tokenizer in eval mode
    return task, cfg


def bench_live(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """Frozen-token step vs the live language path's step on the benchmark's GREP configuration."""
    from seld.text.sentences import frame_sentences
    from seld.text.templates import TEMPLATES

    task, cfg = _live_task(args)
    batch_size = args.batch_size or cfg.train.batch_size
    steps = args.steps
    # warm ground-truth cache (as after the first epoch): every sentence of the timed batches
    for step in range(steps + 1):
        tgt = random_batch(batch_size, step, torch.device("cpu"))["target"].numpy()
        task.gt_cache.embed([s for t in tgt for i in task.training_template_pool for s in frame_sentences(t, TEMPLATES[i])])
    timed = {}
    for name, live in (("frozen", False), ("live", True)):
        task.freeze_tokenizer(live_projections=live)
        timed[name] = time_optimizer_steps(task, lambda step: random_batch(batch_size, step, device), steps, 1,
                                           device, args.amp, lr=cfg.train.lr, channels_last=args.channels_last)
    ratio = timed["live"] / timed["frozen"]
    steps_per_epoch = max(1, args.clips // batch_size)
    epochs = {k: args.budget_minutes * 60.0 / (v * steps_per_epoch) for k, v in timed.items()}
    trainable = sum(p.numel() for p in task.parameters() if p.requires_grad)  # the live set, timed last
    print(f"fine-tuning RCC-BERT-GREP, benchmark config ({task.text_encoder.name}; batch {batch_size} clips x "
          f"{task.train_frames or 50} frames through the encoder, median of {steps} steps):")
    print(f"  frozen tokens (tokenizer_lr 0):            {timed['frozen']:.3f} s/step, {epochs['frozen']:6.1f} epochs "
          f"in {args.budget_minutes:g} min over {args.clips} clips ({steps_per_epoch} steps/epoch, steps only)")
    print(f"  live projections (gradients through the encoder, {trainable / 1e3:.0f} k trainable): "
          f"{timed['live']:.3f} s/step, {epochs['live']:6.1f} epochs")
    print(f"  live / frozen step time: {ratio:.2f}x (goal <= 2x: {'met' if ratio <= 2 else 'missed'})")
    return {"live_frozen_step_s": timed["frozen"], "live_step_s": timed["live"], "live_ratio": ratio,
            "live_frozen_epochs": epochs["frozen"], "live_epochs": epochs["live"]}


def main(argv: Optional[list[str]] = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default="rcc,beats,clip,bert", help="comma list of rcc, beats, clip, bert")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="clips per step (default 2; live: the benchmark config's 4)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps (after one warm-up step)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", default="none", choices=["none", "bf16"])
    parser.add_argument("--channels-last", action="store_true", help="conv kernels channels-last (train.channels_last)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--size", default="real", choices=["real", "tiny"])
    parser.add_argument("--tokenizer", default=None,
                        help="folder with the BERT vocabulary for the bert stage (default: the MiniLM package's)")
    parser.add_argument("--budget-minutes", type=float, default=8.4,
                        help="live: fine-tuning minutes the epoch counts are for (default: 0.14 x 60, the benchmark's GREP share)")
    parser.add_argument("--clips", type=int, default=280, help="live: training clips per epoch (default: the benchmark's 280)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch sees no CUDA device (torch.cuda.is_available() is False)")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in ("rcc", "beats", "clip", "bert", "live")]
    if unknown:
        parser.error(f"unknown stage(s) {', '.join(unknown)} (rcc, beats, clip, bert, live)")
    print(f"{name}, torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), size {args.size}, "
          f"batch {args.batch_size or 'default'}, {args.steps} steps, amp {args.amp}, channels_last {args.channels_last}")
    results: dict[str, float] = {}
    fixed = args.batch_size
    for stage in stages:
        args.batch_size = fixed if fixed or stage == "live" else 2
        if stage in ("rcc", "beats"):
            results.update(bench_pretrain(stage, args, device))
        elif stage in ("clip", "bert"):
            results.update(bench_finetune(stage, args, device))
        else:
            results.update(bench_live(args, device))
        args.batch_size = fixed
    return results


if __name__ == "__main__":
    main()
