"""``show_config``: what this build of bregman_solvers runs on, and its thread pools."""
import os
import platform
import sys

import numpy as np

from . import _runtime, _threads
from ._kernels._openmp import max_threads, openmp_enabled


def _version():
    try:
        from importlib.metadata import version

        return version("bregman_solvers")
    except Exception:  # not installed as a distribution (e.g. a source checkout)
        return "unknown"


def _owner(filepath):
    """Which package loaded a thread pool's library, from its path."""
    path = (filepath or "").replace("\\", "/").lower()
    for key, owner in (("/scipy", "SciPy"), ("/numpy", "NumPy"), ("/torch", "PyTorch"), ("/sklearn", "scikit-learn"),
                       ("/scikit_learn", "scikit-learn")):
        if key in path:
            return owner
    return "the system"


def openmp_library():
    """The file of the OpenMP runtime the compiled kernels call, or None where it cannot be told.

    Several runtimes may be loaded (scikit-learn's wheels bring their own libgomp); the kernels use
    the one their extension resolved ``omp_get_max_threads`` against. ``dlsym`` on the extension's
    handle searches it and its dependencies in that order, and ``dladdr`` names the file of the
    symbol found (glibc and macOS; elsewhere None).
    """
    if not openmp_enabled():
        return None
    import ctypes

    from ._kernels import _openmp

    class DlInfo(ctypes.Structure):
        _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                    ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]

    try:
        symbol = ctypes.CDLL(_openmp.__file__).omp_get_max_threads
        info = DlInfo()
        found = ctypes.CDLL(None).dladdr(ctypes.cast(symbol, ctypes.c_void_p), ctypes.byref(info))
    except (OSError, AttributeError, TypeError):     # no dlsym/dladdr here (e.g. Windows)
        return None
    return os.path.realpath(info.dli_fname.decode()) if found and info.dli_fname else None


def _openmp_wait():
    """How the OpenMP threads wait between parallel regions, and who set it."""
    spin, policy = os.environ.get("GOMP_SPINCOUNT"), os.environ.get("OMP_WAIT_POLICY")
    if _runtime.OPENMP_LOADED_BEFORE:
        return ("the runtime's default (another package loaded OpenMP before bregman_solvers: set "
                f"GOMP_SPINCOUNT={spin or _runtime.DEFAULT_SPIN_COUNT} in the environment, or import "
                "bregman_solvers first)")
    if spin is not None:
        if _runtime.SPIN_COUNT_CALIBRATED and _runtime.PAUSE_SECONDS is not None:
            return (f"spin GOMP_SPINCOUNT={spin} (about {_runtime.SPIN_SECONDS * 1e6:.0f} us on this "
                    "processor, timed at import), then sleep")
        if _runtime.SPIN_COUNT_CALIBRATED:
            return f"spin GOMP_SPINCOUNT={spin} (the default: the spin hint cannot be timed here), then sleep"
        return f"spin GOMP_SPINCOUNT={spin} (set in the environment), then sleep"
    return f"OMP_WAIT_POLICY={policy}"


def _pool(info, ours):
    """One thread pool of threadpoolctl's listing, with its role in a fit (``ours``: the file of the
    OpenMP runtime the kernels call, see :func:`openmp_library`)."""
    api = info.get("user_api")
    owner = _owner(info.get("filepath"))
    path = info.get("filepath")
    if api == "blas":
        role = ("the library's products (scipy.linalg.cython_blas), split into blocks over the fit's OpenMP threads"
                if owner == "SciPy" else f"{owner}'s own products (not on the library's hot path)")
        during_fit, set_by = 1, "bregman_solvers during a fit (threadpoolctl), else BLAS's default"
    else:
        if openmp_enabled() and (ours is None or (path and os.path.realpath(path) == ours)):
            role = "the library's kernels and product blocks"
            during_fit, set_by = "n_threads", "n_threads per call (default: the usable cores no other fit holds)"
        else:
            role = f"{owner}'s own OpenMP code (not the library's kernels)"
            during_fit, set_by = "unchanged", f"{owner} (OMP_NUM_THREADS, threadpoolctl)"
    return {"user_api": api, "internal_api": info.get("internal_api"), "version": info.get("version"),
            "num_threads": info.get("num_threads"), "during_fit": during_fit, "set_by": set_by, "owner": owner,
            "role": role, "filepath": info.get("filepath")}


