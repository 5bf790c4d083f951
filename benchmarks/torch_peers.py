"""The PyTorch peers of ``compare.py`` and ``contention.py``: the library's updates written with PyTorch
tensors on the CPU (our code, no autograd), for side-by-side timings. PyTorch is never a dependency
of the package: the peers are used only where ``import torch`` works (a benchmark environment).

A peer is timed in its own process (:func:`epoch_in_own_process`): PyTorch's wheel ships the same
OpenMP runtime as the library (``libgomp.so.1``), so in one process both would share one runtime,
configured by whichever loaded it first with the environment of that moment, including the spin
that ``import bregman_solvers`` sets (a handicap of 10-15% for PyTorch, measured: its own default
spins about 100 times longer). The child process gets the environment without the variables the library's
import set (``bregman_solvers._runtime.SET_BY_IMPORT``) and does not import the library::

    python torch_peers.py CASE.npz      # one warm-up epoch on 200 samples, then one timed epoch
"""
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np


class TorchImplicitSGD:
    """The same algorithm with PyTorch tensors on the CPU (optional column; our own code, no autograd)."""

    def __init__(self, widths, batch, dtype, tau_theta=0.1, tau_x=0.1, tau=1.0):
        import torch

        self.torch = torch
        self.dt = {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]
        self.widths, self.B = widths, batch
        self.tt, self.tx, self.tau = tau_theta, tau_x, tau
        e = lambda *s: torch.empty(s, dtype=self.dt)  # noqa: E731
        L = len(widths) - 1
        self.Z = [e(batch, w) for w in widths[1:]]
        self.R = [e(batch, w) for w in widths[1:]]
        self.V = [e(batch, w) for w in widths[1:-1]]
        self.T = [e(batch, w) for w in widths[:-1]]
        self.gW = [e(widths[l + 1], widths[l]) for l in range(L)]
        self.gb = [e(w) for w in widths[1:]]
        self.H = [e(batch, w) for w in widths[1:-1]]

    def epoch(self, net, X, Y, hidden, order):
        torch = self.torch
        W = [torch.from_numpy(w) for w in net.weights]
        b = [torch.from_numpy(v) for v in net.biases]
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
        Ht = [torch.from_numpy(h) for h in hidden]
        L, t = len(W), self.tx
        for a in range(0, len(order) - self.B + 1, self.B):
            idx = torch.from_numpy(np.sort(order[a:a + self.B]))
            x0, y = Xt.index_select(0, idx), Yt.index_select(0, idx)
            for h in range(L - 1):
                torch.index_select(Ht[h], 0, idx, out=self.H[h])
            W0 = [w.clone() for w in W]
            b0 = [v.clone() for v in b]
            xs = [x0, *self.H, y]
            for _ in range(self.K):
                for l in range(L):
                    torch.matmul(xs[l], W[l].T, out=self.Z[l])
                    self.Z[l] += b[l]
                    if l < L - 1:
                        torch.clamp_min(self.Z[l], 0, out=self.R[l])
                        torch.mul(self.Z[l], t, out=self.V[l])
                        self.V[l] += xs[l + 1]
                        self.V[l] *= 1.0 / (1.0 + t)
                    else:
                        self.R[l].copy_(self.Z[l])
                    self.R[l] -= xs[l + 1]
                for h in range(L - 1):
                    torch.matmul(self.R[h + 1], W[h + 1], out=self.T[h + 1])
                    self.V[h].add_(self.T[h + 1], alpha=-t / (1.0 + t))
                for l in range(L):
                    torch.matmul(self.R[l].T, xs[l], out=self.gW[l])
                    torch.sum(self.R[l], 0, out=self.gb[l])
                    for g, p, p0 in ((self.gW[l], W[l], W0[l]), (self.gb[l], b[l], b0[l])):
                        # p <- p - tt (g / B + (p - p0) / tau)
                        p.mul_(1.0 - self.tt / self.tau).add_(p0, alpha=self.tt / self.tau)
                        p.add_(g, alpha=-self.tt / self.B)
                for h in range(L - 1):
                    torch.clamp_min(self.V[h], 0, out=self.H[h])
            for h in range(L - 1):
                Ht[h].index_copy_(0, idx, self.H[h])


