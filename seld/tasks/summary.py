"""A stage's parameter counts per part (trainable vs frozen) from its config alone: the recipe folders'
``python pretraining/models.py`` and ``python finetuning/models.py`` (:func:`summary_main`).

The models are built on the "meta" device (no memory, no weights read); the counts come from
:mod:`seld.models.summary`. The summaries live here rather than beside it because they read the
stage configs (``seld.models`` sits below ``seld.tasks``).
"""
from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from seld.checkpoint import load_checkpoint
from seld.config import from_dict, load_config
from seld.errors import SeldError
from seld.models import ModelConfig, PretrainModel, Tokenizer, TokenizerConfig, build_head
from seld.models.heads import PretrainHead
from seld.models.summary import finetune_parts, format_counts, part_counts, pretrain_parts
from seld.models.text_encoders import build_text_encoder
from seld.tasks import STAGES
from seld.tasks.base import apply_stream_channels
from seld.tasks.finetune import FinetuneConfig, architecture_only
from seld.tasks.pretrain import PretrainConfig


def pretrain_summary(cfg: PretrainConfig, source: str) -> str:
    """A header line (``source``: where the config came from) and the part table of the pre-training model;
    the architecture comes from the config alone (no BEATs checkpoint read)."""
    model_cfg = ModelConfig(tokenizer=apply_stream_channels(cfg.model.tokenizer, cfg.data.streams))
    with torch.device("meta"):
        model = PretrainModel(model_cfg, load_pretrained=False)
    header = f"{source}: {model_cfg.tokenizer.source_encoder.upper()} tokenizer + pre-training head"
    return f"{header}\n{format_counts(part_counts(pretrain_parts(model)))}"


def finetune_tokenizer_config(cfg: FinetuneConfig) -> tuple[TokenizerConfig, str]:
    """The tokenizer config of a fine-tuning run and where it came from: the saved config of
    ``model.pretrained`` when that checkpoint exists (no weights needed), else ``model.tokenizer``,
    else the pre-training defaults (said so)."""
    m = cfg.model
    if m.pretrained and Path(m.pretrained).is_file():
        extras = load_checkpoint(m.pretrained, map_location="cpu").get("task", {})
        return from_dict(ModelConfig, extras["model"], source=m.pretrained).tokenizer, f"from {m.pretrained}"
    if m.tokenizer is not None:
        return apply_stream_channels(m.tokenizer, cfg.data.streams), "from model.tokenizer"
    note = f"pre-training defaults (model.pretrained {m.pretrained} not found)"
    return apply_stream_channels(ModelConfig().tokenizer, cfg.data.streams), note


def finetune_summary(cfg: FinetuneConfig, source: str) -> str:
    """A header line (``source``: where the config came from) and the part table of the fine-tuning model.

    The frozen text encoder is built with random weights where that needs no download (open_clip
    architectures, local folders, the offline MiniLM) and left out of the table, with the reason
    in a line of its own, otherwise.
    """
    tok_cfg, origin = finetune_tokenizer_config(cfg)
    te_cfg = copy.deepcopy(cfg.model.text_encoder)
    text_encoder, why = None, ""
    try:
        text_encoder = build_text_encoder(architecture_only(te_cfg) if te_cfg.kind == "clip" else te_cfg)
    except (SeldError, OSError, ValueError) as exc:  # e.g. a hub id that is not available offline
        why = f"text encoder not built ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
    width = text_encoder.width if text_encoder is not None else tok_cfg.embed_dim
    out_dim = text_encoder.out_dim if text_encoder is not None else tok_cfg.embed_dim
    if origin.startswith("pre-training defaults"):
        tok_cfg.embed_dim = width  # tokens as wide as the text encoder, as pre-training would be told to
    with torch.device("meta"):
        tokenizer = Tokenizer.from_config(tok_cfg, load_pretrained=False)
    head = build_head(cfg.model.head, out_dim if cfg.model.head.type == "grep" else width)
    token_head = PretrainHead(tok_cfg.embed_dim) if cfg.model.head.residual else None
    lines = [f"{source}: tokenizer {origin}; text encoder {te_cfg.kind} {te_cfg.resolved_name}; head {cfg.model.head.type}"]
    if why:
        lines.append(why)
    head_name = cfg.model.head.type.upper()
    lines.append(format_counts(part_counts(finetune_parts(tokenizer, text_encoder, head, head_name, token_head))))
    return "\n".join(lines)


@dataclass(frozen=True)
class StageSummary:
    """How :func:`summary_main` summarises one stage."""

    summarise: Callable[[Any, str], str]
    """``summarise(cfg, source) -> text``: the header and part table of the stage's config."""
    config_help: str
    """``--help`` of ``--config``."""
    override_example: str
    """An override shown in ``--help``."""


SUMMARIES: dict[str, StageSummary] = {
    "pretrain": StageSummary(pretrain_summary, "pre-training YAML", "model.tokenizer.source_encoder=beats"),
    "finetune": StageSummary(finetune_summary, "fine-tuning YAML", "model.head.type=trep"),
}
"""Stage name (a key of :data:`seld.tasks.STAGES`) -> its summary; the config schema is the stage's."""


def summary_main(stage: str, script: str | Path, argv: list[str] | None = None, doc: str | None = None) -> int:
    """``python <folder>/models.py [--config FILE] [KEY=VALUE ...]``: print ``stage``'s summary of the
    config (default: the ``config.yml`` next to ``script``); 0, or 2 after an ``error:`` line on stderr
    when the config or the model it describes is invalid. ``doc`` (the script's docstring): its first
    line is the ``--help`` description."""
    summary = SUMMARIES[stage]
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--config", default=str(Path(script).resolve().parent / "config.yml"), help=summary.config_help)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=f"config overrides, e.g. {summary.override_example}")
    args = parser.parse_args(argv)
    try:
        text = summary.summarise(load_config(args.config, STAGES[stage].parts().schema, overrides=args.overrides), args.config)
    except SeldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0
