"""Merge the per-clip feature files into one HDF5 file per split and compute normalisation.

    python features/helper.py [--config features/config.yml] [key=value ...]

Same as ``seld features merge``; run it after ``feature_extraction.py`` (which already merges).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from feature_extraction import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(action="merge", description=__doc__.splitlines()[0]))
