"""What the package sets in its process at import, before its compiled kernels load.

Imported first by ``bregman_solvers/__init__.py``: the OpenMP runtime reads its wait policy
from the environment when it loads, which is when the first kernel module is imported.
"""
import os

__all__ = ["OPENMP_LOADED_BEFORE"]


def _openmp_runtime_loaded():
    """Whether an OpenMP runtime was loaded before this package (Linux; None: cannot tell)."""
    try:
        with open("/proc/self/maps") as maps:
            return any(name in line for line in maps for name in ("libgomp", "libomp", "libiomp"))
    except OSError:
        return None


#: True when another package loaded the OpenMP runtime first: the wait policy below then
#: has no effect (``show_config()`` reports it; docs/performance.rst, "Threads").
OPENMP_LOADED_BEFORE = _openmp_runtime_loaded()

# Thread policy (docs/performance.rst, "Threads"; bregman_solvers/_threads.py). During a fit
# BLAS runs one thread and the library splits each product over its own OpenMP threads.
# Those threads wait between two parallel regions: a sleeping thread is slow to wake on a
# virtual machine (measured in docs/performance.rst), while one that spins keeps a core
# from a busy neighbour. So they spin briefly (GOMP_SPINCOUNT: about 1,000 pause
# instructions, enough to bridge the gaps inside a batch) and then sleep; other OpenMP
# runtimes wait passively. Both are read when libgomp loads, i.e. before our kernels are
# imported, and have no effect if another package loaded libgomp first (show_config()
# says so). A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is respected.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "1000"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
