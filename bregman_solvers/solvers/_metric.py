"""The parameter step in the metric of each layer's input (``theta_metric="input"``).

Layer ``l`` computes ``A_l(x; W) + b = D W^T + b`` row by row, with ``D`` its design matrix (its
input, or a convolution's patch matrix: :meth:`~bregman_solvers.operators.Operator.design`). In
the parameters ``Theta = [W b]`` the layer's term of the lifted energy has the curvature
``(lambda_l / n) [D 1]^T S [D 1]``, ``S`` the activation's slopes (1 for the identity, 0 or 1 for
relu), so ``M_l = (lambda_l / n) [D 1]^T [D 1]`` bounds it. The step

    Theta <- Theta - t (G + (Theta - Theta^k) / tau) (M_l + I / tau + delta I)^(-1)

(``G`` the energy's gradient, eq. 24's proximity term with its curvature ``I / tau``, ``delta``
a small damping) is a damped Gauss-Newton step on the layer's block: ``t = 1`` minimises the
block's quadratic model, whatever the conditioning of ``D``. A convolution's patch matrix is badly
conditioned (one direction dominates its spectrum), which makes the Euclidean step's Lipschitz
bound, and so its step, small (docs/layers.rst); in this metric every layer takes a step of the
same order. ``M_l`` is ``(d + 1) x (d + 1)`` for ``d`` weights per output channel (26 and 151 for
LeNet-5's convolutions, 401 for its first dense layer): cheap beside the layer's products for
convolutions and narrow layers, and ``O(d^3)`` per batch for a wide dense layer.

Within a batch of implicit SGD the metric is taken once, at the batch's first parameter step (the
auxiliary variables of its start), and its Cholesky factor serves the batch's K steps: a variable
metric fixed per batch. (Taken afresh at every step, on 10,000 MNIST images and LeNet-5, the test
accuracies after 3 epochs were 89.1 / 91.5 / 92.8% against 89.5 / 91.9 / 92.5% once per batch,
with the same training accuracy, 95.6%; docs/layers.rst.)

A weight decay (:class:`~bregman_solvers.regularisers.SquaredL2`, ``alpha / 2 |W|^2``) is smooth and
enters the block's model exactly: ``alpha W`` in ``G`` and ``alpha I`` in the weights' part of the
metric. Other regularisers' proxes have no closed form in this metric: they are refused.
"""
import numpy as np
import scipy.linalg

from .._kernels import _lifted
from ..operators import Dense, Operator
from ..regularisers import SquaredL2

METRICS = ("euclidean", "input")
#: What ``theta_metric`` takes: a metric, or ``"auto"`` (:func:`resolved_metric`)
METRIC_OPTIONS = ("auto", *METRICS)

#: The Tikhonov damping ``delta``, relative to the metric's mean diagonal: keeps ``M`` invertible
#: where a layer's inputs are rank deficient (dead units, constant pixels)
DAMPING = 1e-3


def check_input_metric(network, regulariser=None):
    """Raise ``ValueError`` for a regulariser other than a weight decay, or naming the first layer
    whose operator has no design matrix."""
    if regulariser is not None and type(regulariser) is not SquaredL2:
        raise ValueError(f"theta_metric='input' takes no regulariser but a weight decay (SquaredL2), got "
                         f"{regulariser!r}")
    for l, op in enumerate(network.layers):
        if type(op).design is Operator.design or len(op.bias_shape) != 1:
            raise ValueError(f"theta_metric='input' needs layers A(x; W) = D W^T with one bias per output "
                             f"channel (Dense, Conv2d, AvgPooled, Residual); layer {l + 1} is {type(op).__name__}")


def dense_only(network):
    """Whether every layer of ``network`` is a :class:`~bregman_solvers.operators.Dense` layer."""
    return all(isinstance(op, Dense) for op in network.layers)


def resolved_metric(metric, network, regulariser=None):
    """The metric of a fit's parameter step: ``metric`` itself, or for ``"auto"`` the input metric
    where the network has a layer other than :class:`~bregman_solvers.operators.Dense` (a
    convolution) and its layers and the regulariser allow it, else the Euclidean one. (A wide
    dense layer makes the input metric ``O(d^3)`` per batch; dense networks keep the compiled
    Euclidean steps.)"""
    if metric != "auto":
        return metric
    if dense_only(network):
        return "euclidean"
    try:
        check_input_metric(network, regulariser)
    except ValueError:                      # an operator without a design, an l1 regulariser, ...
        return "euclidean"
    return "input"


