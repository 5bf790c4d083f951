"""One implicit-SGD epoch of the library against the GEMM floor and a NumPy reference, side by side.

For the classification configuration (784-784-784-784-10, relu, batch 100, K = 10) and
the autoencoder configuration (five widths of 784, relu, batch 100, K = 30), in
float32 and float64, it prints seconds per 1,000 samples of:

* ``library``: :class:`bregman_solvers.ImplicitSGD` (metrics off), one epoch;
* ``floor``: the same matrix products alone (3L - 1 GEMMs per inner iteration: L
  pre-activations, L parameter gradients, L - 1 back terms), through the same BLAS on
  preallocated buffers, in the fastest operand layout: batch arrays with samples or
  features as rows, weights stored ``(out, in)`` or transposed (:data:`LAYOUTS`; short
  trial runs pick one, printed at the end of the row after the library's, which is
  always samples as rows);
* ``numpy``: :class:`NumpyImplicitSGD` below, the same algorithm in plain NumPy with
  preallocated buffers and ``out=`` arguments (a fair peer, not a straw man);
* ``sgd-bp``: the library's SGD-BP, one epoch;
* ``torch`` (when PyTorch is installed): ``TorchImplicitSGD`` (``torch_peers.py``), the same algorithm with
  PyTorch tensors on the CPU, timed in its own process at PyTorch's own OpenMP settings (in the library's
  process the two would share one OpenMP runtime, set up by the library's import); ``torch floor``: the
  peer's 3L - 1 products alone on PyTorch's BLAS (MKL in its x86 wheels, not the OpenBLAS of SciPy that
  the library and ``floor`` use), so ``torch/fl`` and ``lib/fl(lr)`` compare what each does around its
  own BLAS;

and the ratios library / floor, numpy / library (and torch / library). ``floor(lr)`` is the
floor of the products the library issues (its input layer in low-rank form, docs/performance.rst
"Fewer products per batch"): below the plain floor, which every implementation of the plain update
must pay; ``lib/fl(lr)`` says how close the library comes to its own. ``floor(b=1)`` is
the floor with the parameter-gradient products accumulated into their buffers (BLAS
``beta = 1``) instead of written (``beta = 0``, which OpenBLAS precedes with a zeroing
pass): the library accumulates them into the weights, so this stricter floor shows what
that choice is worth.

    python benchmarks/compare.py                     # 2,000 samples, all four cases
    python benchmarks/compare.py --repeat 3          # best of 3 rounds over the columns (less noise)
    python benchmarks/compare.py --n-samples 5000 --dtypes float32
    python benchmarks/compare.py --activations relu tanh   # the tanh row: hidden layers tanh

``--configs lenet5`` (only when asked) times the LeNet-5-like lifted CNN (batch 100, K = 10) against
its floor: per inner iteration and layer the patch matrix (im2col) and the forward GEMM, the weight
gradient's GEMM on the same patches, and but for the first layer the back term's GEMM and col2im
(pooling passes included), on preallocated buffers: what an epoch must do at least; and, where
PyTorch imports, against ``TorchLiftedCNN`` (``torch_peers.py``), the same lifted update written with
``torch.nn.functional`` convolutions (checked step for step against the library in
``tests/test_benchmark_scripts.py``).

``--activations`` runs the library and SGD-BP columns with other hidden activations (the
floor does not depend on them; the NumPy and PyTorch peers are written for relu and are
left out of those rows), and prints each row's library time over the relu row's.
"""
import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import bregman_solvers as bs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_peers import epoch_in_own_process, save_case  # noqa: E402 - the sibling module, whatever the cwd

CONFIGS = {
    "classification": ([784, 784, 784, 784, 10], 10),
    "autoencoder": ([784, 784, 784, 784, 784], 30),
}
#: Algorithm 1 as the peers and the floor run it: the stored start, no momentum, MATH.md's steps
#: (safe on this random data; the cost does not depend on them)
ALGORITHM_1 = dict(tau_theta=0.1, tau_x=0.1, tau=1.0, aux_start="stored", momentum=0.0)


