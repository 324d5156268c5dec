"""One-command learning benchmark on held-out simulated rooms: the DCASE2025 baseline CRNN, the
textseld stages and their controls, same features, same metric, a fixed wall-clock budget per
model, several seeds, paired intervals.

    python scripts/experiments/synthetic_benchmark.py [--clips 400] [--budget-minutes 60] [--seeds 3]
        [--extra-test-clips 200] [--runs grep,trep,...] [--out bench_out]

Per seed ``s`` (``--seed`` + 0, 1, ...; every seed has its own rooms and its own initialisation),
in ``<out>/seed<s>/`` (a rerun skips finished steps; a killed training run resumes from ``last.pt``):

1. ``data``: three simulated sets from different seeds (so different rooms): train (70 % of
   ``--clips``, or ``--train-clips``), validation (15 %) and test (15 %); features once per set with
   ``configs/benchmark/features.yml``; normalisation from the training set only.
2. training runs (:data:`RUNS`): the baseline CRNN, the RCC tokenizer, RCC-BERT-GREP / TREP with the
   offline MiniLM, and the controls that would explain a gain without the pre-trained encoder:
   each fine-tuning with a random-weight twin of MiniLM (``model.text_encoder.init: random``), a
   no-language head of the same trainable size on the three tokens without the encoder, the
   tokenizer continued for a fine-tuning's minutes, and the paper's own recipe.
3. ``report``: each run's checkpoint with the best validation F (``best_f.pt``; ``last.pt`` when no
   epoch finished) scored once on validation and on the test set(s); for every fine-tuned run the
   alignment of A with language (sentence retrieval, cosine / MAE to the ground-truth sentence).
   ``<out>/seed<s>/results.{md,json}`` per seed; ``<out>/results.{md,json}`` across seeds with each
   comparison as a paired mean difference and its 95 % interval (Student's t over seeds).

Budget: every training run stops after the step that crosses its share of ``--budget-minutes``
(``train.max_minutes``). Shares: baseline 0.43, pre-training 0.29, each fine-tuning row 0.14, so the
baseline's budget equals a textseld model's (pre-training + one fine-tuning) and every control gets
exactly what the row it controls gets. The tokenizer continued (``pretrain_cont``) resumes the
tokenizer's run for 0.14 more. The machine time is therefore more than ``--budget-minutes``: about
1.7 x it per seed in one lane. Data simulation and feature extraction are outside the budget.

Lanes: the run configs train on one thread each (``train.num_threads: 1``). ``--lanes 2`` (the
default on a machine with 2 or more cores) runs two training runs at once, one core each, over all
seeds; a run starts when the runs it needs (of its seed) are done. Every run still gets its share
of minutes on one core, so the comparison is unchanged.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, TypeVar

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SETS: dict[str, tuple[float, int]] = {"train": (0.70, 0), "val": (0.15, 1000), "test": (0.15, 2000)}
"""Set -> (fraction of --clips, seed offset): different seeds give different rooms."""
EXTRA_TEST_SEED_OFFSET = 3000
"""Seed offset of the optional second test set (``--extra-test-clips``)."""
DEFAULT_SHARES: dict[str, float] = {"baseline": 0.43, "pretrain": 0.29, "finetune": 0.14}
"""Fractions of ``--budget-minutes`` per kind of run. The baseline gets what one textseld model gets
(pre-training + one fine-tuning: 0.29 + 0.14 = 0.43). Pre-training gets twice a fine-tuning: measured
on 2 busy cores, the tokenizer gains validation F faster per minute than either fine-tuning (docs/results)."""
PAPER_RECIPE: tuple[str, ...] = (
    "tokenizer_lr=1.0e-6", "frozen_tokenizer_eval=false", "model.head.residual=false", "train_templates=null",
    "model.text_encoder.pooling=token", "loss.embed=mae", "loss.embed_weight=0.01", "projection_lr=null",
)
"""The paper's recipe on the benchmark's GREP: the whole tokenizer (projections too) trained at 1e-6, a plain (non-residual)
head, one of the 50 templates drawn per clip, [CLS] pooling, 0.01 x MAE (spec section 6)."""


@dataclass(frozen=True)
class Run:
    """One training run of a seed: its config, its budget and what it needs first."""

    name: str
    label: str
    schema: str
    """The stage that trains it: an entry of :data:`seld.tasks.STAGES` (``baseline`` | ``pretrain`` | ``finetune``)."""
    config: str
    """YAML file in ``--configs``."""
    share: str
    """Key of ``--shares``."""
    needs: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    continues: str | None = None
    """A run whose checkpoints this one resumes from (budget: its share on top of that run's)."""


RUNS: dict[str, Run] = {r.name: r for r in (
    Run("baseline", "Baseline CRNN (DCASE2025)", "baseline", "baseline.yml", "baseline"),
    Run("pretrain", "RCC tokenizer (pre-training)", "pretrain", "pretrain.yml", "pretrain"),
    Run("grep", "RCC-BERT-GREP (MiniLM)", "finetune", "finetune_grep.yml", "finetune", ("pretrain",)),
    Run("trep", "RCC-BERT-TREP (MiniLM)", "finetune", "finetune_trep.yml", "finetune", ("pretrain",)),
    Run("grep_random", "GREP, MiniLM random weights", "finetune", "finetune_grep.yml", "finetune", ("pretrain",),
        ("model.text_encoder.init=random",)),
    Run("trep_random", "TREP, MiniLM random weights", "finetune", "finetune_trep.yml", "finetune", ("pretrain",),
        ("model.text_encoder.init=random",)),
    Run("nolang", "No language (GREP head on the tokens)", "finetune", "finetune_grep.yml", "finetune", ("pretrain",),
        ("model.text_encoder.kind=none", "loss.embed_weight=0.0")),
    Run("pretrain_cont", "RCC tokenizer continued", "pretrain", "pretrain.yml", "finetune", ("pretrain",),
        continues="pretrain"),
    Run("paper_grep", "GREP, the paper's recipe", "finetune", "finetune_grep.yml", "finetune", ("pretrain",),
        PAPER_RECIPE),
)}
"""Every run the benchmark knows, in the order they are started and reported."""
FINETUNED: tuple[str, ...] = tuple(r.name for r in RUNS.values() if r.schema == "finetune")
COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("grep", "grep_random", "pre-trained - random encoder (GREP)"),
    ("trep", "trep_random", "pre-trained - random encoder (TREP)"),
    ("grep", "nolang", "language - no language (GREP head)"),
    ("grep", "pretrain", "fine-tuned - its tokenizer (GREP)"),
    ("trep", "pretrain", "fine-tuned - its tokenizer (TREP)"),
    ("grep", "pretrain_cont", "fine-tuned - tokenizer continued, equal minutes (GREP)"),
    ("trep", "pretrain_cont", "fine-tuned - tokenizer continued, equal minutes (TREP)"),
    ("grep", "paper_grep", "our recipe - the paper's (GREP)"),
    ("best", "baseline", "best textseld (on validation) - baseline"),
)
"""(a, b, what a - b measures); ``best`` is the fine-tuning with the higher mean validation F."""
RUN_NAMES: dict[str, str] = {name: r.label for name, r in RUNS.items()}
SPLIT = "dev-train-synth"  # every simulated set is written with test_fraction 0


