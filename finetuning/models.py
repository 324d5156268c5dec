"""Print the fine-tuning model's parameter counts per part (trainable vs frozen): ``python finetuning/models.py``.

Usage: python finetuning/models.py [--config FILE] [key=value ...]   (default: this folder's config.yml)

The tokenizer's architecture comes from ``model.pretrained`` when that checkpoint exists (its saved
config; no weights needed), else from ``model.tokenizer``, else the pre-training defaults (said so).
The tokenizer is built on the "meta" device; the frozen text encoder is built with random weights
where that needs no download (open_clip architectures, local folders, the offline MiniLM) and left
out of the table, with the reason, otherwise. Counts come from :mod:`seld.models.summary`.
"""
import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from seld.checkpoint import load_checkpoint  # noqa: E402
from seld.config import from_dict, load_config  # noqa: E402
from seld.errors import SeldError  # noqa: E402
from seld.models import ModelConfig, Tokenizer, TokenizerConfig, build_head  # noqa: E402
from seld.models.heads import PretrainHead  # noqa: E402
from seld.models.summary import finetune_parts, format_counts, part_counts  # noqa: E402
from seld.models.text_encoders import build_text_encoder  # noqa: E402
from seld.tasks.base import apply_stream_channels  # noqa: E402
from seld.tasks.finetune import FinetuneConfig, architecture_only  # noqa: E402


def tokenizer_config(cfg: FinetuneConfig) -> tuple[TokenizerConfig, str]:
    """The tokenizer config to summarise and where it came from."""
    m = cfg.model
    if m.pretrained and Path(m.pretrained).is_file():
        extras = load_checkpoint(m.pretrained, map_location="cpu").get("task", {})
        return from_dict(ModelConfig, extras["model"], source=m.pretrained).tokenizer, f"from {m.pretrained}"
    if m.tokenizer is not None:
        return apply_stream_channels(m.tokenizer, cfg.data.streams), "from model.tokenizer"
    note = f"pre-training defaults (model.pretrained {m.pretrained} not found)"
    return apply_stream_channels(ModelConfig().tokenizer, cfg.data.streams), note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(Path(__file__).resolve().parent / "config.yml"), help="fine-tuning YAML")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. model.head.type=trep")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, FinetuneConfig, overrides=args.overrides)
        tok_cfg, origin = tokenizer_config(cfg)
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
    except SeldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.config}: tokenizer {origin}; text encoder {te_cfg.kind} {te_cfg.resolved_name}; head {cfg.model.head.type}")
    if why:
        print(why)
    print(format_counts(part_counts(finetune_parts(tokenizer, text_encoder, head, cfg.model.head.type.upper(), token_head))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