class TorchLiftedCNN:
    """The lifted update of the ``lenet5`` config (relu hidden layers, identity output, Remark 11's
    splitting, the proximity term to theta^k, Algorithm 1 from stored variables) written with
    ``torch.nn.functional``: convolutions by ``conv2d``, their adjoints by ``conv_transpose2d``,
    weight gradients by ``torch.nn.grad.conv2d_weight``, pooling by ``avg_pool2d`` and its adjoint
    by nearest upsampling / 4; variables in PyTorch's own NCHW layout. Our code, no autograd."""

    def __init__(self, batch, dtype, tau_theta=0.01, tau_x=0.1, tau=1.0, K=10):
        import torch

        self.torch = torch
        self.dt = {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]
        self.B, self.tt, self.tx, self.tau, self.K = batch, tau_theta, tau_x, tau, K
        g = torch.Generator().manual_seed(0)

        def param(*shape):
            return (torch.randn(shape, generator=g, dtype=self.dt) / np.sqrt(np.prod(shape[1:]))).contiguous()

        # (kind, weight, pooled input): conv 1->6 5x5 pad 2; pool, conv 6->16 5x5; pool, dense 400->120; 120->84; 84->10
        self.layers = [("conv", param(6, 1, 5, 5), False, 2), ("conv", param(16, 6, 5, 5), True, 0),
                       ("dense", param(120, 400), True, 0), ("dense", param(84, 120), False, 0),
                       ("dense", param(10, 84), False, 0)]
        self.biases = [torch.zeros(w.shape[0], dtype=self.dt) for _, w, _, _ in self.layers]
        self.shapes = [(1, 28, 28), (6, 28, 28), (16, 10, 10), (120,), (84,), (10,)]

    def _input(self, l, x):
        F = self.torch.nn.functional
        kind, _, pooled, _ = self.layers[l]
        if pooled:
            x = F.avg_pool2d(x, 2)
        return x.flatten(1) if kind == "dense" else x

    def _forward(self, l, x):
        F = self.torch.nn.functional
        kind, w, _, pad = self.layers[l]
        b = self.biases[l]
        x = self._input(l, x)
        return F.conv2d(x, w, b, padding=pad) if kind == "conv" else self.torch.addmm(b, x, w.T)

    def _adjoint(self, l, r, x_shape):
        F = self.torch.nn.functional
        kind, w, pooled, pad = self.layers[l]
        back = F.conv_transpose2d(r, w, padding=pad) if kind == "conv" else r @ w
        if pooled:
            back = F.interpolate(back.reshape(-1, *self._pooled_shape(x_shape)), scale_factor=2) / 4
        return back.reshape(x_shape)

    @staticmethod
    def _pooled_shape(shape):
        c, h, w = shape[1:]
        return c, h // 2, w // 2

    def _weight_gradient(self, l, r, x):
        kind, w, _, pad = self.layers[l]
        x = self._input(l, x)
        if kind == "conv":
            return self.torch.nn.grad.conv2d_weight(x, w.shape, r, padding=pad)
        return r.T @ x

    def epoch(self, X, Y, hidden, order):
        """One epoch over ``X`` (n, 784) with stored variables ``hidden`` (NCHW tensors, updated)."""
        torch = self.torch
        Xt = torch.from_numpy(X).reshape(-1, 1, 28, 28)
        Yt = torch.from_numpy(Y)
        L, t, c = len(self.layers), self.tx, self.tt / self.tau
        for a in range(0, len(order) - self.B + 1, self.B):
            idx = torch.from_numpy(np.sort(order[a:a + self.B]))
            xs = [Xt.index_select(0, idx), *[h.index_select(0, idx) for h in hidden], Yt.index_select(0, idx)]
            anchor = [(w.clone(), b.clone()) for (_, w, _, _), b in zip(self.layers, self.biases)]
            for k in range(self.K):
                Z = [self._forward(l, xs[l]) for l in range(L)]
                R = [(torch.clamp_min(Z[l], 0) if l < L - 1 else Z[l]) - xs[l + 1] for l in range(L)]
                V = [(xs[h + 1] + t * Z[h] - t * self._adjoint(h + 1, R[h + 1], xs[h + 1].shape)) / (1 + t)
                     for h in range(L - 1)]
                for l in range(L):
                    w, b = self.layers[l][1], self.biases[l]
                    gw, gb = self._weight_gradient(l, R[l], xs[l]), R[l].sum(dim=tuple(i for i in range(R[l].dim())
                                                                                     if i != 1))
                    for p, g_, p0 in ((w, gw, anchor[l][0]), (b, gb, anchor[l][1])):
                        if k > 0:
                            p.mul_(1.0 - c).add_(p0, alpha=c)
                        p.add_(g_, alpha=-self.tt / self.B)
                for h in range(L - 1):
                    xs[h + 1] = torch.clamp_min(V[h], 0)
            for h in range(L - 1):
                hidden[h].index_copy_(0, idx, xs[h + 1])

    def hidden_state(self, n):
        return [self.torch.zeros((n, *shape), dtype=self.dt) for shape in self.shapes[1:-1]]


