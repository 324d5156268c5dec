"""The compiled WPE kernel for tests: skipped (with the reason) where the machine has no C compiler,
as WPE itself then runs torch's products; a compiler that fails to build it is a test failure."""
from __future__ import annotations

import os
import shutil

import pytest

from seld.features import native


def require_kernel() -> native.Kernel:
    cc = os.environ.get("CC") or "cc"
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler {cc!r}: WPE runs torch's products here (README: requirements)")
    found = native.kernel()
    assert found is not None, "the compiled WPE kernel must build where a C compiler exists (see the warning)"
    return found
