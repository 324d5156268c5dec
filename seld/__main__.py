"""``python -m seld`` = the ``seld`` console command (for an environment where the package is on
``PYTHONPATH`` but not installed, e.g. a checkout on a cluster node)."""
import sys

from seld.cli import main

sys.exit(main())
