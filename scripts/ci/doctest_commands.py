"""Run the shell commands shown in the documentation: every ```bash block of README.md and docs/*.md.

Every ```bash block runs, unless the line right above its opening fence is the HTML comment
``<!-- norun: REASON -->`` (invisible in the rendered page; the reason says what the block needs
that a test machine lacks: DCASE data, SLURM, a GPU, hours). Output shown as an example goes in a
```text block, which is never run. A ```sh / ```shell / ```console block, a norun comment that is
not right above a ```bash fence, a norun without a reason and an unclosed fence are errors, so no
command can hide from the test.

The blocks of a page run in order, each with ``bash -euo pipefail``, in one scratch folder per page
that looks like a checkout after ``make quickstart``: links to the repository's files (those git
tracks or would track) and ``quickstart_out/``, made once by ``scripts/quickstart.py`` on 8 clips
with one epoch per stage. A block may use what an earlier block of its page wrote. Commands find
``seld`` and ``python`` of the interpreter running this script, and this checkout's ``seld``
(``PYTHONPATH``), with ``HF_HUB_OFFLINE=1`` and (unless set) ``OMP_NUM_THREADS=1``.

    python scripts/ci/doctest_commands.py [--list] [--keep DIR] [PAGE ...]

``tests/test_doc_commands.py`` runs every block as one test each.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RUN_LANGUAGE = "bash"
"""The fence language whose blocks run."""
REFUSED_LANGUAGES = ("sh", "shell", "console", "zsh", "shell-session")
"""Fence languages that would show commands the test does not run: write ```bash (or ```text for output)."""
QUICKSTART_ARGS = ("--clips", "8", "--pretrain-epochs", "1", "--finetune-epochs", "1")
"""``scripts/quickstart.py`` arguments of the shared ``quickstart_out/`` (minutes become seconds)."""
BLOCK_TIMEOUT_S = 600

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*(.*?)\s*$")
_NORUN = re.compile(r"^\s*<!--\s*norun\s*:(.*?)-->\s*$")
_NORUN_START = re.compile(r"^\s*<!--\s*norun\b")


class DocTestError(Exception):
    """A page breaks the rules above; the message names the file and line."""


@dataclass(frozen=True)
class Block:
    """One ```bash block of a page."""

    page: str
    """Path relative to the repository root, e.g. ``docs/inference.md``."""
    line: int
    """1-based line of the opening fence."""
    code: str
    norun: str | None = None
    """Why the block does not run, or None when it runs."""

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def doc_pages(root: Path = ROOT) -> list[str]:
    """``README.md`` and ``docs/*.md`` (not the result pages under ``docs/results/``), relative to ``root``."""
    pages = ["README.md"] if (root / "README.md").is_file() else []
    return pages + sorted(p.relative_to(root).as_posix() for p in (root / "docs").glob("*.md"))


def parse_blocks(text: str, page: str) -> list[Block]:
    """The ```bash blocks of markdown ``text`` (named ``page`` in errors), with their norun reasons."""
    lines = text.splitlines()
    blocks: list[Block] = []
    pending: tuple[int, str] | None = None  # (line, reason) of a norun comment waiting for its fence
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if _NORUN_START.match(line):
            note = _NORUN.match(line)
            if note is None or not note.group(1).strip():
                raise DocTestError(f"{page}:{i + 1}: write a norun marker as '<!-- norun: REASON -->' on one line, "
                                   "with the reason")
            if pending is not None:
                raise DocTestError(f"{page}:{pending[0]}: norun marker not right above a ```bash fence")
            pending = (i + 1, note.group(1).strip())
            i += 1
            continue
        if fence is None:
            if pending is not None:
                raise DocTestError(f"{page}:{pending[0]}: norun marker not right above a ```bash fence")
            i += 1
            continue
        ticks, info = fence.groups()
        words = info.split()
        language = words[0].lower() if words else ""
        start = i + 1
        body: list[str] = []
        i += 1
        while i < len(lines):
            close = _FENCE.match(lines[i])
            if close and close.group(1)[0] == ticks[0] and len(close.group(1)) >= len(ticks) and not close.group(2):
                break
            body.append(lines[i])
            i += 1
        else:
            raise DocTestError(f"{page}:{start}: code block not closed")
        i += 1  # past the closing fence
        if language in REFUSED_LANGUAGES:
            raise DocTestError(f"{page}:{start}: ```{language} block: write ```bash (its commands are run by "
                               "the doc test) or ```text (output, not run)")
        if language == RUN_LANGUAGE:
            if len(words) > 1:
                raise DocTestError(f"{page}:{start}: ```{info}: a ```bash fence takes no options; mark a block that "
                                   "cannot run with '<!-- norun: REASON -->' on the line above")
            blocks.append(Block(page, start, "\n".join(body) + "\n", pending[1] if pending else None))
        elif pending is not None:
            raise DocTestError(f"{page}:{pending[0]}: norun marker above a ```{language or '(plain)'} block; "
                               "only ```bash blocks run")
        pending = None
    if pending is not None:
        raise DocTestError(f"{page}:{pending[0]}: norun marker not right above a ```bash fence")
    return blocks


def read_blocks(root: Path, page: str) -> list[Block]:
    return parse_blocks((root / page).read_text(encoding="utf-8"), page)


def tracked_entries(root: Path) -> list[str]:
    """Top-level names of the files git tracks or would track in ``root`` (ignored outputs excluded);
    every non-hidden entry where ``root`` is not a git checkout."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                             capture_output=True, check=True, text=True).stdout
        names = {p.split("/", 1)[0] for p in out.split("\0") if p}
    except (OSError, subprocess.CalledProcessError):
        names = {p.name for p in root.iterdir() if not p.name.startswith(".")}
    return sorted(n for n in names if (root / n).exists())


