"""Scripts run from a checkout or an installed package alike: they import the library, never the tests."""
from __future__ import annotations

import ast

from tests.scripts import ROOT


def test_scripts_import_the_library_not_the_tests() -> None:
    found = []
    for path in sorted((ROOT / "scripts").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names
                      if n == "tests" or n.startswith("tests.")]
    assert not found, "\n".join(found)
