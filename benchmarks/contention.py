"""One implicit-SGD epoch on a quiet machine and beside a CPU-bound competitor, side by side.

The classify configuration (784-784-784-784-10, relu, batch 100, K = 10) on MNIST images
(the embedded subset, scaled and centred), float32, the library's defaults (no
environment variables, no ``n_threads``). For each column it times one epoch quiet,
then with a competitor process running, ``--repeat`` times each (median), and prints
seconds and the ratio busy / quiet. On ``c`` cores a fair share with one competitor is
``c / (c - 1)`` (2x on 2 cores).

Columns: ``library`` (:class:`bregman_solvers.ImplicitSGD`, defaults), ``library
n_threads=1``, and ``torch`` (``TorchImplicitSGD`` of ``torch_peers.py``, the same
algorithm with PyTorch tensors, timed in its own process at PyTorch's own OpenMP settings)
when PyTorch is installed.

Competitors (``--competitor``):

* ``busy``: a pure-Python busy loop (one core, never sleeps);
* ``blas``: another process multiplying 784 x 784 matrices with NumPy's default BLAS
  threads in a loop (a training process next door).

    python benchmarks/contention.py                       # busy competitor, median of 3
    python benchmarks/contention.py --competitor blas --repeat 5
"""
import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import bregman_solvers as bs
from bregman_solvers.datasets import load_mnist, one_hot, preprocess

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import timed  # noqa: E402 - the sibling script, whatever the working directory
from torch_peers import epoch_in_own_process, save_case  # noqa: E402

WIDTHS = [784, 784, 784, 784, 10]

COMPETITORS = {
    "busy": "while True: pass",
    "blas": ("import numpy as np\n"
             "a = np.random.default_rng(0).standard_normal((784, 784))\n"
             "b = np.random.default_rng(1).standard_normal((100, 784))\n"
             "while True:\n    b = np.tanh(b @ a * 0.03)\n"),
}


class Competitor:
    """A CPU-bound process, started on entry and killed on exit."""

    def __init__(self, kind):
        self.code = COMPETITORS[kind]

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", self.code])
        time.sleep(0.5)       # let it reach its loop
        if self.process.poll() is not None:
            raise RuntimeError("the competitor process exited early")
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def _torch_epoch(X, Y, dtype, scratch):
    """The PyTorch peer's epoch, timed in its own process (``torch_peers.py`` says why); ImportError
    when PyTorch is absent."""
    if importlib.util.find_spec("torch") is None:
        raise ImportError("no module named 'torch'")
    net = bs.LiftedNetwork(WIDTHS, ["relu"] * 3 + ["identity"], dtype=dtype, random_state=0)
    case = Path(scratch) / "classify.npz"
    save_case(case, "mlp", X, Y, widths=WIDTHS, K=10, weights=net.weights, biases=net.biases,
              hidden=net.init_state(X).hidden)
    return lambda: epoch_in_own_process(case)[0]


def _library_epoch(X, Y, dtype, **solver_args):
    """Seconds of a fresh network's epoch with the defaults (and ``solver_args``), each call."""
    def run():
        net = bs.LiftedNetwork(WIDTHS, ["relu"] * 3 + ["identity"], dtype=dtype, random_state=0)
        bs.ImplicitSGD(batch_size=100, inner_iterations=10, epochs=1, random_state=0, aux_start="stored",
                       momentum=0.0, **solver_args).fit(net, X, Y)
    return lambda: timed(run)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="epochs per column and condition (median)")
    parser.add_argument("--competitor", choices=sorted(COMPETITORS), default="busy")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--no-torch", action="store_true", help="leave out the PyTorch column")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.n_samples < 100:
        parser.error("--repeat must be >= 1 and --n-samples >= 100")
    images, labels = load_mnist()
    n = min(args.n_samples, len(images))
    X, _ = preprocess(images[:n])
    X = X.astype(args.dtype)
    Y = one_hot(labels[:n], 10, args.dtype)
    with tempfile.TemporaryDirectory(prefix="bregman-contention-") as scratch:
        return _measure(args, X, Y, n, scratch)


def _measure(args, X, Y, n, scratch):
    # each column returns an epoch's seconds
    columns = {"library": _library_epoch(X, Y, args.dtype),
               "library n_threads=1": _library_epoch(X, Y, args.dtype, n_threads=1)}
    for run in columns.values():
        run()                                  # warm-up: workspaces, thread pools, caches
    if not args.no_torch:
        try:
            # (its process warms up before the epoch it times)
            columns["torch"] = _torch_epoch(X, Y, args.dtype, scratch)
        except ImportError:
            print("(PyTorch does not import: no torch column)")
    times = {name: {"quiet": [], "busy": []} for name in columns}
    for condition in ("quiet", "busy"):
        if condition == "busy":
            competitor = Competitor(args.competitor).__enter__()
        try:
            # the repeats go round the columns, so a slow spell hits every column alike
            for _ in range(args.repeat):
                for name, run in columns.items():
                    times[name][condition].append(run())
        finally:
            if condition == "busy":
                competitor.__exit__(None, None, None)
    cores = os.cpu_count() or 1
    print(f"{cores} cores; {n} MNIST images, {args.dtype}, classify config, batch 100, K = 10; "
          f"competitor: {args.competitor}; median of {args.repeat} epochs, seconds")
    print(f"{'column':22} {'quiet':>8} {'busy':>8} {'busy/quiet':>11}")
    medians = {name: {c: float(np.median(v)) for c, v in t.items()} for name, t in times.items()}
    for name, m in medians.items():
        print(f"{name:22} {m['quiet']:8.3f} {m['busy']:8.3f} {m['busy'] / m['quiet']:11.2f}")
    if "torch" in medians:
        lib, torch = medians["library"], medians["torch"]
        print(f"torch / library: quiet {torch['quiet'] / lib['quiet']:.2f}, busy {torch['busy'] / lib['busy']:.2f}")
    return medians


if __name__ == "__main__":
    main()