def product_floor(widths, batch, dtype, n_iter):
    """Seconds of :class:`TorchImplicitSGD`'s products alone for ``n_iter`` inner iterations (L
    pre-activations, L - 1 back terms, L parameter gradients, with ``out=`` on preallocated
    tensors): what the peer's epoch costs at least on PyTorch's BLAS (MKL in its x86 wheels)."""
    import torch

    dt = {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]
    g = torch.Generator().manual_seed(0)
    L = len(widths) - 1
    W = [torch.randn(widths[l + 1], widths[l], generator=g, dtype=dt) for l in range(L)]
    X = [torch.randn(batch, w, generator=g, dtype=dt) for w in widths]
    Z = [torch.empty(batch, w, dtype=dt) for w in widths[1:]]
    G = [torch.empty_like(w) for w in W]
    back = [torch.empty(batch, w, dtype=dt) for w in widths[:-1]]
    start = time.perf_counter()
    for _ in range(n_iter):
        for l in range(L):
            torch.matmul(X[l], W[l].T, out=Z[l])
        for l in range(1, L):
            torch.matmul(Z[l], W[l], out=back[l])
        for l in range(L):
            torch.matmul(Z[l].T, X[l], out=G[l])
    return time.perf_counter() - start


def save_case(path, kind, X, Y, *, widths=None, K=None, weights=None, biases=None, hidden=None):
    """Write what a peer's epoch needs to ``path`` (.npz): ``kind`` "mlp" (:class:`TorchImplicitSGD` with
    the network's ``weights``, ``biases``, stored ``hidden`` variables, ``widths`` and ``K``) or "cnn"
    (:class:`TorchLiftedCNN`, its own parameters)."""
    arrays = {"X": X, "Y": Y, "kind": np.array(kind)}
    if kind == "mlp":
        arrays.update(widths=np.array(widths), K=np.array(K))
        arrays.update({f"W{l}": w for l, w in enumerate(weights)})
        arrays.update({f"b{l}": b for l, b in enumerate(biases)})
        arrays.update({f"H{h}": v for h, v in enumerate(hidden)})
    np.savez(path, **arrays)


def peer_environment(environ=None):
    """``environ`` (default the process's) without what ``import bregman_solvers`` set in it: a user's own
    OpenMP settings stay, the library's defaults do not reach the peer."""
    env = dict(os.environ if environ is None else environ)
    runtime = sys.modules.get("bregman_solvers._runtime")
    for name in getattr(runtime, "SET_BY_IMPORT", ()):
        env.pop(name, None)
    return env


def epoch_in_own_process(case_path, timeout=600):
    """Seconds of one epoch of the peer of ``case_path`` (:func:`save_case`), timed in a fresh process
    after a warm-up epoch on 200 samples (the process's start and PyTorch's import not counted), and
    for "mlp" cases the seconds of the same epoch's products alone (:func:`product_floor`, PyTorch's
    own BLAS floor): ``[epoch]`` or ``[epoch, floor]``."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), str(case_path)], env=peer_environment(),
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"the PyTorch peer failed:\n{out.stderr}")
    return [float(v) for v in out.stdout.split()]


def _main(case_path):
    import torch  # noqa: F401 - first: its OpenMP runtime loads with its own defaults

    case = np.load(case_path)
    X, Y, kind = case["X"], case["Y"], str(case["kind"])
    dtype, n = X.dtype.name, len(X)
    m = min(n, 200)                     # the warm-up epoch's samples
    if kind == "mlp":
        widths = [int(w) for w in case["widths"]]
        L = len(widths) - 1
        net = SimpleNamespace(weights=[case[f"W{l}"].copy() for l in range(L)],
                              biases=[case[f"b{l}"].copy() for l in range(L)])
        hidden = [case[f"H{h}"].copy() for h in range(L - 1)]
        peer = TorchImplicitSGD(widths, 100, dtype)
        peer.K = int(case["K"])
        peer.epoch(net, X[:m], Y[:m], [h[:m].copy() for h in hidden], np.arange(m))
        start = time.perf_counter()
        peer.epoch(net, X, Y, hidden, np.arange(n))
        seconds = time.perf_counter() - start
        product_floor(widths, 100, dtype, 10)                          # warm-up
        print(f"{seconds:.6f} {product_floor(widths, 100, dtype, peer.K * (n // 100)):.6f}")
    else:
        peer = TorchLiftedCNN(100, dtype)
        hidden = peer.hidden_state(n)
        peer.epoch(X[:m], Y[:m], [h[:m] for h in hidden], np.arange(m))
        start = time.perf_counter()
        peer.epoch(X, Y, hidden, np.arange(n))
        print(f"{time.perf_counter() - start:.6f}")


if __name__ == "__main__":
    _main(sys.argv[1])