class NumpyImplicitSGD:
    """Algorithm 1 for relu hidden layers and an identity output, in NumPy (the reference peer).

    The same updates as the library (Remark 11 splitting, per-sample x steps, the
    proximity term to theta^k), with every buffer allocated once.
    """

    def __init__(self, widths, batch, dtype, tau_theta=0.1, tau_x=0.1, tau=1.0):
        self.widths, self.B, self.dt = widths, batch, np.dtype(dtype)
        self.tt, self.tx, self.tau = tau_theta, tau_x, tau
        L = len(widths) - 1
        e = lambda *s: np.empty(s, self.dt)  # noqa: E731
        self.Z = [e(batch, w) for w in widths[1:]]
        self.R = [e(batch, w) for w in widths[1:]]
        self.V = [e(batch, w) for w in widths[1:-1]]
        self.T = [e(batch, w) for w in widths[:-1]]
        self.gW = [e(widths[l + 1], widths[l]) for l in range(L)]
        self.gb = [e(w) for w in widths[1:]]
        self.W0 = [e(widths[l + 1], widths[l]) for l in range(L)]
        self.b0 = [e(w) for w in widths[1:]]
        self.x0, self.y = e(batch, widths[0]), e(batch, widths[-1])
        self.H = [e(batch, w) for w in widths[1:-1]]

    def epoch(self, net, X, Y, hidden, order):
        W, b = net.weights, net.biases
        L = len(W)
        t = self.tx
        for a in range(0, len(order) - self.B + 1, self.B):
            idx = np.sort(order[a:a + self.B])
            np.take(X, idx, axis=0, out=self.x0)
            np.take(Y, idx, axis=0, out=self.y)
            for h in range(L - 1):
                np.take(hidden[h], idx, axis=0, out=self.H[h])
            for l in range(L):
                np.copyto(self.W0[l], W[l])
                np.copyto(self.b0[l], b[l])
            xs = [self.x0, *self.H, self.y]
            for _ in range(self.K):
                for l in range(L):
                    np.matmul(xs[l], W[l].T, out=self.Z[l])
                    self.Z[l] += b[l]
                    if l < L - 1:
                        np.maximum(self.Z[l], 0, out=self.R[l])
                        np.multiply(self.Z[l], t, out=self.V[l])
                        self.V[l] += xs[l + 1]
                        self.V[l] *= 1.0 / (1.0 + t)
                    else:
                        np.copyto(self.R[l], self.Z[l])
                    self.R[l] -= xs[l + 1]
                for h in range(L - 1):
                    tmp = self.T[h + 1]
                    np.matmul(self.R[h + 1], W[h + 1], out=tmp)
                    tmp *= -t / (1.0 + t)
                    self.V[h] += tmp
                for l in range(L):
                    np.matmul(self.R[l].T, xs[l], out=self.gW[l])
                    self.gW[l] *= 1.0 / self.B
                    np.sum(self.R[l], axis=0, out=self.gb[l])
                    self.gb[l] *= 1.0 / self.B
                    for g, p, p0 in ((self.gW[l], W[l], self.W0[l]), (self.gb[l], b[l], self.b0[l])):
                        g *= self.tau
                        g += p
                        g -= p0
                        g *= self.tt / self.tau
                        p -= g
                for h in range(L - 1):
                    np.maximum(self.V[h], 0, out=self.H[h])
            for h in range(L - 1):
                hidden[h][idx] = self.H[h]


#: Operand layouts the floor tries: batch arrays with samples or features as rows, weights
#: stored (out, in) or transposed (in, out). The library keeps samples as rows and W as (out, in).
LAYOUTS = [(rows, w) for rows in ("samples", "features") for w in ("W", "W^T")]


