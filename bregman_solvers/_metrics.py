"""The diagnostics of a lifted network: the energy's gradients (for checks and custom solvers; the
solvers take theirs inside the step engine), the consistency of a lifted state and the
linear-activation rates of Table 2 (Section 6). A mixin of :class:`~bregman_solvers.LiftedNetwork`."""
import numpy as np

from ._threads import owns_threads

__all__ = ["NetworkMetrics"]


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