def set_sizes(clips: int, train_clips: int | None = None) -> dict[str, int]:
    """Clips per set: at least 2 each (the validator needs a batch; the trainer needs >= batch size);
    ``train_clips`` replaces the training set's 70 % share of ``clips``."""
    val = max(2, round(clips * SETS["val"][0]))
    test = max(2, round(clips * SETS["test"][0]))
    train = clips - val - test if train_clips is None else train_clips
    return {"train": max(2, train), "val": val, "test": test}


def seeds_of(seed: int, count: int) -> list[int]:
    """The seeds of ``--seed`` and ``--seeds``: consecutive, so every seed's sets (seed + 0 / 1000 /
    2000 / 3000) differ from every other seed's as long as ``count`` < 1000."""
    return [seed + k for k in range(count)]


# ----------------------------------------------------------------------------- data
def prepare_data(out: Path, clips: int, seed: int, workers: int | None, cfg_dir: Path,
                 train_clips: int | None = None) -> Path:
    """Simulate the three sets, extract their features, and link them as ``<out>/features/{train,val,test}.h5``."""
    for name, n in set_sizes(clips, train_clips).items():
        prepare_set(out, name, n, seed + SETS[name][1], workers, cfg_dir)
    return out / "features"


def prepare_set(out: Path, name: str, n: int, seed: int, workers: int | None, cfg_dir: Path) -> Path:
    """Simulate one set of ``n`` clips from ``seed``, extract its features and link them as
    ``<out>/features/<name>.h5``; the training set also writes the normalisation every set uses."""
    from seld.config import load_config
    from seld.features.config import FeatureConfig
    from seld.features.extract import extract_features
    from seld.features.merge import merge_splits, merged_file
    from seld.sim.generate import generate_dataset
    from seld.sim.scenes import SynthConfig

    feats = out / "features"
    feats.mkdir(parents=True, exist_ok=True)
    synth_cfg = SynthConfig(test_fraction=0.0)
    root = out / "data" / name
    print(f"[data] {name}: {n} clips, seed {seed} -> {root}", flush=True)
    generate_dataset(root, n, seed, synth_cfg, workers=workers, progress=False)
    fcfg = load_config(
        cfg_dir / "features.yml", FeatureConfig,
        [f"dataset_root={root}", f"output_dir={out / 'features_per_set' / name}",
         f"splits=[{SPLIT}]", f"train_splits=[{SPLIT}]"],
    )
    if workers is not None:
        fcfg.workers = workers
    report = extract_features(fcfg, progress=False)
    if report.failed:
        raise SystemExit(f"feature extraction failed for {len(report.failed)} clip(s): {report.failed[:3]}")
    merged = merged_file(fcfg.output_dir, SPLIT)
    if report.done or not merged.is_file():
        merge_splits(fcfg, progress=False)
    link = feats / f"{name}.h5"
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(merged, feats))
    if name == "train":
        shutil.copyfile(Path(fcfg.output_dir) / "normalization.json", feats / "normalization.json")
        shutil.copyfile(Path(fcfg.output_dir) / "config.yml", feats / "config.yml")
    return link


# ----------------------------------------------------------------------------- training
def selected_checkpoint(run_dir: Path) -> Path:
    """The checkpoint chosen on validation: ``best_f.pt``, else ``last.pt`` (no epoch finished)."""
    ckpts = run_dir / "checkpoints"
    for name in ("best_f.pt", "last.pt"):
        if (ckpts / name).is_file():
            return ckpts / name
    raise SystemExit(f"{run_dir}: no checkpoint; run its stage first")


def run_minutes(run: Run, budget: float, shares: dict[str, float]) -> float:
    """``train.max_minutes`` of ``run``: its share of ``budget``; a continued run counts the minutes of
    the run it resumes (the engine's clock carries over in the checkpoint)."""
    minutes = budget * shares[run.share]
    if run.continues is not None:
        minutes += run_minutes(RUNS[run.continues], budget, shares)
    return minutes


def run_overrides(run: Run, sets: list[tuple[str, str]]) -> list[str]:
    """The run's own overrides, then every ``--set KEY:override`` whose KEY is the run's name or its
    stage (``finetune`` reaches every fine-tuning row, ``pretrain`` both tokenizer runs)."""
    return [*run.overrides, *(o for key, o in sets if key in (run.name, run.schema))]


def train_run(run: Run, seed_dir: Path, seed: int, minutes: float, cfg_dir: Path, extra: list[str]) -> dict[str, Any]:
    """Train ``run`` of one seed within ``minutes`` (skipped when its ``benchmark_done.json`` exists)."""
    from seld.config import load_config
    from seld.io_utils import atomic_write_text
    from seld.tasks import STAGES as TRAINING_STAGES

    run_dir = seed_dir / "runs" / run.name
    done = run_dir / "benchmark_done.json"
    if done.is_file():
        print(f"[{seed_dir.name}/{run.name}] finished earlier ({done}); skipped", flush=True)
        return json.loads(done.read_text())
    overrides = [
        f"data.features_dir={seed_dir / 'features'}", "data.train_splits=[train]", "data.val_splits=[val]",
        f"train.out_dir={run_dir}", f"train.seed={seed}", f"train.max_minutes={minutes}", "train.progress=false",
    ]
    if run.schema == "finetune":
        overrides.append(f"model.pretrained={selected_checkpoint(seed_dir / 'runs' / 'pretrain')}")
    if run.continues is not None and not (run_dir / "checkpoints").is_dir():
        # resume the other run where it stopped: its weights, optimiser, clock and best checkpoints
        tmp = run_dir / "checkpoints.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(seed_dir / "runs" / run.continues / "checkpoints", tmp)
        tmp.rename(run_dir / "checkpoints")
    stage = TRAINING_STAGES[run.schema].parts()  # the stage's schema and runner, as seld <stage> uses them
    cfg = load_config(cfg_dir / run.config, stage.schema, overrides + extra)
    print(f"[{seed_dir.name}/{run.name}] training for at most {minutes:.1f} min -> {run_dir}", flush=True)
    t = time.time()
    trainer = stage.run(cfg)
    info = {
        "minutes": (time.time() - t) / 60.0,
        "epochs": len(trainer.history),
        "steps": trainer.global_step,
        "budget_minutes": minutes,
    }
    atomic_write_text(done, json.dumps(info, indent=2) + "\n")
    return info