def checked_metric(metric, network, regulariser):
    """``metric`` if it is one of :data:`METRICS` and, for ``"input"``, the network and the
    regulariser allow it; else ``ValueError``."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if metric == "input":
        check_input_metric(network, regulariser)
    return metric


def input_gram(design, alpha, split=(1, 1)):
    """``alpha [D 1]^T [D 1]`` in float64, ``D`` of shape (rows, d): the product ``D^T D`` in
    ``D``'s own dtype (one BLAS product, split as the layers' products are), the column sums in
    float64."""
    d = design.shape[1]
    design = np.ascontiguousarray(design)
    product = np.empty((d, d), design.dtype)
    _lifted.gemm(True, False, alpha, design, design, 0.0, product, *split)
    gram = np.empty((d + 1, d + 1))
    gram[:d, :d] = product
    gram[:d, d] = gram[d, :d] = alpha * design.sum(axis=0, dtype=np.float64)
    gram[d, d] = alpha * design.shape[0]
    return gram


def metric_factor(engine, l, decay, tau_prox):
    """The Cholesky factor of layer ``l``'s metric ``M_l + decay I_W + I / tau_prox + delta I``,
    from the auxiliary variables of the batch's first parameter step: kept (in
    ``engine.metric_factors``) for the batch's K steps, until the batch runner gathers the next
    batch (``engine.new_batch``) or the proximity step changes."""
    key = (decay, tau_prox)
    kept = engine.metric_factors.get(l)
    if kept is not None and kept[0] == key:
        return kept[1]
    net = engine.net
    metric = input_gram(engine.design(l), net.lambdas[l] / engine.n, net._product_split())
    diagonal = np.diag_indices_from(metric)
    metric[diagonal[0][:-1], diagonal[1][:-1]] += decay
    if tau_prox is not None:
        metric[diagonal] += 1.0 / tau_prox
    metric[diagonal] += DAMPING * np.trace(metric) / metric.shape[0]
    try:
        factor = scipy.linalg.cho_factor(metric)
    except (ValueError, np.linalg.LinAlgError):
        # inputs that overflowed (a diverging iterate): no factor, and the step leaves NaN for
        # the batch's finiteness check to report, as a diverging Euclidean step would
        factor = None
    engine.metric_factors[l] = (key, factor)
    return factor


def _rows(op, weights, biases):
    """``[W b]`` of one layer, a row per output channel (:meth:`Operator.channel_rows`), in float64."""
    return np.concatenate([op.channel_rows(weights), biases.reshape(-1, 1)], axis=1).astype(np.float64)


def input_metric_step(engine, tau_theta, anchor=None, tau_prox=None):
    """The parameter step of every layer of ``engine``'s problem in the input metric (module
    docstring), from the residuals of its last evaluation; ``tau_theta[l]`` is ``t`` of layer ``l``;
    with ``anchor`` (a flat parameter vector, explicit weights) the proximity term ``1 / tau_prox``."""
    net = engine.net
    engine.normalise_weights()
    engine.theta_gradients()               # (lambda_l / n) (dA/dW)^T R into the workspace
    ref = None if anchor is None else net.unflatten(anchor)
    decay = engine.regulariser.alpha if engine.regulariser is not None else 0.0
    for l, op in enumerate(net.layers):
        w, b = net.weights[l], net.biases[l]
        theta = _rows(op, w, b)
        grad = _rows(op, engine.ws.grad_w[l], engine.ws.grad_b[l])
        grad[:, :-1] += decay * theta[:, :-1]
        if ref is not None:
            grad += (theta - _rows(op, ref[0][l], ref[1][l])) / tau_prox
        factor = metric_factor(engine, l, decay, tau_prox if ref is not None else None)
        if factor is None:
            theta[...] = np.nan
        else:
            theta -= tau_theta[l] * scipy.linalg.cho_solve(factor, grad.T, check_finite=False).T
        op.set_channel_rows(w, theta[:, :-1])
        b[...] = theta[:, -1].reshape(b.shape)
