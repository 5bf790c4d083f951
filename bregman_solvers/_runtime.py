"""The process-wide runtime settings of the package, and what it sets in its process at import.

Imported first by ``bregman_solvers/__init__.py``: the OpenMP runtime reads its wait policy
from the environment when it loads, which is when the first kernel module is imported, so this
module imports no kernel that uses OpenMP (only ``_kernels/_pause``, built without it, to time the
spin that the wait policy counts). Every setting the environment can change lives in :data:`SETTINGS`
(read once at import; ``show_config()`` prints it): the threads module resolves the product
blocks' default, the validation module reads the threshold of small passes, a Dask worker sets
the blocks the driver sends.
"""
import os
import warnings

__all__ = ["OPENMP_LOADED_BEFORE", "SETTINGS", "RuntimeSettings", "PRODUCT_BLOCKS_ENV", "MIN_ENTRIES_ENV",
           "DEFAULT_MIN_ENTRIES_PER_THREAD", "positive_int_setting", "SPIN_SECONDS", "DEFAULT_SPIN_COUNT",
           "SPIN_COUNT_RANGE", "SPIN_COUNT_CALIBRATED", "PAUSE_SECONDS", "SET_BY_IMPORT", "spin_count"]

PRODUCT_BLOCKS_ENV = "BREGMAN_SOLVERS_PRODUCT_BLOCKS"
MIN_ENTRIES_ENV = "BREGMAN_SOLVERS_MIN_ENTRIES_PER_THREAD"
#: Below this many entries per thread an OpenMP region costs more than it saves: waking passive
#: threads costs tens to hundreds of microseconds on a virtual machine, a fused layer pass under a
#: nanosecond per entry (docs/performance.rst, "Threads"). So a pass of one batch of 100 samples x
#: 784 features runs on one thread, the full parameter vector and large activation arrays on several.
DEFAULT_MIN_ENTRIES_PER_THREAD = 131072


def positive_int_setting(name, value, default):
    """The environment setting ``name`` given as ``value`` (a string or None): a positive integer,
    else ``default`` (None or empty quietly, anything else with a warning naming the variable)."""
    if value is None or value == "":
        return default
    try:
        parsed = int(value)
    except ValueError:
        parsed = 0
    if parsed < 1:
        shown = "the usable cores" if default is None else default
        warnings.warn(f"{name}={value!r} is not a positive integer; using {shown}", RuntimeWarning, stacklevel=2)
        return default
    return parsed


class RuntimeSettings:
    """The settings that steer the kernels' speed, never their results.

    Attributes
    ----------
    product_blocks : int or None
        Blocks a large matrix product is split into (each thread of a fit calls BLAS on its
        blocks), fixed for the process whatever a fit's ``n_threads`` so that results do not
        depend on the thread count. ``BREGMAN_SOLVERS_PRODUCT_BLOCKS``, else None until
        :mod:`bregman_solvers._threads` resolves it to the usable cores at import.
    min_entries_per_thread : int
        A pass of fewer entries per thread than this runs on fewer threads (a fit's and a
        network's ``n_threads`` is a cap; a kernel's explicit count is exact).
        ``BREGMAN_SOLVERS_MIN_ENTRIES_PER_THREAD``, default :data:`DEFAULT_MIN_ENTRIES_PER_THREAD`.
    """

    def __init__(self, environ=os.environ):
        self.product_blocks = positive_int_setting(PRODUCT_BLOCKS_ENV, environ.get(PRODUCT_BLOCKS_ENV), None)
        self.min_entries_per_thread = positive_int_setting(MIN_ENTRIES_ENV, environ.get(MIN_ENTRIES_ENV),
                                                           DEFAULT_MIN_ENTRIES_PER_THREAD)

    def __repr__(self):
        return (f"RuntimeSettings(product_blocks={self.product_blocks}, "
                f"min_entries_per_thread={self.min_entries_per_thread})")


#: The process's settings (one object: the modules read it when they need a value, so a test or a
#: Dask worker that changes it changes it everywhere)
SETTINGS = RuntimeSettings()


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

#: How long an idle OpenMP thread of the library spins before it sleeps, in seconds (see below).
SPIN_SECONDS = 25e-6
#: ``GOMP_SPINCOUNT`` where the spin hint cannot be timed (not x86, or the kernels not built).
DEFAULT_SPIN_COUNT = 1000
#: The range the calibrated count is kept in (a timing disturbed by the machine cannot make the
#: threads sleep at once or spin for a millisecond).
SPIN_COUNT_RANGE = (300, 10000)


def spin_count(pause_seconds, target=SPIN_SECONDS):
    """``GOMP_SPINCOUNT`` for spins of about ``target`` seconds, given the seconds of one spin
    (``pause_seconds``; None: unknown, :data:`DEFAULT_SPIN_COUNT`), within :data:`SPIN_COUNT_RANGE`."""
    if pause_seconds is None or not pause_seconds > 0:
        return DEFAULT_SPIN_COUNT
    low, high = SPIN_COUNT_RANGE
    return int(min(high, max(low, round(target / pause_seconds))))


def _timed_pause():
    """Seconds of one spin-wait hint on this processor (``_kernels/_pause.pyx``, built without
    OpenMP); None where it cannot be timed."""
    try:
        from ._kernels._pause import pause_seconds
    except ImportError:              # a source checkout without its kernels built
        return None
    return pause_seconds()


# Thread policy (docs/performance.rst, "Threads"; bregman_solvers/_threads.py). During a fit
# BLAS runs one thread and the library splits each product over its own OpenMP threads.
# Those threads wait between two parallel regions: a sleeping thread is slow to wake on a
# virtual machine (measured in docs/performance.rst), while one that spins keeps a core
# from a busy neighbour. So they spin briefly and then sleep; other OpenMP runtimes wait
# passively. The spin lasts SPIN_SECONDS: libgomp counts it in spin-wait hints, whose
# duration differs several-fold between processors, so the count is timed here (about
# 2,300 on an Intel Xeon whose hint takes 11 ns). Both settings are read when libgomp
# loads, i.e. before our kernels are imported, and have no effect if another package
# loaded libgomp first (show_config() says so). A user's own OMP_WAIT_POLICY or
# GOMP_SPINCOUNT is respected.
#: True when this import set ``GOMP_SPINCOUNT`` (from the timed spin hint, else the default).
SPIN_COUNT_CALIBRATED = "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ
#: Seconds of one spin-wait hint as timed by this import (None: not timed).
PAUSE_SECONDS = _timed_pause() if SPIN_COUNT_CALIBRATED else None
if SPIN_COUNT_CALIBRATED:
    os.environ["GOMP_SPINCOUNT"] = str(spin_count(PAUSE_SECONDS))
#: The environment variables this import set (not the user): child processes of other OpenMP
#: programs (a benchmark's peer) should start without them, at their own defaults.
SET_BY_IMPORT = (("GOMP_SPINCOUNT",) if SPIN_COUNT_CALIBRATED else ()) + \
    (("OMP_WAIT_POLICY",) if "OMP_WAIT_POLICY" not in os.environ else ())
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