def is_done(seed_dir: Path, run: str) -> bool:
    return (seed_dir / "runs" / run / "benchmark_done.json").is_file()


JobT = TypeVar("JobT", bound=Hashable)


def run_children(jobs: list[JobT], lanes: int, start: Callable[[JobT], tuple[subprocess.Popen, Path]],
                 label: Callable[[JobT], str], tag: str,
                 ready: Callable[[JobT, set[JobT]], bool] = lambda job, finished: True, poll_s: float = 2.0) -> None:
    """Run one child process per job, at most ``lanes`` at a time, in the order of ``jobs``.

    A job starts once ``ready(job, finished)`` (``finished``: the jobs finished in this call);
    ``start(job)`` launches its child and returns it with its log. A failed child, or jobs that can
    never start (none running, none ready), stop the others and raise SystemExit naming the log or
    the jobs; so does any other exit (Ctrl-C): no child outlives the call. ``poll_s``: seconds between
    looks at the children.
    """
    pending, finished = list(jobs), set()
    running: dict[JobT, tuple[subprocess.Popen, Path]] = {}
    try:
        while pending or running:
            for job in list(pending):
                if len(running) >= lanes:
                    break
                if ready(job, finished):
                    pending.remove(job)
                    running[job] = start(job)
                    print(f"[{tag}] {label(job)} started (log: {running[job][1]})", flush=True)
            if pending and not running:
                raise SystemExit(f"[{tag}] {', '.join(map(label, pending))} wait for runs that are neither done nor selected")
            time.sleep(poll_s)
            for job, (proc, log_path) in list(running.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                del running[job]
                if rc != 0:
                    raise SystemExit(f"[{tag}] {label(job)} failed (exit {rc}); see {log_path}")
                finished.add(job)
                print(f"[{tag}] {label(job)} finished", flush=True)
    finally:
        for proc, _ in running.values():
            proc.terminate()
        for proc, _ in running.values():
            proc.wait()


def start_child(argv: list[str], log_path: Path, mode: str = "a", env: dict[str, str] | None = None) -> tuple[subprocess.Popen, Path]:
    """This script as a child process with ``argv``, its output into ``log_path`` (opened with ``mode``)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, mode) as log:  # the child keeps its own handle
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *argv],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    return proc, log_path


def run_in_lanes(jobs: list[tuple[int, str]], lanes: int, lane_argv: list[str], out: Path) -> None:
    """Run training ``jobs`` (seed, run) as child processes of this script, at most ``lanes`` at a time.

    A job starts when the runs it needs (``Run.needs``, same seed) are done; tokenizers first (the
    fine-tunings of that seed wait for them). Each child prints into ``<out>/seed<s>/runs/<run>.log``;
    a failed child stops the others and the benchmark (rerun to resume: finished runs are skipped).
    """
    def seed_dir(seed: int) -> Path:
        return out / f"seed{seed}"

    order = list(RUNS)
    finished = {(s, r) for s, r in jobs if is_done(seed_dir(s), r)}
    for s, r in sorted(finished):
        print(f"[seed{s}/{r}] finished earlier; skipped", flush=True)

    def ready(job: tuple[int, str], done_now: set[tuple[int, str]]) -> bool:
        return all((job[0], n) in finished | done_now or is_done(seed_dir(job[0]), n) for n in RUNS[job[1]].needs)

    def start(job: tuple[int, str]) -> tuple[subprocess.Popen, Path]:
        s, r = job
        return start_child([*lane_argv, f"--seed={s}", "--seeds=1", "--stages=train", f"--runs={r}", "--lanes=1"],
                           seed_dir(s) / "runs" / f"{r}.log")

    # seed by seed (a stopped benchmark leaves whole seeds), within a seed in the table's order
    pending = sorted((j for j in jobs if j not in finished), key=lambda j: (j[0], order.index(j[1])))
    run_children(pending, lanes, start, lambda job: f"seed{job[0]}/{job[1]}", "lanes", ready)


# ----------------------------------------------------------------------------- scoring
@dataclass
class SplitOutputs:
    """One model over ``features/<split>.h5``: outputs, reference events, targets and (fine-tunings) A."""

    preds: dict[str, Any]
    refs: dict[str, Any]
    targets: dict[str, Any]
    embeddings: dict[str, Any] | None


def predict_split(model: Any, seed_dir: Path, split: str, predict: Any = None, embed: bool = False) -> SplitOutputs:
    """``predict(src, doa, dist)`` (default: the task's) over ``features/<split>.h5`` in batches of 8
    clips; with ``embed`` the task's own output and A of a fine-tuning instead (``predict_and_embed``)."""
    import torch

    from seld.data.dataset import SeldDataset
    from seld.data.targets import target_to_events

    task = model.task
    predict = predict or task.predict
    feats = seed_dir / "features"
    ds = SeldDataset(feats / f"{split}.h5", feats / "normalization.json", model.streams, train=False)
    out = SplitOutputs({}, {}, {}, {} if embed else None)
    with torch.no_grad():
        for start in range(0, len(ds), 8):
            items = [ds[i] for i in range(start, min(len(ds), start + 8))]
            batch = {k: torch.stack([it[k] for it in items]) for k in ("src", "doa", "dist")}
            if embed:  # the output and A from one pass through the text encoder
                out_t, emb_t = task.predict_and_embed(batch["src"], batch["doa"], batch["dist"])
                outputs, embs = out_t.float().numpy(), emb_t.float().numpy()
            else:
                outputs, embs = predict(batch["src"], batch["doa"], batch["dist"]).float().numpy(), None
            for i, (it, o) in enumerate(zip(items, outputs)):
                clip = it["clip_id"]
                out.preds[clip] = o
                out.targets[clip] = it["target"].numpy()
                out.refs[clip] = target_to_events(out.targets[clip])
                if embs is not None:
                    out.embeddings[clip] = embs[i]
    return out


def seld_scores(outputs: SplitOutputs) -> Any:
    from seld.metrics import MetricConfig, score_outputs

    return score_outputs(outputs.preds, outputs.refs, MetricConfig())


def score_row(scores: Any, ckpt: str) -> dict[str, Any]:
    import numpy as np

    return {"checkpoint": ckpt, "F": float(scores.F), "DOAE": float(scores.DOAE), "RDE": float(scores.RDE),
            "F_per_class": [float(v) for v in np.nan_to_num(scores.classwise_F)]}


def has_language(task: Any) -> bool:
    """Whether the model's A lives in a text encoder's space (fine-tunings with a real encoder)."""
    return hasattr(task, "embed") and getattr(getattr(task, "text_encoder", None), "embeds_sentences", True)


def frame_sentences_of(task: Any, outputs: SplitOutputs) -> tuple[list[tuple[str, int]], list[str], Any]:
    """Every frame of a split: ``(clip, frame)``, its ground-truth sentence (the evaluation template)
    and A ``(frames, D)``, in clip order."""
    import numpy as np

    from seld.text.sentences import frame_sentences
    from seld.text.templates import TEMPLATES

    template = TEMPLATES[task.eval_template]
    fits = task.text_encoder.tokenizer.fits
    clips = sorted(outputs.embeddings)
    where = [(c, f) for c in clips for f in range(len(outputs.embeddings[c]))]
    sentences = [s for c in clips for s in frame_sentences(outputs.targets[c], template, fits)]
    return where, sentences, np.concatenate([outputs.embeddings[c] for c in clips])


def alignment_on(task: Any, outputs: SplitOutputs) -> dict[str, Any]:
    """Sentence retrieval by A over every frame of a split: each frame's ground-truth sentence (the
    evaluation template) among the distinct sentences of the split, by cosine with the frozen
    encoder's embedding of each sentence; plus the mean cosine and MAE between A and E(gt); under
    ``sounding`` the same for the frames with at least one source (the silent frames' one sentence is
    an easy target that can carry R@1 alone)."""
    import numpy as np

    from seld.alignment import sentence_retrieval
    from seld.text.sentences import NO_SOURCE_SENTENCE

    _, sentences, a = frame_sentences_of(task, outputs)
    distinct = sorted(set(sentences))
    emb = task.gt_cache.embed(distinct).float().cpu().numpy()
    scores = sentence_retrieval(a, sentences, emb, distinct).to_dict()
    sounding = np.array([s != NO_SOURCE_SENTENCE for s in sentences])
    if sounding.any():
        scores["sounding"] = sentence_retrieval(a[sounding], [s for s, k in zip(sentences, sounding) if k], emb,
                                                distinct).to_dict()
    return scores


def retrieval_example(task: Any, outputs: SplitOutputs, path: Path, title: str, top: int = 6) -> Path | None:
    """The figure of one retrieval: the split's most frequent sentence with sources as the query, the
    ``top`` frames as ``seld query --index`` ranks them (:func:`seld.query.rank_frames`) with their
    reference sentences."""
    from seld.constants import LABEL_HOP_SECONDS
    from seld.embeddings import EmbeddingIndex
    from seld.plots import plot_retrieval_example
    from seld.query import rank_frames
    from seld.text.sentences import NO_SOURCE_SENTENCE

    where, sentences, _ = frame_sentences_of(task, outputs)
    counts: dict[str, int] = {}
    for s in sentences:
        if s != NO_SOURCE_SENTENCE:
            counts[s] = counts.get(s, 0) + 1
    if not counts:
        return None
    query = min(counts, key=lambda s: (-counts[s], s))
    reference = dict(zip(where, sentences))
    index = EmbeddingIndex(path, {c: outputs.embeddings[c] for c in sorted(outputs.embeddings)}, {}, {}, None, None,
                           LABEL_HOP_SECONDS)
    frames, _ = rank_frames(index, task.gt_cache.embed([query]).float().cpu().numpy()[0], top)
    hits = [(h.clip, h.frame, h.score, reference[(h.clip, h.frame)]) for h in frames]
    return plot_retrieval_example(query, hits, path, title)


def language_queries(task: Any, outputs: SplitOutputs) -> dict[str, Any]:
    """"Where is the <class>?" for every clip and class of a split, answered through the model's text
    encoder (F / DOAE / RDE beside the model's own output on the same classes), and the accuracy of
    the encoder on the fixed paraphrases of the 13 class names."""
    from seld.query import ClassMatcher, class_embedder, paraphrase_accuracy
    from seld.query_scores import class_query_scores

    scores = class_query_scores(outputs.preds, outputs.refs, ClassMatcher(class_embedder(task)))
    return {**scores.to_dict(), "paraphrase_accuracy": float(paraphrase_accuracy(task))}


REPORT_VERSION = 2
"""Version of what :func:`score_run` computes; a row cached by another version is scored again
(2: the class step reads the encoder with its sentence pooling, :func:`seld.query.class_embedder`)."""


def score_run(name: str, seed_dir: Path, splits: tuple[str, ...]) -> dict[str, Any]:
    """The run's row, scored by :func:`score_checkpoint` once per checkpoint: kept in
    ``runs/<run>/report_row.json`` with the checkpoint's sha256, the splits and :data:`REPORT_VERSION`,
    and reused while all three are unchanged (a rerun of the report, or the summary after the seeds'
    reports ran in lanes)."""
    from seld.io_utils import atomic_write_text, file_sha256

    ckpt = selected_checkpoint(seed_dir / "runs" / name)
    key = {"checkpoint": str(ckpt.relative_to(seed_dir)), "sha256": file_sha256(ckpt), "splits": list(splits),
           "report_version": REPORT_VERSION}
    cache = seed_dir / "runs" / name / "report_row.json"
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            return stored["row"]
    row = score_checkpoint(name, seed_dir, ckpt, splits)
    atomic_write_text(cache, json.dumps({"key": key, "row": row}, indent=2) + "\n")
    return row


def score_checkpoint(name: str, seed_dir: Path, ckpt: Path, splits: tuple[str, ...]) -> dict[str, Any]:
    """The run's validation-selected checkpoint on validation and on every test split (each scored once);
    its CSVs in ``predictions/<run>`` (``test``) or ``predictions_<split>/<run>``; alignment of A for
    fine-tunings with a text encoder; what the text path adds for residual heads (validation)."""
    from seld.decoding import write_prediction_csvs
    from seld.tasks.loading import load_task

    run_dir = seed_dir / "runs" / name
    model = load_task(ckpt)
    task = model.task
    embed = has_language(task)
    params = list(task.parameters())
    row: dict[str, Any] = {
        **json.loads((run_dir / "benchmark_done.json").read_text()),
        "params_total": int(sum(p.numel() for p in params)),
        "params_trainable": int(sum(p.numel() for p in params if p.requires_grad)),
    }
    for split in ("val", *splits):
        outputs = predict_split(model, seed_dir, split, embed=embed and split in ("val", "test"))  # A where read
        scores = score_row(seld_scores(outputs), str(ckpt.relative_to(seed_dir)))
        if split != "val":
            pred_dir = seed_dir / ("predictions" if split == "test" else f"predictions_{split}") / name
            write_prediction_csvs(pred_dir, list(outputs.preds), [outputs.preds[c] for c in outputs.preds])
        if split == "test":
            row.update(scores)  # the first test set's scores are the row's headline
        else:
            row[split] = scores
        if embed and split in ("val", "test"):
            row.setdefault("alignment", {})[split] = alignment_on(task, outputs)
        if embed and split == "test":
            row["query"] = language_queries(task, outputs)
            if name == "grep":
                retrieval_example(task, outputs, seed_dir / "retrieval_example_grep.png",
                                  f"{RUN_NAMES[name]}, test set: frames ranked by cos(A, E(query))")
        if split == "val" and getattr(task, "token_head", None) is not None:
            direct = seld_scores(predict_split(model, seed_dir, "val", predict=task.predict_direct_path))
            row["text_path_val"] = {
                "with": {k: scores[k] for k in ("F", "DOAE", "RDE")},
                "without": {"F": float(direct.F), "DOAE": float(direct.DOAE), "RDE": float(direct.RDE)},
            }
    return row


# ----------------------------------------------------------------------------- reports
def _table_head(*columns: str) -> list[str]:
    """The header and separator lines of a markdown table with these columns."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


ALIGNMENT_HEAD = _table_head("model", "set", "R@1 (%)", "R@5 (%)", "R@10 (%)", "median rank / candidates",
                             "mean cos(A, E(gt))")
"""The alignment table's header, the same in a seed's report and in the summary over seeds."""


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:.1f}" if pct else f"{v:.2f}"


def _alignment_cells(al: dict[str, Any] | None) -> str:
    if not al:
        return "- | - | - | - | -"
    return (f"{100 * al['recall_at_1']:.1f} ({100 * al['chance_recall_at_1']:.2f}) | {100 * al['recall_at_5']:.1f} | {100 * al['recall_at_10']:.1f} | "
            f"{al['median_rank']:g} / {al['candidates']:g} | {al['mean_cosine']:.3f}")


def write_seed_report(seed_dir: Path, results: dict[str, dict[str, Any]], meta: dict[str, Any]) -> None:
    """``results.json``, ``results.md`` and the PNG plots of one seed under ``seed_dir``."""
    from seld.constants import SHORT_CLASS_NAMES
    from seld.io_utils import atomic_write_text
    from seld.plots import plot_class_scores, plot_clip_tracks, plot_learning_curves

    atomic_write_text(seed_dir / "results.json", json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    lines = [
        f"# Synthetic benchmark, seed {meta['seed']}: held-out rooms, test sets scored once", "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; started {meta['started']}.  ",
        "Sets (different seeds, so different rooms): " + ", ".join(f"{k} {v}" for k, v in meta["sets"].items())
        + f". Training budget {meta['budget_minutes']:g} min per model, shares "
        + ", ".join(f"{k} {v:.0%}" for k, v in meta["shares"].items())
        + " (data simulation and features not counted). Checkpoints selected on validation F (`best_f.pt`), "
        "every set scored once with it (DCASE2025 metric, F20°/1, macro).", "",
        *_table_head("model", "params trainable / total", "epochs", "minutes", "val F (%)", "test F20°/1 (%)",
                     "DOAE (°)", "RDE", *(["test2 F (%)"] if "test2" in meta else [])),
    ]
    for name, r in results.items():
        lines.append(
            f"| {RUN_NAMES[name]} | {r['params_trainable']:,} / {r['params_total']:,} | {r['epochs']} | "
            f"{r['minutes']:.1f} | {_fmt(r['val']['F'], pct=True)} | {_fmt(r['F'], pct=True)} | {_fmt(r['DOAE'])} | "
            f"{_fmt(r['RDE'])} |" + (f" {_fmt(r['test2']['F'], pct=True)} |" if "test2" in r else "")
        )
    lines += ["", "F20°/1 per class on the test set (%):", "",
              *_table_head("model", *SHORT_CLASS_NAMES)]
    for name, r in results.items():
        lines.append(f"| {RUN_NAMES[name]} | " + " | ".join(_fmt(v, pct=True) for v in r["F_per_class"]) + " |")
    aligned = {n: r["alignment"] for n, r in results.items() if r.get("alignment")}
    if aligned:
        lines += ["", "Alignment of A with language: each frame's ground-truth sentence (evaluation template) ranked "
                  "among the distinct sentences of the set by cos(A, E(sentence)); chance in brackets:", "",
                  *ALIGNMENT_HEAD]
        for name, al in aligned.items():
            for split in ("val", "test"):
                lines.append(f"| {RUN_NAMES[name]} | {split} | {_alignment_cells(al.get(split))} |")
                lines.append(f"| {RUN_NAMES[name]} | {split}, frames with sources | "
                             f"{_alignment_cells((al.get(split) or {}).get('sounding'))} |")
    asked = {n: r["query"] for n, r in results.items() if r.get("query")}
    if asked:
        lines += ["", "Asked in words on the test set: \"where is the <class>?\" for every clip and class in its labels, "
                  "the class read by the text encoder (the track of the matched class, scored as the class asked "
                  "about), beside the model's own output on the same classes; paraphrase accuracy on the fixed 65 "
                  "paraphrases of the class names (chance 1/13):", "",
                  *_table_head("model", "query F (%)", "own F, same classes (%)", "query DOAE / RDE", "queries right",
                               "paraphrases right (%)")]
        for name, q in asked.items():
            lines.append(f"| {RUN_NAMES[name]} | {_fmt(q['query']['F'], pct=True)} | {_fmt(q['own_same_classes']['F'], pct=True)} | "
                         f"{_fmt(q['query']['DOAE'])} / {_fmt(q['query']['RDE'])} | {_fmt(q['query_accuracy'], pct=True)} | "
                         f"{_fmt(q['paraphrase_accuracy'], pct=True)} |")
    with_path = {s: r["text_path_val"] for s, r in results.items() if r.get("text_path_val")}
    if with_path:
        lines += ["", "Validation with and without the text head's term (`model.head.residual` runs: output = "
                  "pre-training head(tokens) + text head). Compare the random-weight and no-language rows before "
                  "reading this as what language adds:", "",
                  *_table_head("model", "val F with / without the text path (%)", "DOAE (°)", "RDE")]
        for name, tp in with_path.items():
            w, wo = tp["with"], tp["without"]
            lines.append(f"| {RUN_NAMES[name]} | {_fmt(w['F'], pct=True)} / {_fmt(wo['F'], pct=True)} | "
                         f"{_fmt(w['DOAE'])} / {_fmt(wo['DOAE'])} | {_fmt(w['RDE'])} / {_fmt(wo['RDE'])} |")
    figures = {}
    runs = {RUN_NAMES[s]: seed_dir / "runs" / s for s in results}
    # fine-tunings start where their tokenizer's training ended: plot them on the model's whole budget
    pre_minutes = results.get("pretrain", {}).get("minutes", 0.0)
    shifts = {RUN_NAMES[s]: pre_minutes for s in results if RUNS[s].schema == "finetune"}
    figures["learning_curves"] = plot_learning_curves(runs, seed_dir / "learning_curves.png", shifts)
    figures["class_scores"] = plot_class_scores({RUN_NAMES[s]: r for s, r in results.items()},
                                                seed_dir / "class_scores.png")
    ref_dir = seed_dir / "data" / "test" / "metadata_dev" / SPLIT
    clips = sorted(p.stem for p in ref_dir.glob("*.csv"))
    if clips:
        busiest = max(clips, key=lambda c: len((ref_dir / f"{c}.csv").read_text().splitlines()))
        for name in results:
            if name in ("baseline", "pretrain", "grep", "trep"):
                figures[f"tracks_{name}"] = plot_clip_tracks(
                    seed_dir / "predictions" / name, ref_dir, busiest, seed_dir / f"tracks_{name}_{busiest}.png")
    if (seed_dir / "retrieval_example_grep.png").is_file():
        figures["retrieval"] = seed_dir / "retrieval_example_grep.png"
    lines += ["", "Figures: " + ", ".join(f"`{Path(p).name}`" for p in figures.values()), ""]
    atomic_write_text(seed_dir / "results.md", "\n".join(lines))
    print("\n".join(lines), flush=True)


def metric_values(per_seed: dict[int, dict[str, Any]], run: str, split: str, key: str = "F") -> dict[int, float]:
    """Seed -> the run's ``key`` on ``split`` (``val``, ``test``, ``test2``), for the seeds that have it."""
    vals = {}
    for seed, results in per_seed.items():
        r = results.get(run)
        if r is None:
            continue
        src = r if split == "test" else r.get(split)
        if src is not None and key in src:
            vals[seed] = float(src[key])
    return vals


def alignment_values(per_seed: dict[int, dict[str, Any]], run: str, split: str, key: str) -> dict[int, float]:
    """Seed -> the run's alignment figure ``key`` on ``split`` (``val``, ``test``; ``val_sounding``,
    ``test_sounding``: the frames with sources), for the seeds that have it."""
    name, _, part = split.partition("_")
    out = {}
    for seed, res in per_seed.items():
        al = res.get(run, {}).get("alignment", {}).get(name)
        al = al.get(part) if al is not None and part else al
        if al is not None:
            out[seed] = float(al[key])
    return out


def best_textseld(per_seed: dict[int, dict[str, Any]]) -> str | None:
    """The textseld model (not a control) with the higher mean validation F over seeds."""
    import numpy as np

    means = {r: float(np.mean(list(v.values()))) for r in ("grep", "trep", "paper_grep")
             if (v := metric_values(per_seed, r, "val"))}
    return max(means, key=means.get) if means else None


def paired(a: dict[int, float], b: dict[int, float]) -> dict[str, Any] | None:
    """Paired mean difference a - b over the seeds both have, with its 95 % interval."""
    from seld.stats import paired_difference

    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    d = paired_difference([a[s] for s in seeds], [b[s] for s in seeds])
    return {"mean": d.mean, "low": d.low, "high": d.high, "n": d.n, "seeds": seeds}


ALIGNMENT_SETS: tuple[str, ...] = ("val", "test", "val_sounding", "test_sounding")
"""Where alignment is summarised: every frame, and the frames with at least one source."""
QUERY_FIGURES: dict[str, Any] = {
    "query_F": lambda q: q["query"]["F"], "own_F": lambda q: q["own_same_classes"]["F"],
    "query_accuracy": lambda q: q["query_accuracy"], "paraphrase_accuracy": lambda q: q["paraphrase_accuracy"],
}
"""Figures of the language queries averaged over seeds (``language_queries``)."""


def _nanmean(values: list[Any]) -> float:
    import numpy as np

    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.mean(vals)) if vals else float("nan")


def summarize(per_seed: dict[int, dict[str, Any]], splits: tuple[str, ...]) -> dict[str, Any]:
    """Across seeds: each run's per-seed and mean F per split, its alignment, and every comparison of
    :data:`COMPARISONS` as a paired difference with its interval per split."""
    import numpy as np

    runs = [r for r in RUNS if any(r in res for res in per_seed.values())]
    summary: dict[str, Any] = {"runs": {}, "comparisons": [], "best_textseld": best_textseld(per_seed)}
    for run in runs:
        row: dict[str, Any] = {}
        for split in ("val", *splits):
            vals = metric_values(per_seed, run, split)
            row[split] = {"per_seed": vals, "mean": float(np.mean(list(vals.values()))) if vals else float("nan"),
                          "sd": float(np.std(list(vals.values()), ddof=1)) if len(vals) > 1 else float("nan")}
        al = {}
        for split in ALIGNMENT_SETS:
            r1 = alignment_values(per_seed, run, split, "recall_at_1")
            if r1:
                al[split] = {key: float(np.mean(list(alignment_values(per_seed, run, split, key).values())))
                             for key in ("recall_at_1", "recall_at_5", "recall_at_10", "median_rank", "chance_recall_at_1", "candidates", "mean_cosine", "mae")}
        if al:
            row["alignment"] = al
        asked = [res[run]["query"] for res in per_seed.values() if run in res and "query" in res[run]]
        if asked:
            row["query"] = {key: _nanmean([get(q) for q in asked]) for key, get in QUERY_FIGURES.items()}
        summary["runs"][run] = row
    for a, b, what in COMPARISONS:
        a_run = summary["best_textseld"] if a == "best" else a
        if a_run is None or a_run not in summary["runs"] or b not in summary["runs"]:
            continue
        entry = {"a": a_run, "b": b, "what": what, "F": {}}
        for split in ("val", *splits):
            entry["F"][split] = paired(metric_values(per_seed, a_run, split), metric_values(per_seed, b, split))
        if "alignment" in summary["runs"][a_run] and "alignment" in summary["runs"][b]:
            entry["R@1"] = {s: paired(alignment_values(per_seed, a_run, s, "recall_at_1"), alignment_values(per_seed, b, s, "recall_at_1"))
                            for s in ALIGNMENT_SETS}
        summary["comparisons"].append(entry)
    return summary


def _interval(d: dict[str, Any] | None, pct: bool = True) -> str:
    if d is None:
        return "-"
    k = 100.0 if pct else 1.0
    if d["n"] < 2 or math.isnan(d["low"]):
        return f"{k * d['mean']:+.1f} (n={d['n']}, no interval)"
    mark = " **" if d["low"] > 0 or d["high"] < 0 else ""
    return f"{k * d['mean']:+.1f} [{k * d['low']:+.1f}, {k * d['high']:+.1f}]{mark}"


def write_summary(out: Path, per_seed: dict[int, dict[str, Any]], meta: dict[str, Any], splits: tuple[str, ...]) -> dict[str, Any]:
    """``<out>/results.{json,md}`` across seeds and ``<out>/comparisons.png``."""
    from seld.io_utils import atomic_write_text

    summary = summarize(per_seed, splits)
    atomic_write_text(out / "results.json", json.dumps({"meta": meta, "summary": summary}, indent=2) + "\n")
    seeds = sorted(per_seed)
    cols = ("val", *splits)
    lines = [
        f"# Synthetic benchmark over {len(seeds)} seed(s): controls and paired intervals", "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; report written {meta['started']}.  ",
        f"Seeds {seeds} (each: its own rooms for every set, its own initialisation); per-seed tables in "
        + ", ".join(f"`seed{s}/results.md`" for s in seeds) + f". Budget {meta['budget_minutes']:g} min per model.", "",
        "F20°/1 (%), mean over seeds (per seed in brackets):", "",
        *_table_head("model", *cols),
    ]
    for run, row in summary["runs"].items():
        cells = []
        for split in cols:
            r = row[split]
            per = ", ".join(f"{100 * v:.1f}" for v in r["per_seed"].values())
            cells.append(f"{_fmt(r['mean'], pct=True)} ({per})" if r["per_seed"] else "-")
        lines.append(f"| {RUN_NAMES[run]} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences a - b over seeds, F20°/1 points, mean [95 % interval, Student's t]; ** where "
              "the interval excludes zero. Only those are effects this benchmark shows:", "",
              *_table_head("comparison", *cols)]
    for c in summary["comparisons"]:
        lines.append(f"| {c['what']} ({c['a']} - {c['b']}) | " + " | ".join(_interval(c["F"][s]) for s in cols) + " |")
    aligned = {r: row["alignment"] for r, row in summary["runs"].items() if "alignment" in row}
    if aligned:
        lines += ["", "Alignment of A with language (mean over seeds): sentence retrieval among the distinct "
                  "sentences of the set, chance in brackets (`_sounding`: the frames with at least one source, among "
                  "the same candidates); goal R@1 >= 10 x chance, median rank in the top 5 %:", "",
                  *ALIGNMENT_HEAD]
        for run, al in aligned.items():
            for split, v in al.items():
                lines.append(f"| {RUN_NAMES[run]} | {split} | {_alignment_cells(v)} |")
        r1 = [c for c in summary["comparisons"] if "R@1" in c]
        if r1:
            lines += ["", *_table_head("R@1 difference (points)", *ALIGNMENT_SETS)]
            for c in r1:
                lines.append(f"| {c['what']} | " + " | ".join(_interval(c["R@1"][s]) for s in ALIGNMENT_SETS) + " |")
    asked = {r: row["query"] for r, row in summary["runs"].items() if "query" in row}
    if asked:
        lines += ["", "Asked in words on the test set (mean over seeds): \"where is the <class>?\" answered through the "
                  "text encoder vs the model's own output on the same classes; paraphrases of the class names mapped "
                  "right (chance 7.7 %):", "",
                  *_table_head("model", "query F (%)", "own F, same classes (%)", "queries right (%)",
                               "paraphrases right (%)")]
        for run, q in asked.items():
            lines.append(f"| {RUN_NAMES[run]} | {_fmt(q['query_F'], pct=True)} | {_fmt(q['own_F'], pct=True)} | "
                         f"{_fmt(q['query_accuracy'], pct=True)} | {_fmt(q['paraphrase_accuracy'], pct=True)} |")
    plot = plot_comparisons(summary, out / "comparisons.png", cols)
    lines += ["", f"Figure: `{plot.name}` (the paired differences with their intervals).", ""]
    atomic_write_text(out / "results.md", "\n".join(lines))
    print("\n".join(lines), flush=True)
    return summary


def plot_comparisons(summary: dict[str, Any], path: Path, cols: tuple[str, ...]) -> Path:
    """Forest plot: every comparison's paired mean difference of F with its interval, one colour per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seld.io_utils import atomic_path

    comps = summary["comparisons"]
    fig, ax = plt.subplots(figsize=(9, 0.55 * max(3, len(comps)) + 1))
    for j, split in enumerate(cols):
        for i, c in enumerate(comps):
            d = c["F"].get(split)
            if d is None:
                continue
            y = i + (j - (len(cols) - 1) / 2) * 0.22
            lo, hi = (d["low"], d["high"]) if d["n"] > 1 and not math.isnan(d["low"]) else (d["mean"], d["mean"])
            ax.errorbar(100 * d["mean"], y, xerr=[[100 * (d["mean"] - lo)], [100 * (hi - d["mean"])]], fmt="o",
                        color=plt.get_cmap("tab10")(j), capsize=3, label=split if i == 0 else None)
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_yticks(range(len(comps)))
    ax.set_yticklabels([c["what"] for c in comps], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("paired difference of F20°/1 over seeds (points), 95 % interval")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- main
STAGES: tuple[str, ...] = ("data", "train", "report")


def prepare_test2(seed_dir: Path, clips: int, seed: int, workers: int | None, cfg_dir: Path) -> None:
    """The second held-out test set of a seed (``seed + 3000``), made once and kept."""
    made = seed_dir / "data" / "test2" / "made.json"
    want = {"clips": clips, "seed": seed}
    if made.is_file() and json.loads(made.read_text()) == want and (seed_dir / "features" / "test2.h5").exists():
        return
    shutil.rmtree(seed_dir / "data" / "test2", ignore_errors=True)
    shutil.rmtree(seed_dir / "features_per_set" / "test2", ignore_errors=True)
    prepare_set(seed_dir, "test2", clips, seed, workers, cfg_dir)
    made.write_text(json.dumps(want) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=400, help="simulated clips in all (70/15/15 %% train/val/test)")
    parser.add_argument(
        "--train-clips", type=int, default=None,
        help="training clips instead of 70 %% of --clips (validation and test keep their 15 %% each)",
    )
    parser.add_argument("--budget-minutes", type=float, default=60.0,
                        help="training wall-clock budget of one model (baseline = tokenizer + one fine-tuning)")
    parser.add_argument("--seed", type=int, default=0, help="first seed: data (sets seed, +1000, +2000) and train.seed")
    parser.add_argument("--seeds", type=int, default=3, help="seeds (--seed, --seed+1, ...), each in <out>/seed<s>")
    parser.add_argument("--out", default="bench_out", help="output folder (per seed: data, features, runs, results)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma list among {','.join(STAGES)}")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"training runs, comma list among {','.join(RUNS)}")
    parser.add_argument("--workers", type=int, default=None, help="processes for simulation/features (default: CPU count)")
    parser.add_argument(
        "--shares", default=",".join(f"{k}={v}" for k, v in DEFAULT_SHARES.items()),
        help="budget fraction per kind of run (default: %(default)s)",
    )
    parser.add_argument("--configs", default=str(ROOT / "configs" / "benchmark"), help="folder of the run YAMLs")
    parser.add_argument(
        "--set", action="append", default=[], metavar="RUN:KEY=VALUE",
        help="config override for a run (e.g. grep:train.lr=1e-3) or a kind of run (finetune:..., pretrain:..., "
        "baseline:...), repeatable",
    )
    parser.add_argument(
        "--lanes", type=int, default=min(2, os.cpu_count() or 1),
        help="training runs at once, one core each (default: %(default)s = min(2, CPU count)); each run keeps "
        "its share of minutes",
    )
    parser.add_argument(
        "--extra-test-clips", type=int, default=0,
        help=f"also score every run on a second held-out test set of this many clips per seed "
        f"(seed + {EXTRA_TEST_SEED_OFFSET}; simulated once; default 0 = none)",
    )
    parser.add_argument("--seed-report-only", action="store_true", help=argparse.SUPPRESS)  # report lanes' children
    args = parser.parse_args(argv)
    if args.train_clips is not None and args.train_clips < 2:
        parser.error("--train-clips must be at least 2")
    if args.extra_test_clips < 0 or args.extra_test_clips == 1:
        parser.error("--extra-test-clips must be 0 (none) or at least 2")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    args.runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    for what, given, valid in (("stage", args.stages, STAGES), ("run", args.runs, tuple(RUNS))):
        unknown = sorted(set(given) - set(valid))
        if unknown:
            parser.error(f"unknown {what}(s) {unknown}; valid: {','.join(valid)}")
    args.shares = {k: float(v) for k, v in (item.split("=") for item in args.shares.split(","))}
    missing = sorted({RUNS[r].share for r in args.runs} - set(args.shares))
    if missing:
        parser.error(f"--shares has no share for {missing}")
    args.sets = []
    for item in args.set:
        key, _, override = item.partition(":")
        if key not in set(RUNS) | {"finetune"} or "=" not in override:
            parser.error(f"--set {item!r}: expected RUN:KEY=VALUE with RUN a run name or finetune/pretrain/baseline")
        args.sets.append((key, override))
    return args


def main(argv: list[str] | None = None) -> int:
    import platform

    args = parse_args(argv)
    out = Path(args.out)
    cfg_dir = Path(args.configs)
    seeds = seeds_of(args.seed, args.seeds)
    runs = [r for r in RUNS if r in args.runs]  # the table's order
    if "data" in args.stages:
        for seed in seeds:
            t = time.time()
            prepare_data(out / f"seed{seed}", args.clips, seed, args.workers, cfg_dir, args.train_clips)
            if args.extra_test_clips:
                prepare_test2(out / f"seed{seed}", args.extra_test_clips, seed + EXTRA_TEST_SEED_OFFSET, args.workers, cfg_dir)
            print(f"[data] seed {seed} done in {(time.time() - t) / 60:.1f} min", flush=True)
    if "train" in args.stages:
        jobs = [(s, r) for s in seeds for r in runs]
        if args.lanes > 1 and len(jobs) > 1:
            lane_argv = [f"--clips={args.clips}", f"--budget-minutes={args.budget_minutes}", f"--out={out}",
                         "--shares=" + ",".join(f"{k}={v}" for k, v in args.shares.items()), f"--configs={cfg_dir}"]
            lane_argv += [f"--set={item}" for item in args.set]
            run_in_lanes(jobs, args.lanes, lane_argv, out)
        else:
            for seed, name in jobs:
                run = RUNS[name]
                train_run(run, out / f"seed{seed}", seed, run_minutes(run, args.budget_minutes, args.shares), cfg_dir,
                          run_overrides(run, args.sets))
    if "report" in args.stages:
        splits = ("test", "test2") if args.extra_test_clips else ("test",)
        meta = {
            "command": "python scripts/experiments/synthetic_benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{platform.node()}, {os.cpu_count()} CPU core(s), {platform.processor() or platform.machine()}",
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "budget_minutes": args.budget_minutes,
            "shares": args.shares,
        }
        if args.lanes > 1 and len(seeds) > 1:
            child_argv = [f"--clips={args.clips}", f"--out={out}", f"--configs={cfg_dir}", f"--runs={','.join(runs)}",
                          f"--extra-test-clips={args.extra_test_clips}", f"--budget-minutes={args.budget_minutes}",
                          "--shares=" + ",".join(f"{k}={v}" for k, v in args.shares.items())]
            child_argv += [f"--train-clips={args.train_clips}"] if args.train_clips is not None else []
            report_in_lanes(seeds, args.lanes, child_argv, out)
        per_seed: dict[int, dict[str, Any]] = {}
        for seed in seeds:
            seed_dir = out / f"seed{seed}"
            if args.extra_test_clips:
                prepare_test2(seed_dir, args.extra_test_clips, seed + EXTRA_TEST_SEED_OFFSET, args.workers, cfg_dir)
            results = {name: score_run(name, seed_dir, splits) for name in runs if is_done(seed_dir, name)}
            seed_meta = {
                **meta, "seed": seed,
                "sets": {k: f"{n} clips, seed {seed + SETS[k][1]}" for k, n in set_sizes(args.clips, args.train_clips).items()},
                **({"test2": f"{args.extra_test_clips} clips, seed {seed + EXTRA_TEST_SEED_OFFSET}"} if args.extra_test_clips else {}),
            }
            write_seed_report(seed_dir, results, seed_meta)
            per_seed[seed] = results
        if not args.seed_report_only:
            write_summary(out, per_seed, {**meta, "seeds": seeds}, splits)
    return 0


def report_in_lanes(seeds: list[int], lanes: int, base: list[str], out: Path) -> None:
    """Score the seeds' runs in child processes (arguments ``base`` + the seed), ``lanes`` seeds at a time
    on one thread each; their rows land in the runs' ``report_row.json``, which the summary then reads
    instead of scoring again."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def start(seed: int) -> tuple[subprocess.Popen, Path]:
        return start_child([*base, f"--seed={seed}", "--seeds=1", "--stages=report", "--seed-report-only"],
                           out / f"seed{seed}" / "report.log", mode="w", env=env)

    run_children(seeds, lanes, start, lambda seed: f"seed{seed}", "report lanes")

if __name__ == "__main__":
    sys.exit(main())
