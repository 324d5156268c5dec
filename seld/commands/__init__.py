"""Subcommands of the ``seld`` console command: one module each, with ``add_arguments`` and ``run``.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Add a subcommand by writing a module here and one line in :data:`COMMANDS`. The training commands
come from :data:`seld.tasks.STAGES` (one each, all run by :mod:`seld.commands.train`, whose
``add_arguments`` also takes the stage): a new stage gets its command without a line here.
"""
from __future__ import annotations

from seld.tasks import STAGES

TRAIN_COMMAND = "seld.commands.train"
"""The module of every training command."""

COMMANDS: dict[str, str] = {
    "synth": "seld.commands.synth",
    "features": "seld.commands.features",
    **{stage: TRAIN_COMMAND for stage in STAGES},
    "evaluate": "seld.commands.evaluate",
    "infer": "seld.commands.infer",
    "embed": "seld.commands.embed",
    "query": "seld.commands.query",
    "plot": "seld.commands.plot",
}
"""Subcommand name -> module path (imported lazily so ``seld --help`` stays fast)."""
