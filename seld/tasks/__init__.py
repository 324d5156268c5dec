"""Training stages as tasks: the model contract (:mod:`seld.tasks.base`), one module per stage, and
:data:`STAGES`, the one table of them.

Every caller that needs "the stages" reads :data:`STAGES`: the ``seld`` command (one training
subcommand per entry, the requeue status on a preemption signal at start-up), :func:`load_task`
(which rebuild a checkpoint's ``stage`` calls for), the benchmark. Adding a stage is one module
under ``seld/tasks`` that defines ``PARTS`` (a :class:`StageParts`) and one line here.

This module does not import torch: the CLI reads the table before it knows whether it will train.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class StageParts:
    """What a stage module provides as its ``PARTS``."""

    schema: type
    """The run's config dataclass (the YAML of ``seld <stage> --config``)."""
    build: Callable[..., Any]
    """``build(cfg, record=None) -> SeldTask``: the task of a new run (``record``: what the
    checkpoint must know of the features, :func:`seld.tasks.runner.data_record`)."""
    run: Callable[[Any], Any]
    """``run(cfg) -> Trainer``: train, everything checked before the first step."""
    rebuild: Callable[[dict[str, Any], dict[str, Any], Any, str], Any]
    """``rebuild(checkpoint, extras, streams, src) -> SeldTask``: the architecture of a checkpoint of
    this stage (``extras``: its ``task`` entry; ``streams``: its StreamConfig; ``src``: its path,
    for messages); :func:`seld.tasks.loading.load_task` loads the weights."""


@dataclass(frozen=True)
class Stage:
    """One entry of :data:`STAGES`: where the stage's parts live and what ``seld --help`` says of it."""

    module: str
    """Module defining ``PARTS`` (imported on first use: torch and the models load only then)."""
    help: str
    """One line for ``seld --help`` and ``seld <stage> --help``."""
    example_configs: str
    """Configs shipped in the repository, named in the 'missing --config' message."""

    def parts(self) -> StageParts:
        """The stage's schema, builder, runner and rebuild (imports its module)."""
        return importlib.import_module(self.module).PARTS


STAGES: dict[str, Stage] = {
    "pretrain": Stage(
        "seld.tasks.pretrain",
        "Pre-train the tokenizer (RCC or BEATs source encoder) with ADPIT; resumes from <out_dir>/checkpoints/last.pt.",
        "pretraining/config.yml, configs/pretrain_rcc.yml, configs/pretrain_beats.yml",
    ),
    "finetune": Stage(
        "seld.tasks.finetune",
        "Fine-tune a pre-trained tokenizer through a frozen CLIP/BERT text encoder with a GREP or TREP head.",
        "finetuning/config.yml, configs/RCC-CLIP-GREP.yml (and the other seven configs/*-*-*.yml)",
    ),
    "baseline": Stage(
        "seld.tasks.baseline",
        "Train the DCASE2025 baseline CRNN (audio-only, multi-ACCDOA) with ADPIT; resumes from <out_dir>/checkpoints/last.pt.",
        "configs/baseline_seldnet.yml, configs/benchmark/baseline.yml",
    ),
}
"""Training stage name -> :class:`Stage`; the name is the ``seld`` subcommand and the ``stage``
recorded in every checkpoint of the stage (so a name never changes once checkpoints exist)."""


def unknown_stage(name: object) -> str | None:
    """None when ``name`` is an entry of :data:`STAGES`; otherwise the message saying so and naming the
    stages (for a checkpoint's recorded stage and the sbatch launcher's STAGE alike)."""
    if isinstance(name, str) and name in STAGES:
        return None
    names = [repr(n) for n in STAGES]
    expected = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    return f"unknown training stage {name!r} (expected {expected})"
