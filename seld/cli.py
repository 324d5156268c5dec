"""The ``seld`` console command: ``seld <subcommand> [options]``; ``seld <subcommand> --help``; and the
recipe folders' entry scripts (``python pretraining/main.py``: :func:`run_stage_script`)."""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from seld import __version__
from seld.commands import COMMANDS
from seld.errors import SeldError
from seld.tasks import STAGES
from seld.train.stopping import EXIT_INTERRUPTED, TrainingPreempted


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seld",
        description="textseld: stereo sound event localization and detection with frozen text encoders.",
    )
    parser.add_argument("--version", action="version", version=f"textseld {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_path in COMMANDS.items():
        module = importlib.import_module(module_path)
        if name in STAGES:  # a training command: its help and config from the stage table
            p = sub.add_parser(name, help=STAGES[name].help, description=STAGES[name].help)
            module.add_arguments(p, name)
        else:
            p = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    # every training command (an entry of the stage table) exits with the requeue status on SIGUSR1/SIGTERM
    previous = _stop_before_training_on_preemption() if args.command in STAGES else {}
    try:
        return int(args._run(args) or 0)
    except SeldError as exc:
        print(f"seld {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except TrainingPreempted as exc:  # last.pt saved; the sbatch scripts requeue on this status
        _say_once(f"seld {args.command}: {exc} (exit {exc.exit_code}: requeue)")
        return exc.exit_code
    except KeyboardInterrupt as exc:  # Ctrl-C: one line instead of a traceback
        _say_once(f"seld {args.command}: {str(exc) or 'interrupted'}")
        return EXIT_INTERRUPTED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_stage_script(stage: str, script: str | Path, argv: list[str] | None = None) -> int:
    """``seld <stage>`` for a recipe folder's entry script (``python pretraining/main.py [--config FILE]
    [KEY=VALUE ...]``): ``argv`` (default: the command line) with the ``config.yml`` next to ``script``
    when it names no ``--config``, so the script runs the same from any folder."""
    return main([stage, *with_default_config(sys.argv[1:] if argv is None else argv, script)])


def with_default_config(argv: list[str], script: str | Path) -> list[str]:
    """``argv`` with ``--config <script's folder>/config.yml`` added when no --config is given."""
    if any(a == "--config" or a.startswith("--config=") for a in argv):
        return argv
    return ["--config", str(Path(script).resolve().with_name("config.yml")), *argv]


def _stop_before_training_on_preemption() -> dict[int, Any]:
    """SIGUSR1/SIGTERM outside ``Trainer.fit`` (loading data, building the model): nothing to save,
    so stop with the requeue status at once; ``fit`` installs its own handlers that finish the step."""

    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: object) -> None:
        raise TrainingPreempted(f"stopped by {signal.Signals(signum).name} outside training (nothing new to save)")

    return {signum: signal.signal(signum, handler) for signum in (signal.SIGUSR1, signal.SIGTERM)}


def _say_once(line: str) -> None:
    """Print ``line`` to stderr on the first process of a ``torchrun`` job only."""
    if os.environ.get("RANK", "0") == "0":
        print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
