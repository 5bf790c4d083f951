"""The asv suite runs: every benchmark module imports, and every benchmark of every class runs its
setup, one call and its teardown for every parameter combination, at tiny sizes
(``BREGMAN_SOLVERS_BENCH_TINY=1``, the full activation grid included), so that a broken benchmark
fails CI rather than the next person who runs asv. Speed is not measured here."""
import importlib
import inspect
import itertools
import pkgutil
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
# asv's names for benchmarks (asv_runner.benchmarks: time, timeraw, mem, peakmem, track)
BENCHMARK = re.compile(r"^(time|timeraw|mem|peakmem|track)_")


@pytest.fixture
def suite(monkeypatch):
    """The ``benchmarks`` package imported afresh at tiny sizes, as asv imports it."""
    monkeypatch.setenv("BREGMAN_SOLVERS_BENCH_TINY", "1")
    monkeypatch.setenv("BREGMAN_SOLVERS_BENCH_FULL_GRID", "1")
    monkeypatch.syspath_prepend(str(ROOT))
    stale = [name for name in sys.modules if name == "benchmarks" or name.startswith("benchmarks.")]
    for name in stale:
        monkeypatch.delitem(sys.modules, name)
    package = importlib.import_module("benchmarks")
    with threadpool_limits(limits=None):     # pin_blas() changes BLAS threads: restored after
        yield {name: importlib.import_module(f"benchmarks.{name}")
               for _, name, _ in pkgutil.iter_modules(package.__path__)}
    for name in [name for name in sys.modules if name.startswith("benchmarks.")]:
        del sys.modules[name]


def benchmark_classes(modules):
    for module in modules.values():
        for name, cls in inspect.getmembers(module, inspect.isclass):
            methods = [m for m in dir(cls) if BENCHMARK.match(m)]
            if cls.__module__ == module.__name__ and methods:
                yield cls, methods


def parameter_grid(cls):
    params = getattr(cls, "params", [])
    if not params:
        return [()]
    if not isinstance(params, tuple) or not all(isinstance(p, list) for p in params):
        params = (params,)          # asv: a single list of values is one parameter
    assert len(params) == len(getattr(cls, "param_names", params)), cls
    return list(itertools.product(*params))


def test_every_benchmark_runs_setup_a_call_and_teardown_at_tiny_sizes(suite):
    assert {"bench_activations", "bench_solvers", "bench_stochastic", "bench_convolution", "bench_anomaly"} <= set(suite)
    assert suite["_common"].TINY and suite["_common"].FULL_GRID
    calls = 0
    for cls, methods in benchmark_classes(suite):
        for combo in parameter_grid(cls):
            for method in methods:
                case = cls()
                if hasattr(case, "setup"):
                    case.setup(*combo)
                try:
                    result = getattr(case, method)(*combo)
                    assert result is None or np.isfinite(result), (cls.__name__, method, combo)
                finally:
                    if hasattr(case, "teardown"):
                        case.teardown(*combo)
                calls += 1
    # every hot path of issue 32: kernels, layer pass, parameter step, solver iterations, epochs, conv
    names = {cls.__name__ for cls, _ in benchmark_classes(suite)}
    assert {"ActivationKernels", "ActivationKernelsFullGrid", "LayerUpdate", "ParameterPasses", "SolverIterations",
            "OneEpoch", "ConvolutionKernels", "LeNetEpoch"} <= names
    assert calls > 500


def test_the_full_grid_is_skipped_unless_asked(suite, monkeypatch):
    monkeypatch.setattr(suite["bench_activations"], "FULL_GRID", False)
    case = suite["bench_activations"].ActivationKernelsFullGrid()
    with pytest.raises(NotImplementedError, match="BREGMAN_SOLVERS_BENCH_FULL_GRID=1"):
        case.setup("elu", "100x784", "float64")
    # and the subset covers every kernel of the full grid
    full, subset = suite["bench_activations"].ActivationKernelsFullGrid, suite["bench_activations"].ActivationKernels
    assert [m for m in dir(full) if BENCHMARK.match(m)] == [m for m in dir(subset) if BENCHMARK.match(m)]
    assert set(subset.params[0]) < set(full.params[0])


def test_setup_builds_its_inputs_once_per_process(suite):
    """asv re-runs setup before every sample: it must find its inputs, not build them again."""
    bench = suite["bench_stochastic"]
    first, second = bench.OneEpoch(), bench.OneEpoch()
    first.setup("SGDBP", "float32")
    second.setup("SGDBP", "float32")
    assert first.net is second.net and first.X is second.X


def test_asv_discovers_the_suite(suite):
    """asv's own discovery (asv_runner, installed with the test extras) finds every benchmark."""
    discovery = pytest.importorskip("asv_runner.discovery")
    found = {b.name for b in discovery.disc_benchmarks(str(ROOT / "benchmarks"))}
    expected = {f"{cls.__module__.split('.', 1)[1]}.{cls.__name__}.{m}" for cls, methods in benchmark_classes(suite)
                for m in methods}
    assert expected <= found and len(found) == len(expected)