def gemm_floor(widths, batch, dtype, n_iter, accumulate=False, layout=("samples", "W"), low_rank_K=None):
    """Seconds of the 3L - 1 products of ``n_iter`` inner iterations, alone, on preallocated buffers.

    ``low_rank_K``: the products the library issues with its input layer in low-rank form
    (docs/performance.rst, "Fewer products per batch") at K = ``low_rank_K``: per inner
    iteration the first layer's two products replaced by ``G A`` (batch x batch times batch x
    n_1), and per batch of K iterations the Gram matrix and the weights formed once.

    The parameter-gradient products ``R^T X`` are written into buffers (BLAS ``beta = 0``)
    or, with ``accumulate``, added to them (``beta = 1``, as the library adds them to the
    weights; OpenBLAS runs that without the zeroing pass ``beta = 0`` costs).
    ``layout`` is one of :data:`LAYOUTS`: the same products with the operands stored
    another way (a product's speed depends on it, and not alike for every dtype and
    thread count).
    """
    from bregman_solvers._kernels._lifted import gemm

    rows, w_layout = layout
    fm, wt = rows == "features", w_layout == "W^T"
    rng = np.random.default_rng(0)
    L = len(widths) - 1

    def batch_array(width):
        shape = (width, batch) if fm else (batch, width)
        return rng.standard_normal(shape).astype(dtype)

    W = [rng.standard_normal((widths[l], widths[l + 1]) if wt else (widths[l + 1], widths[l])).astype(dtype)
         for l in range(L)]
    X = [batch_array(w) for w in widths]
    Z = [batch_array(w) for w in widths[1:]]
    G = [np.zeros_like(w) for w in W]
    back = [batch_array(w) for w in widths[:-1]]
    alpha, beta = (1e-6, 1.0) if accumulate else (1.0, 0.0)
    # (trans_a, trans_b, a, b) of each product, in the chosen layout
    if fm:       # Z^T = W X^T, G = R^T X (as R^T (X^T)^T), back^T = W^T R^T
        forward = [(wt, False, W[l], X[l]) for l in range(L)]
        gradient = [(False, True, X[l], Z[l]) if wt else (False, True, Z[l], X[l]) for l in range(L)]
        backward = [(not wt, False, W[l], Z[l]) for l in range(1, L)]
    else:        # Z = X W^T, G = R^T X, back = R W
        forward = [(False, not wt, X[l], W[l]) for l in range(L)]
        gradient = [(True, False, X[l], Z[l]) if wt else (True, False, Z[l], X[l]) for l in range(L)]
        backward = [(False, wt, Z[l], W[l]) for l in range(1, L)]
    first = 1 if low_rank_K else 0
    if low_rank_K:
        x0 = rng.standard_normal((batch, widths[0])).astype(dtype)
        gram = np.zeros((batch, batch), dtype)
        coef, z0 = rng.standard_normal((batch, widths[1])).astype(dtype), np.zeros((batch, widths[1]), dtype)
        w0 = rng.standard_normal((widths[1], widths[0])).astype(dtype)
    t0 = time.perf_counter()
    for i in range(n_iter):
        if low_rank_K:
            if i % low_rank_K == 0:
                gemm(False, True, 1.0, x0, x0, 0.0, gram)
                gemm(True, False, -1e-6, coef, x0, 1.0, w0)
            gemm(False, False, -1.0, gram, coef, 1.0, z0)
        for l, (ta, tb, a, b) in enumerate(forward[first:], start=first):
            gemm(ta, tb, 1.0, a, b, 0.0, Z[l])
        for l, (ta, tb, a, b) in enumerate(gradient[first:], start=first):
            gemm(ta, tb, alpha, a, b, beta, G[l])
        for l, (ta, tb, a, b) in enumerate(backward, start=1):
            gemm(ta, tb, 1e-6, a, b, 1.0, back[l])
    return time.perf_counter() - t0