def command_env(root: Path) -> dict[str, str]:
    """The environment of a block: this interpreter's ``seld``/``python`` first on PATH, this checkout's
    ``seld`` first on PYTHONPATH, no downloads, no progress bars to a pipe."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTHON"] = sys.executable  # scripts/launch_stage.sh's interpreter
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("OMP_NUM_THREADS", "1")  # torch's threads: one per process unless the caller says otherwise
    return env


@dataclass
class Result:
    block: Block
    returncode: int
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def report(self, tail: int = 60) -> str:
        lines = self.output.splitlines()
        shown = "\n".join(lines[-tail:])
        return (f"{self.block.id}: exit status {self.returncode} after {self.seconds:.1f} s\n"
                f"--- block ---\n{self.block.code}--- output (last {min(tail, len(lines))} lines) ---\n{shown}")


@dataclass
class DocRun:
    """Runs blocks in per-page scratch folders under ``base``; ``quickstart``: link a small ``quickstart_out/``."""

    root: Path
    base: Path
    quickstart: bool = True
    results: dict[str, Result] = field(default_factory=dict)
    _workdirs: dict[str, Path] = field(default_factory=dict)
    _quickstart_out: Path | None = None

    def quickstart_out(self) -> Path:
        """``quickstart_out/`` of a small ``scripts/quickstart.py`` run, made once."""
        if self._quickstart_out is None:
            out = self.base / "shared" / "quickstart_out"
            out.parent.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, str(self.root / "scripts" / "quickstart.py"), "--out", str(out), *QUICKSTART_ARGS]
            started = time.time()
            proc = subprocess.run(cmd, cwd=out.parent, env=command_env(self.root), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=BLOCK_TIMEOUT_S)
            if proc.returncode != 0:
                tail = "\n".join(proc.stdout.splitlines()[-60:])
                raise DocTestError(f"the doc test's quickstart_out ({' '.join(cmd)}) failed with exit status "
                                   f"{proc.returncode}:\n{tail}")
            print(f"quickstart_out: {time.time() - started:.1f} s", file=sys.stderr)
            self._quickstart_out = out
        return self._quickstart_out

    def workdir(self, page: str) -> Path:
        """The page's scratch folder: links to the repository's files (and ``quickstart_out``)."""
        if page not in self._workdirs:
            path = self.base / re.sub(r"[^A-Za-z0-9_.-]", "_", page)
            path.mkdir(parents=True)
            for name in tracked_entries(self.root):
                (path / name).symlink_to(self.root / name)
            if self.quickstart:
                (path / "quickstart_out").symlink_to(self.quickstart_out())
            self._workdirs[page] = path
        return self._workdirs[page]

    def run(self, block: Block) -> Result:
        """Run one block in its page's folder (whatever ran there before)."""
        cwd = self.workdir(block.page)
        started = time.time()
        try:
            proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=cwd, env=command_env(self.root),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=BLOCK_TIMEOUT_S)
            code, output = proc.returncode, proc.stdout
        except subprocess.TimeoutExpired as exc:
            code, output = 124, f"{exc.output or ''}\n(timed out after {BLOCK_TIMEOUT_S} s)"
        result = Result(block, code, time.time() - started, output)
        self.results[block.id] = result
        return result

    def run_through(self, block: Block, blocks: list[Block]) -> Result:
        """Run the runnable blocks of ``block``'s page that come before it (once each), then ``block``.
        A failed earlier block raises DocTestError naming it: the later ones may rely on it."""
        for earlier in blocks:
            if earlier.page != block.page or earlier.norun is not None or earlier.line >= block.line:
                continue
            done = self.results.get(earlier.id) or self.run(earlier)
            if not done.ok:
                raise DocTestError(f"{block.id} not run: the earlier block {earlier.id} of its page failed "
                                   f"(exit status {done.returncode})")
        return self.run(block)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", metavar="PAGE", help="markdown files (default: README.md and docs/*.md)")
    parser.add_argument("--list", action="store_true", help="list the blocks (runs or norun: reason) and exit")
    parser.add_argument("--keep", metavar="DIR", default=None, help="work in DIR (must not exist) and keep it")
    args = parser.parse_args(argv)
    pages = args.pages or doc_pages(ROOT)
    try:
        blocks = [b for page in pages for b in read_blocks(ROOT, page)]
    except DocTestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for b in blocks:
            first = b.code.strip().splitlines()[0] if b.code.strip() else ""
            print(f"{b.id:<28} {'norun: ' + b.norun if b.norun else 'runs'}  | {first[:70]}")
        print(f"{sum(b.norun is None for b in blocks)} of {len(blocks)} blocks run")
        return 0
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="doctest_"))
    if args.keep:
        base.mkdir(parents=True)
    run = DocRun(ROOT, base)
    failed: list[str] = []
    started = time.time()
    try:
        for b in blocks:
            if b.norun is not None or any(f.startswith(b.page + ":") for f in failed):
                continue  # a page stops at its first failure: later blocks may rely on it
            result = run.run_through(b, blocks)
            print(f"{'ok  ' if result.ok else 'FAIL'} {b.id:<28} {result.seconds:6.1f} s", flush=True)
            if not result.ok:
                failed.append(b.id)
                print(result.report(), file=sys.stderr)
    except DocTestError as exc:  # the shared quickstart_out could not be made
        print(f"error: {exc}", file=sys.stderr)
        failed.append("quickstart_out")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    ran = len(run.results)
    print(f"{ran} block(s) run, {len(failed)} failed{': ' + ', '.join(failed) if failed else ''}, "
          f"{time.time() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
