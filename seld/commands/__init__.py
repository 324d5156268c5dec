"""Subcommands of the ``seld`` console command: one module each, with ``add_parser`` and ``run``.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Add a subcommand by writing a module here and one line in :data:`COMMANDS`.
"""
from __future__ import annotations

COMMANDS: dict[str, str] = {
    "synth": "seld.commands.synth",
    "features": "seld.commands.features",
    "pretrain": "seld.commands.pretrain",
    "finetune": "seld.commands.finetune",
    "evaluate": "seld.commands.evaluate",
    "infer": "seld.commands.infer",
    "embed": "seld.commands.embed",
    "query": "seld.commands.query",
    "baseline": "seld.commands.baseline",
    "plot": "seld.commands.plot",
}
"""Subcommand name -> module path (imported lazily so ``seld --help`` stays fast)."""
