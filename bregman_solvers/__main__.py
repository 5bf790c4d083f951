"""``python -m bregman_solvers``: the same command line as ``bregman-solvers``."""
import sys

from ._entry import main

if __name__ == "__main__":      # not when a spawned worker process (Dask, multiprocessing) imports it
    sys.exit(main())