def get_config():
    """Return the build and runtime configuration as a dict.

    Keys: ``version``, ``python``, ``numpy``, ``platform``, ``openmp`` (compiled
    with OpenMP), ``openmp_threads`` (OpenMP's default thread count), ``usable_cores``
    (what ``n_threads=None`` takes when no other fit runs), ``product_blocks``
    (``bregman_solvers._runtime.SETTINGS``), ``openmp_wait`` (how idle OpenMP
    threads wait), ``omp_wait_policy``, ``min_entries_per_thread`` (see
    docs/performance.rst), ``openmp_library`` (the file of the OpenMP runtime the kernels call,
    :func:`openmp_library`) and ``thread_pools``: one dict per thread pool threadpoolctl
    sees (OpenMP runtimes and BLAS libraries) with ``user_api``, ``internal_api``,
    ``version``, ``num_threads`` (now), ``during_fit`` (its size during a fit),
    ``set_by``, ``owner`` (the package that loaded it), ``role`` and ``filepath``.
    """
    from threadpoolctl import threadpool_info

    ours = openmp_library()
    return {
        "version": _version(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "openmp": openmp_enabled(),
        "openmp_threads": max_threads(),
        "usable_cores": _threads.usable_cores(),
        "product_blocks": _runtime.SETTINGS.product_blocks,
        "openmp_wait": _openmp_wait(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "min_entries_per_thread": _runtime.SETTINGS.min_entries_per_thread,
        "openmp_library": ours,
        "thread_pools": [_pool(info, ours) for info in threadpool_info()],
    }


def show_config(file=None):
    """Print the version, the build, and one line per thread pool with its size and who sets it.

    During a fit every BLAS library runs one thread and the library's own OpenMP
    threads (``n_threads``) do all the work, products included (docs/performance.rst,
    "Threads"). NumPy and SciPy usually each bring their own OpenBLAS: both are listed.
    """
    cfg = get_config()
    out = file if file is not None else sys.stdout
    print(f"bregman_solvers {cfg['version']}", file=out)
    print(f"  python          {cfg['python']} ({cfg['platform']})", file=out)
    print(f"  numpy           {cfg['numpy']}", file=out)
    print(f"  compiled with   {'OpenMP' if cfg['openmp'] else 'NO OpenMP (serial build: n_threads has no effect)'}",
          file=out)
    print(f"  usable cores    {cfg['usable_cores']} (a fit's n_threads=None takes those no other fit holds)",
          file=out)
    print(f"  product blocks  {cfg['product_blocks']} (large products split into at most this many; "
          f"results do not depend on n_threads)", file=out)
    print(f"  openmp runtime  {cfg['openmp_library'] or 'not identified on this platform'}", file=out)
    print(f"  openmp waiting  {cfg['openmp_wait']}", file=out)
    print(f"  min entries per thread {cfg['min_entries_per_thread']} (smaller passes use fewer threads)", file=out)
    print("thread pools (threads now / during a fit; who sets them; what runs on them)", file=out)
    if not cfg["thread_pools"]:
        print("  none found", file=out)
    for pool in cfg["thread_pools"]:
        name = f"{pool['user_api']} {pool['internal_api']} {pool['version'] or ''}".strip()
        print(f"  {name:<26} {pool['num_threads']} / {pool['during_fit']}  loaded by {pool['owner']}; "
              f"set by {pool['set_by']}; runs {pool['role']}", file=out)
        print(f"  {'':<26} {pool['filepath']}", file=out)
