"""``python -m bregman_solvers``: the same command line as ``bregman-solvers``."""
import sys

from .cli import main

sys.exit(main())
