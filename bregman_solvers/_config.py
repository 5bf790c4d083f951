"""``show_config``: what this build of bregman_solvers runs on."""
import os
import platform
import sys

import numpy as np

from . import _validation
from ._kernels._openmp import max_threads, openmp_enabled


def _version():
    try:
        from importlib.metadata import version

        return version("bregman_solvers")
    except Exception:  # not installed as a distribution (e.g. a source checkout)
        return "unknown"


def get_config():
    """Return the build and runtime configuration as a dict.

    Keys: ``version``, ``python``, ``numpy``, ``platform``, ``openmp`` (compiled
    with OpenMP), ``openmp_threads`` (default thread count of the kernels),
    ``omp_wait_policy``, ``min_entries_per_thread``, ``batch_layout`` (see docs/performance.rst) and
    ``blas`` (the BLAS/OpenMP libraries threadpoolctl sees, each a dict with
    ``internal_api``, ``version``, ``num_threads``, ``filepath``).
    """
    from threadpoolctl import threadpool_info

    return {
        "version": _version(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "openmp": openmp_enabled(),
        "openmp_threads": max_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "min_entries_per_thread": _validation.MIN_ENTRIES_PER_THREAD,
        "batch_layout": _validation.BATCH_LAYOUT,
        "blas": [
            {k: info.get(k) for k in ("user_api", "internal_api", "version", "num_threads", "filepath")}
            for info in threadpool_info()
        ],
    }


def show_config(file=None):
    """Print the version, OpenMP status and thread count, and the BLAS libraries in use."""
    cfg = get_config()
    out = file if file is not None else sys.stdout
    print(f"bregman_solvers {cfg['version']}", file=out)
    print(f"  python          {cfg['python']} ({cfg['platform']})", file=out)
    print(f"  numpy           {cfg['numpy']}", file=out)
    print(f"  openmp          {'yes' if cfg['openmp'] else 'NO (serial build)'}", file=out)
    print(f"  openmp threads  {cfg['openmp_threads']}", file=out)
    print(f"  omp wait policy {cfg['omp_wait_policy']}", file=out)
    print(f"  min entries per thread {cfg['min_entries_per_thread']} (smaller passes use fewer threads)", file=out)
    print(f"  batch layout    {cfg['batch_layout']} (stochastic solvers' inner iterations)", file=out)
    if not cfg["blas"]:
        print("  thread pools    none found (import numpy/scipy first)", file=out)
    for lib in cfg["blas"]:
        print(
            f"  {lib['user_api']:<15} {lib['internal_api']} {lib['version']} "
            f"threads={lib['num_threads']} ({lib['filepath']})",
            file=out,
        )