def fastest_layout(widths, batch, dtype, n_iter, accumulate=False):
    """The layout of :data:`LAYOUTS` in which the floor's products run fastest here (short trial runs)."""
    trial = max(10, n_iter // 10)
    times = {layout: min(gemm_floor(widths, batch, dtype, trial, accumulate, layout) for _ in range(2))
             for layout in LAYOUTS}
    return min(times, key=times.get)


def torch_available():
    """Whether PyTorch can be imported (not imported here: the peers run in their own processes)."""
    return importlib.util.find_spec("torch") is not None


def timed(run):
    """Wall seconds of one call of ``run``."""
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def activation_rows(cfg, widths, K, X, Y, dtype, activations, repeat):
    """The library's epoch (and SGD-BP's) with each hidden activation, timed in alternating rounds
    with relu so that the ratio to relu is measured side by side."""
    batch, n = 100, X.shape[0]
    columns = {}
    for act in dict.fromkeys(["relu", *activations]):
        acts = [act] * (len(widths) - 2) + ["identity"]
        net = bs.LiftedNetwork(widths, acts, dtype=dtype, random_state=0)
        state = net.init_state(X)
        solver = bs.ImplicitSGD(batch_size=batch, inner_iterations=K, epochs=1, random_state=0,
                                track_energy=False, shuffle=False, **ALGORITHM_1)
        solver.fit(net, X[:200], Y[:200])                              # warm-up
        bp_net = bs.LiftedNetwork(widths, acts, dtype=dtype, random_state=0)
        bp = bs.SGDBP(batch_size=batch, epochs=1, random_state=0, track_energy=False)
        columns[act, "lib"] = lambda s=solver, m=net, st=state: timed(lambda: s.fit(m, X, Y, state=st))
        columns[act, "bp"] = lambda b=bp, m=bp_net: timed(lambda: b.fit(m, X, Y))
    best = {key: np.inf for key in columns}
    for _ in range(repeat):
        for key, run in columns.items():
            best[key] = min(best[key], run())
    per = 1000.0 / n
    for act in activations:
        print(f"{cfg:15} {dtype:8} {act:8} {best[act, 'lib'] * per:9.3f} {best[act, 'bp'] * per:9.3f} "
              f"{best[act, 'lib'] / best['relu', 'lib']:10.2f} {best[act, 'bp'] / best['relu', 'bp']:10.2f}",
              flush=True)


def conv_floor(layers, batch, dtype, n_iter):
    """Seconds of a lifted CNN's products for ``n_iter`` inner iterations, each patch matrix formed once."""
    from bregman_solvers.convolution import AvgPooled, Conv2d
    from bregman_solvers._kernels import _conv, _lifted
    from bregman_solvers._threads import usable_cores

    t = usable_cores()          # the passes' threads; the products run on BLAS's own threads

    rng = np.random.default_rng(0)
    xs = [rng.random((batch, layers[0].in_size)).astype(dtype)] + \
         [rng.random((batch, op.out_size)).astype(dtype) for op in layers]
    ws = [rng.standard_normal(op.weight_shape).astype(dtype) for op in layers]
    plans = []
    for l, op in enumerate(layers):
        pool = op if isinstance(op, AvgPooled) else None
        inner = op.operator if pool else op
        pooled = np.empty((batch, inner.in_size), dtype) if pool else None
        cols = np.empty((batch * inner._positions, inner.n_weights // inner.channels), dtype) \
            if isinstance(inner, Conv2d) else None
        back = np.zeros((batch, op.in_size), dtype)
        plans.append((op, inner, pool, pooled, cols, back))
    z = [np.empty((batch, op.out_size), dtype) for op in layers]
    g = [np.empty(op.weight_shape, dtype) for op in layers]
    start = time.perf_counter()
    for _ in range(n_iter):
        for l, (op, inner, pool, pooled, cols, back) in enumerate(plans):
            x = xs[l]
            if pool:
                _conv.avg_pool(x, pooled, *pool.in_shape, pool.size, t)
                x = pooled
            if cols is not None:
                _conv.im2col(x, cols, *inner._geometry(), t)
                w = ws[l].reshape(inner.channels, -1)
                _lifted.gemm(False, True, 1.0, cols, w, 0.0, z[l].reshape(-1, inner.channels))
                _lifted.gemm(True, False, 1.0, z[l].reshape(-1, inner.channels), cols, 0.0,
                             g[l].reshape(inner.channels, -1))
                if l:
                    _lifted.gemm(False, False, 1.0, z[l].reshape(-1, inner.channels), w, 0.0, cols)
                    target = back if not pool else np.zeros_like(pooled)
                    _conv.col2im(cols, target, *inner._geometry(), 1.0, t)
            else:
                _lifted.gemm(False, True, 1.0, x, ws[l], 0.0, z[l])
                _lifted.gemm(True, False, 1.0, z[l], x, 0.0, g[l])
                if l:
                    target = back if not pool else np.zeros_like(pooled)
                    _lifted.gemm(False, False, 1.0, z[l], ws[l], 0.0, target)
            if pool and l:
                _conv.avg_pool_adjoint(pooled, back, *pool.in_shape, pool.size, 1.0, t)
    return time.perf_counter() - start


def conv_rows(n, dtypes, repeat, scratch):
    """The ``lenet5`` config: the library's epoch against :func:`conv_floor`, side by side."""
    from bregman_solvers.architectures import architecture
    has_torch = torch_available()
    print(f"\n{'config':15} {'dtype':8} {'library':>9} {'floor':>9} {'lib/floor':>10}"
          + (f" {'torch':>9} {'torch/lib':>10}" if has_torch else ""))
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        X = (rng.random((n, 784)) - 0.5).astype(dtype)
        Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, n)]
        layers = architecture("lenet5", (28, 28, 1), 10)
        net = bs.LiftedNetwork(layers, ["relu"] * 4 + ["identity"], dtype=dtype, random_state=0)
        state = net.init_state(X)
        # the Euclidean steps: the floor's products and the PyTorch peer's update
        solver = bs.ImplicitSGD(batch_size=100, inner_iterations=10, epochs=1, random_state=0, track_energy=False,
                                shuffle=False, tau_theta=0.01, tau_x=0.1, tau=1.0, aux_start="stored", momentum=0.0,
                                theta_metric="euclidean")
        solver.fit(net, X[:200], Y[:200])                           # warm-up
        n_iter = 10 * (n // 100)
        columns = {"lib": lambda: timed(lambda: solver.fit(net, X, Y, state=state)),
                   "floor": lambda: conv_floor(layers, 100, dtype, n_iter)}
        if has_torch:
            case = Path(scratch) / f"lenet5-{dtype}.npz"
            save_case(case, "cnn", X, Y)
            columns["torch"] = lambda case=case: epoch_in_own_process(case)[0]
        best = {name: np.inf for name in columns}
        for _ in range(repeat):
            for name, run in columns.items():
                best[name] = min(best[name], run())
        per = 1000.0 / n
        extra = f" {best['torch'] * per:9.3f} {best['torch'] / best['lib']:10.2f}" if has_torch else ""
        print(f"{'lenet5':15} {dtype:8} {best['lib'] * per:9.3f} {best['floor'] * per:9.3f} "
              f"{best['lib'] / best['floor']:10.2f}{extra}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=[*CONFIGS, "lenet5"])
    parser.add_argument("--activations", nargs="+", default=["relu"], choices=["relu", "tanh", "sigmoid"],
                        help="hidden activations, one row each (relu first for the ratios)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds over all columns (one epoch each); the best of each column counts")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    with tempfile.TemporaryDirectory(prefix="bregman-compare-") as scratch:
        n, batch = args.n_samples, 100
        rng = np.random.default_rng(0)
        print(f"{n} samples, batch {batch}; seconds per 1,000 samples of one epoch")
        has_torch = torch_available()
        if any(cfg in CONFIGS for cfg in args.configs):
            print(f"{'config':15} {'dtype':8} {'library':>9} {'floor':>9} {'numpy':>9} {'sgd-bp':>9} "
                  f"{'lib/floor':>10} {'numpy/lib':>10} {'floor(b=1)':>10} {'lib/fl(b=1)':>11} {'floor(lr)':>10} "
                  f"{'lib/fl(lr)':>10}"
                  + (f" {'torch':>9} {'torch/lib':>10} {'torch floor':>11} {'torch/fl':>10}" if has_torch else "")
                  + "  rows of batch arrays: library / floor")
        pending = []          # (config, dtype) cases whose activation rows follow the main table
        for cfg in args.configs:
            if cfg not in CONFIGS:
                continue
            widths, K = CONFIGS[cfg]
            for dtype in args.dtypes:
                X = (rng.random((n, 784)) - 0.5).astype(dtype)
                Y = X.copy() if cfg == "autoencoder" else np.eye(10, dtype=dtype)[rng.integers(0, 10, n)]
                acts = ["relu"] * (len(widths) - 2) + ["identity"]
                net = bs.LiftedNetwork(widths, acts, dtype=dtype, random_state=0)
                state = net.init_state(X)
                solver = bs.ImplicitSGD(batch_size=batch, inner_iterations=K, epochs=1, random_state=0,
                                        track_energy=False, shuffle=False, **ALGORITHM_1)
                solver.fit(net, X[:200], Y[:200])                          # warm-up (workspaces, BLAS)
                n_iter = K * (n // batch)
                ref = NumpyImplicitSGD(widths, batch, dtype)
                ref.K = K
                ref_net = bs.LiftedNetwork(widths, acts, dtype=dtype, random_state=0)
                hidden = [h.copy() for h in ref_net.init_state(X).hidden]
                bp_net = bs.LiftedNetwork(widths, acts, dtype=dtype, random_state=0)
                bp = bs.SGDBP(batch_size=batch, epochs=1, random_state=0, track_energy=False)
                layout = fastest_layout(widths, batch, dtype, n_iter)
                layout_acc = fastest_layout(widths, batch, dtype, n_iter, accumulate=True)
                columns = {
                    "lib": lambda: timed(lambda: solver.fit(net, X, Y, state=state)),
                    "floor": lambda: gemm_floor(widths, batch, dtype, n_iter, layout=layout),
                    "floor_acc": lambda: gemm_floor(widths, batch, dtype, n_iter, accumulate=True, layout=layout_acc),
                    "floor_lr": lambda: gemm_floor(widths, batch, dtype, n_iter, accumulate=True, layout=layout_acc,
                                                   low_rank_K=K),
                    "numpy": lambda: timed(lambda: ref.epoch(ref_net, X, Y, hidden, np.arange(n))),
                    "bp": lambda: timed(lambda: bp.fit(bp_net, X, Y)),
                }
                if has_torch:
                    # in its own process, at PyTorch's own OpenMP settings (torch_peers.py says why)
                    t_net = bs.LiftedNetwork(widths, acts, dtype=dtype, random_state=0)
                    case = Path(scratch) / f"{cfg}-{dtype}.npz"
                    save_case(case, "mlp", X, Y, widths=widths, K=K, weights=t_net.weights, biases=t_net.biases,
                              hidden=t_net.init_state(X).hidden)
                    torch_floor = []

                def torch_column(case=case, floors=torch_floor):
                    epoch, floor = epoch_in_own_process(case)
                    floors.append(floor)
                    return epoch
                columns["torch"] = torch_column
                # the repeats go round the columns, so a slow spell of the machine hits every column alike
                best = {name: np.inf for name in columns}
                for _ in range(args.repeat):
                    for name, run in columns.items():
                        best[name] = min(best[name], run())
                t_lib, t_floor, t_floor_acc, t_np, t_bp = (best[k]
                                                           for k in ("lib", "floor", "floor_acc", "numpy", "bp"))
                per = 1000.0 / n
                lib_layout = "samples"
                extra = ""
                if has_torch:
                    extra = (f" {best['torch'] * per:9.3f} {best['torch'] / t_lib:10.2f}"
                             f" {min(torch_floor) * per:11.3f} {best['torch'] / min(torch_floor):10.2f}")
                print(f"{cfg:15} {dtype:8} {t_lib * per:9.3f} {t_floor * per:9.3f} {t_np * per:9.3f} {t_bp * per:9.3f} "
                      f"{t_lib / t_floor:10.2f} {t_np / t_lib:10.2f} {t_floor_acc * per:10.3f} "
                      f"{t_lib / t_floor_acc:11.2f} {best['floor_lr'] * per:10.3f} {t_lib / best['floor_lr']:10.2f}"
                      f"{extra}  {lib_layout} / {'+'.join(layout)}", flush=True)
                others = [act for act in args.activations if act != "relu"]
                if others:
                    pending.append((cfg, widths, K, X, Y, dtype))
        if "lenet5" in args.configs:
            conv_rows(n, args.dtypes, args.repeat, scratch)
        if any(act != "relu" for act in args.activations):
            print(f"\nhidden activations (library and SGD-BP epochs; ratios to the same epoch with relu, "
                  f"measured side by side)\n{'config':15} {'dtype':8} {'act':8} {'library':>9} {'sgd-bp':>9} "
                  f"{'lib/relu':>10} {'bp/relu':>10}")
            for cfg, widths, K, X, Y, dtype in pending:
                activation_rows(cfg, widths, K, X, Y, dtype, args.activations, args.repeat)


if __name__ == "__main__":
    main()
