"""Every command shown in README.md and docs/*.md runs (scripts/ci/doctest_commands.py), and the rules
that keep a command from hiding from this test hold."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.scripts import ROOT, load_script

doctest = load_script("scripts/ci/doctest_commands.py", "doctest_commands")

PAGES = doctest.doc_pages(ROOT)
try:
    BLOCKS = [b for page in PAGES for b in doctest.read_blocks(ROOT, page)]
    PARSE_ERROR = None
except doctest.DocTestError as exc:  # reported by test_pages_follow_the_marking_rules
    BLOCKS, PARSE_ERROR = [], exc
RUNNABLE = [b for b in BLOCKS if b.norun is None]


def test_pages_follow_the_marking_rules():
    assert PARSE_ERROR is None, str(PARSE_ERROR)
    assert PAGES[0] == "README.md" and len(PAGES) >= 8, PAGES


def test_readme_links_every_docs_page():
    """A page nobody links is a page nobody finds: the README lists them all."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((docs/[A-Za-z0-9_]+\.md)[#)]", readme))
    assert linked == set(PAGES[1:]), sorted(set(PAGES[1:]) ^ linked)


def _anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_links_between_pages_resolve():
    """Relative links of README.md and docs/*.md point at files that exist, and at headings that
    exist where they name one."""
    broken = []
    for page in PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            path = (ROOT / page).parent.joinpath(target) if target else ROOT / page
            if not path.exists():
                broken.append(f"{page}: {target}")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path.read_text(encoding="utf-8")):
                broken.append(f"{page}: {target}#{anchor}")
    assert not broken, broken


def test_most_blocks_run():
    """Marking is for what cannot run here (data, SLURM, GPUs, hours), not a way out: every docs page
    has a runnable block, and more blocks run than not."""
    by_page = {p: [b for b in RUNNABLE if b.page == p] for p in PAGES}
    assert [p for p, bs in by_page.items() if not bs and p != "README.md"] == []
    assert len(RUNNABLE) > len(BLOCKS) - len(RUNNABLE), [b.id for b in BLOCKS if b.norun]


# --------------------------------------------------------------------- the parser and runner themselves
def _page(tmp_path: Path, text: str) -> list:
    (tmp_path / "page.md").write_text(text, encoding="utf-8")
    return doctest.read_blocks(tmp_path, "page.md")


def test_parser_reads_bash_blocks_with_their_marks(tmp_path):
    blocks = _page(tmp_path, "# t\n\n```bash\necho one\n```\n\n<!-- norun: needs DCASE data -->\n```bash\nsbatch x\n```\n"
                             "\n```text\n$ seld infer (output)\n```\n\n```\nplain layout\n```\n````bash\na\n```\nb\n````\n")
    assert [(b.line, b.code, b.norun) for b in blocks] == [
        (3, "echo one\n", None), (8, "sbatch x\n", "needs DCASE data"), (19, "a\n```\nb\n", None)]
    assert blocks[0].id == "page.md:3"


@pytest.mark.parametrize("text, message", [
    ("```sh\nls\n```\n", "page.md:1: ```sh block"),
    ("```console\n$ ls\n```\n", "page.md:1: ```console block"),
    ("```bash norun\nls\n```\n", "page.md:1: ```bash norun: a ```bash fence takes no options"),
    ("<!-- norun: x -->\n\n```bash\nls\n```\n", "page.md:1: norun marker not right above"),
    ("<!-- norun: x -->\n```text\nls\n```\n", "page.md:1: norun marker above a ```text block"),
    ("<!-- norun: -->\n```bash\nls\n```\n", "page.md:1: write a norun marker"),
    ("<!-- norun -->\n```bash\nls\n```\n", "page.md:1: write a norun marker"),
    ("text\n<!-- norun: at the end -->\n", "page.md:2: norun marker not right above"),
    ("```bash\nls\n", "page.md:1: code block not closed"),
])
def test_parser_refuses_what_would_hide_a_command(tmp_path, text, message):
    with pytest.raises(doctest.DocTestError, match=re.escape(message)):
        _page(tmp_path, text)


def test_runner_stops_a_block_at_its_first_failure_and_keeps_a_page_state(tmp_path):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "data.txt").write_text("from the repository\n")
    blocks = _page(tmp_path / "repo", "```bash\necho made > made.txt\ncat data.txt\n```\n"
                                      "```bash\ncat made.txt\nfalse | true\necho never\n```\n"
                                      "```bash\necho unreached\n```\n")
    run = doctest.DocRun(tmp_path / "repo", tmp_path / "work", quickstart=False)
    first = run.run(blocks[0])
    assert first.ok and first.output == "from the repository\n"
    second = run.run(blocks[1])  # pipefail: `false | true` fails the block before `echo never`
    assert second.returncode == 1 and second.output == "made\n"
    assert "page.md:5: exit status 1" in second.report()
    with pytest.raises(doctest.DocTestError, match=r"page.md:10 not run: the earlier block page.md:5 of its page failed"):
        doctest.DocRun(tmp_path / "repo", tmp_path / "work2", quickstart=False).run_through(blocks[2], blocks)
    assert not (tmp_path / "repo" / "made.txt").exists()  # blocks write into their scratch folder only


# --------------------------------------------------------------------- the documentation's own blocks
@pytest.fixture(scope="session")
def doc_run(tmp_path_factory) -> "doctest.DocRun":
    return doctest.DocRun(ROOT, tmp_path_factory.mktemp("doctest"))


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_documented_commands_run(block, doc_run):
    try:
        result = doc_run.run_through(block, BLOCKS)
    except doctest.DocTestError as exc:
        pytest.fail(str(exc))
    assert result.ok, result.report()
