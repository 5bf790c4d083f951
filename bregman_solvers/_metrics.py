"""The diagnostics of a lifted network: the energy's gradients (for checks and custom solvers; the
solvers take theirs inside the step engine), the consistency of a lifted state and the
linear-activation rates of Table 2 (Section 6), and the memory a fit needs. A mixin of :class:`~bregman_solvers.LiftedNetwork`."""
import os

import numpy as np

from ._threads import owns_threads
from ._validation import check_integer

__all__ = ["NetworkMetrics", "MemoryEstimate", "available_memory"]


def available_memory():
    """Bytes of memory available to this process (``MemAvailable`` of /proc/meminfo; elsewhere the
    free physical pages), or None where neither can be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _size(n_bytes):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.2f} {unit}"
    return f"{n_bytes:.0f} B"


class MemoryEstimate:
    """What a fit of a lifted network holds in memory, in bytes (:meth:`NetworkMetrics.memory_estimate`).

    Attributes
    ----------
    auxiliary : int
        The auxiliary variables of every training sample (``n_samples`` times the hidden
        layers' entries): what grows with the data, and what memory maps can keep on disk.
    parameters : int
        The parameters and the copies a stochastic fit keeps (anchor, momentum, gradients).
    batch : int
        The buffers of one batch: pre-activations, residuals, x-step arguments, and the largest
        temporary of a product (a convolution's patch matrix).
    total : int
    """

    def __init__(self, auxiliary, parameters, batch, n_samples, entries, dtype):
        self.auxiliary, self.parameters, self.batch = int(auxiliary), int(parameters), int(batch)
        self.total = self.auxiliary + self.parameters + self.batch
        self.n_samples, self.entries, self.dtype = n_samples, entries, dtype

    def __repr__(self):
        return (f"auxiliary variables {_size(self.auxiliary)} ({self.n_samples:,} samples x {self.entries:,} entries, "
                f"{self.dtype}), parameters {_size(self.parameters)}, batch buffers {_size(self.batch)}: "
                f"{_size(self.total)} in all")


class NetworkMetrics:
    """Gradients and metrics computed by the network's layers (see :class:`~bregman_solvers.LiftedNetwork`)."""

    @owns_threads
    def gradients(self, X0, target, state):
        """Gradients of the mean energy (MATH.md), no derivative of an activation involved.

        ``grad_W_l = (lambda_l / N) R_l^T X_{l-1}``, ``grad_b_l = (lambda_l / N) sum_i r_l^i``
        and ``grad_X_l = (1 / N) [lambda_l (X_l - Z_l) + lambda_{l+1} R_{l+1} W_{l+1}]`` for dense
        layers; for any operator ``grad_W_l = (lambda_l / N) (dA_l/dW_l)^T R_l`` and ``grad_X_j``
        receives ``lambda_l A_{l,j}^T R_l`` from every layer l that reads it (MATH.md, "Beyond
        dense layers"), with
        residuals ``R_l = sigma_l(Z_l) - X_l`` (Bregman). For the classical penalty
        ``R_l = Z_l - X_l``; for MAC-QP ``R_l = sigma'(Z_l)(sigma(Z_l) - X_l)`` and the own
        term is ``lambda_l (X_l - sigma(Z_l))``. The x-gradient is that of the smooth
        part ``F`` (the non-smooth ``Psi`` is handled by the solvers' prox steps).

        Returns
        -------
        grad_weights, grad_biases, grad_hidden : lists of ndarray
        """
        X0, target = self.check_data(X0, target)
        self.check_state(state, X0.shape[0])
        n = X0.shape[0]
        ws = self.workspace(n)
        xs = self._chain(X0, target, state)
        split = self._product_split()
        grad_x = [None] * (self.n_layers - 1)
        for l in range(self.n_layers):
            if l < self.n_layers - 1:
                # v = lambda_l (X_l - Z_l), or lambda_l (X_l - sigma(Z_l)) for MAC-QP
                self._layer_pass(l, self._inputs(l, xs), xs[l + 1], ws, ws.v[l], self.lambdas[l], -self.lambdas[l])
                grad_x[l] = ws.v[l].copy()
            else:
                self._layer_pass(l, self._inputs(l, xs), xs[l + 1], ws)
        grad_w, grad_b = [], []
        for l, op in enumerate(self.layers):
            inputs = self._inputs(l, xs)
            gw = np.empty_like(self.weights[l])
            op.weight_gradient(ws.residual[l], inputs, gw, self.lambdas[l] / n, 0.0, split)
            gb = op.bias_gradient(ws.residual[l], np.empty_like(self.biases[l]), self.lambdas[l] / n)
            grad_w.append(gw)
            grad_b.append(gb)
            # the back terms lambda_l A_{l,j}^T r_l into every hidden variable the layer reads
            for j, source in enumerate(op.sources):
                h = l - source                      # hidden[h] is x_{h+1} = chain[l + 1 - source]
                if h >= 0:
                    op.adjoint(ws.residual[l], self.weights[l], j, grad_x[h], self.lambdas[l], split)
        for gx in grad_x:
            gx /= n
        return grad_w, grad_b, grad_x

    @owns_threads
    def x_lipschitz(self, splitting="phi", vectors=None):
        """Per-sample block Lipschitz bounds ``L_x_l`` of the auxiliary variables' smooth part
        (MATH.md, "Solvers"): the sum of ``lambda_m |A_{m,j}|_2^2`` over the layers ``m`` that read
        ``x_l`` (``lambda_{l+1} |W_{l+1}|_2^2`` in a dense chain), plus ``lambda_l`` in the
        ``"smooth"`` splitting. The operator norms by power iteration, raised by 5% (it approaches
        them from below).

        Parameters
        ----------
        splitting : {"phi", "smooth"}
        vectors : dict, optional
            Start vectors of the power iterations, updated in place: a caller that keeps it between
            calls (the step engine) needs 5 iterations per call instead of 30.

        Returns
        -------
        ndarray of shape (n_layers - 1,)
        """
        vectors = {} if vectors is None else vectors
        out = np.array([self.lambdas[h] if splitting == "smooth" else 0.0 for h in range(self.n_layers - 1)])
        for m, op in enumerate(self.layers):
            for j, source in enumerate(op.sources):
                h = m - source
                if h < 0:
                    continue
                key = (m, j)
                est, vectors[key] = op.norm_sq(self.weights[m], j, vectors.get(key),
                                               30 if vectors.get(key) is None else 5)
                out[h] += self.lambdas[m] * 1.05 * est
        return out

    def consistency(self, X0, state):
        """Mean ``|x_l - sigma_l(z_l)|`` per hidden layer (0 for a consistent lifted state)."""
        X0 = self.check_data(X0)
        self.check_state(state, X0.shape[0])
        out, chain = [], [X0, *state.hidden]
        for l, x in enumerate(state.hidden):
            z = np.empty_like(x)
            self._preactivation(l, self._inputs(l, chain), z)
            out.append(float(np.mean(np.abs(x - self.activations[l](z, check_finite=False)))))
        return np.array(out)

    @owns_threads
    def linear_activation_rate(self, X):
        """Per hidden layer, the fraction of (sample, unit) pairs where sigma acts as the identity.

        For relu that is ``z > 0`` (Table 2 of the paper), on a forward pass of ``X``.
        """
        chain = [self.check_data(X)]
        n = chain[0].shape[0]
        # the outputs still read by a later layer (the previous one, and skip connections' sources)
        reach = max(max(op.sources) for op in self.layers)
        rates = []
        for l, act in enumerate(self.activations[:-1]):
            # one layer at a time, activated in place: memory of the layers still read, not of the network
            z = np.empty((n, self.widths[l + 1]), self.dtype)
            self._preactivation(l, self._inputs(l, chain), z)
            rates.append(float(np.mean(act.identity_region(z))))
            act(z, out=z, n_threads=self._threads(z), check_finite=False)
            chain.append(z)
            if len(chain) > reach:
                chain[len(chain) - reach - 1] = None
        return np.array(rates)

    def score(self, X, y):
        """Classification accuracy on ``X``: the fraction of samples whose output's argmax (of
        :meth:`~bregman_solvers.LiftedNetwork.predict`, the forward pass) is their label.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_0)
        y : array-like of shape (n_samples,) with integer labels in ``0..n_L - 1``, or one-hot rows
            of shape (n_samples, n_L)

        Raises
        ------
        ValueError
            ``y`` has another length than ``X``, labels outside ``0..n_L - 1``, or 2-D rows that are
            not one-hot (a regression target: compare :meth:`predict` with it instead).
        """
        output = self.predict(X)
        y = np.asarray(y)
        n_out = output.shape[1]
        if y.ndim == 2:
            if y.shape != output.shape or not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
                raise ValueError(f"y must be labels of shape ({len(output)},) or one-hot rows of shape "
                                 f"{output.shape}; got shape {y.shape} with rows that are not one-hot (for a "
                                 f"regression target compare predict(X) with it)")
            y = y.argmax(axis=1)
        if y.ndim != 1 or len(y) != len(output):
            raise ValueError(f"y must have {len(output)} labels (one per sample of X), got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0 or y.max() >= n_out)):
            raise ValueError(f"y must hold integer labels in 0..{n_out - 1} (the network's {n_out} outputs)")
        return float(np.mean(output.argmax(axis=1) == y))

    def memory_estimate(self, n_samples, batch_size=100):
        """The memory a stochastic fit on ``n_samples`` samples holds (a :class:`MemoryEstimate`).

        The auxiliary variables dominate for convolutional layers: a layer keeps its whole
        output, ``H W C`` entries per sample (shared/MATH.md, "Memory").
        """
        n_samples = check_integer(n_samples, "n_samples", minimum=0)
        batch_size = check_integer(batch_size, "batch_size")
        item = self.dtype.itemsize
        entries = int(sum(self.widths[1:-1]))
        # theta, the batch anchor, the momentum's previous theta and the gradients
        parameters = 4 * self.parameter_vector.size * item
        # per layer z, residual, x-step argument, a gathered x and target; plus the largest
        # temporary a product makes (a patch matrix: the forward product's input)
        rows = sum(self.widths) * 5
        temporary = max(op.temporary_entries() for op in self.layers)
        batch = batch_size * (rows + 2 * temporary) * item
        return MemoryEstimate(n_samples * entries * item, parameters, batch, n_samples, entries, self.dtype.name)
