"""The lifted network: parameters, forward pass, lifted state, energy and gradients.

A feed-forward network with L layers, ``z_l = A_l(x_{l-1}; W_l) + b_l`` (dense: ``W_l x_{l-1} + b_l``,
samples as rows ``Z_l = X_{l-1} W_l^T + b_l``), ``x_l = sigma_l(z_l)``. Lifting keeps an auxiliary
variable ``X_l`` per hidden layer and replaces the constraints by penalties; with the Bregman loss
(eq. 13, and eq. 25 for mini-batches) the energy is

    E(theta, X) = (1/N) sum_i sum_l lambda_l B_l(x_l^i, z_l^i),

``x_0`` the input and ``x_L`` the target. The mean over samples is MATH.md's scaling convention:
the theta gradient is independent of N, and the x-step uses each sample's own gradient.

The hot paths run on the fused layer kernels (:mod:`bregman_solvers._kernels._lifted`):
one BLAS GEMM per product and one OpenMP pass per layer, into a workspace allocated
once per batch size.
"""
import os

import numpy as np

from ._kernels import _lifted
from ._kernels._openmp import max_threads
from ._runtime import SETTINGS
from ._threads import current_threads, owns_threads
from ._metrics import NetworkMetrics
from ._state import EnergyTerms, LiftedState, _Workspace
from ._validation import check_input, check_lambdas, check_n_threads, check_widths
from .activations import get_activations
from .operators import Operator, check_layers, dense_layers

__all__ = ["LiftedNetwork", "LiftedState", "EnergyTerms", "PENALTIES"]

#: Penalties of the lifted formulations: the Bregman loss (eq. 13), the classical
#: lifted network (eq. 7, ``0.5 |x - z|^2`` with x in the domain of Psi) and MAC-QP
#: (eq. 6, ``0.5 |x - sigma(z)|^2``, which needs sigma').
PENALTIES = tuple(_lifted.PENALTY_CODES)

#: Samples per chunk of :meth:`LiftedNetwork.init_state` for memory maps and non-dense networks.
INIT_CHUNK = 2000


class LiftedNetwork(NetworkMetrics):
    """A feed-forward network with its lifted Bregman energy (eq. 13 / 25).

    Parameters
    ----------
    layers : sequence of Operator, or sequence of int
        The layers' linear operators (:mod:`bregman_solvers.operators`), ``z_l = A_l(x; W_l) + b_l``;
        or the dense shorthand ``[n_0, n_1, ..., n_L]`` (input width, hidden widths, output
        width), a :class:`~bregman_solvers.operators.Dense` layer between each pair.
    activations : str, Activation or sequence of them
        One per layer (L of them), or one for every layer. The last layer may be
        ``identity`` (MSE loss of the paper) or ``softmax`` (cross-entropy).
    lambdas : float or sequence of float, default 1.0
        Positive weights ``lambda_l`` of the layers' penalties.
    dtype : {numpy.float64, numpy.float32}
        Dtype of parameters, auxiliary variables and all computation.
    random_state : int, numpy.random.Generator or None
        Seed of the Glorot-uniform initialisation of the weights (biases start at 0).
    penalty : {"bregman", "classical", "mac_qp"}, default "bregman"
        The lifted formulation: the Bregman loss (eq. 13), the classical lifted
        network (eq. 7) or MAC-QP (eq. 6). The baselines share all machinery.
    n_threads : int or None
        The most threads the network's computations use, BLAS included (None: the
        cores no other fit of this process holds; see :mod:`bregman_solvers._threads`).
        A solver's own ``n_threads``, when given, overrides it during the solver's fit.

    Attributes
    ----------
    layers : list of Operator
        ``layers[l - 1]`` is ``A_l``.
    widths : list of int
        ``[n_0, ..., n_L]``: the number of entries of the input and of each layer's output per
        sample (the auxiliary variables are stored flat, ``(n_samples, n_l)``).
    weights : list of ndarray
        ``weights[l - 1]`` is ``W_l``, of shape ``layers[l - 1].weight_shape`` ((n_l, n_{l-1}) for a
        dense layer).
    biases : list of ndarray
        ``biases[l - 1]`` is ``b_l``, of shape ``layers[l - 1].bias_shape``.
    parameter_vector : ndarray
        All parameters in one flat array; ``weights`` and ``biases`` are views into it.
    """

    def __init__(self, layers, activations, lambdas=1.0, dtype=np.float64, random_state=None,
                 penalty="bregman", n_threads=None):
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__len__"):
            raise TypeError(f"layers must be a sequence of Operator or of int widths, got {type(layers).__name__}")
        if len(layers) and all(isinstance(op, Operator) for op in layers):
            self.layers = check_layers(layers)
            self.widths = [self.layers[0].in_size, *(op.out_size for op in self.layers)]
        else:
            self.widths = check_widths(layers)
            self.layers = dense_layers(self.widths)
        self.n_layers = len(self.layers)
        # the compiled K steps take chains of dense layers; anything else runs through the operators
        self.compiled = all(op.compiled and op.sources == (1,) for op in self.layers)
        self.activations = get_activations(activations, self.n_layers)
        self.lambdas = check_lambdas(lambdas, self.n_layers)
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        self.dtype = dtype
        if penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
        self.penalty = penalty
        self._penalty_code = _lifted.PENALTY_CODES[penalty]
        check_n_threads(n_threads)       # validated now, resolved per pass by its size
        self.n_threads = n_threads
        rng = np.random.default_rng(random_state)
        self._allocate_parameters()
        self._thread_counts = {}
        for op, w in zip(self.layers, self._weights):
            op.init_weights(rng, w)
        self._workspaces = {}

    # ------------------------------------------------------------- parameters
    # All parameters live in ONE flat vector, layer after layer (W_l row-major, then
    # b_l); ``weights`` and ``biases`` are views into it. Whole-parameter passes of
    # the solvers (the proximity pull of eq. 24, the anchor copy, the finiteness
    # check) are then one parallel pass each instead of one per array.
    def _allocate_parameters(self):
        sizes = [op.n_weights + op.n_biases for op in self.layers]
        self._bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        self._theta = np.zeros(int(self._bounds[-1]), dtype=self.dtype)
        self._weights, self._biases = self.unflatten(self._theta)

    def unflatten(self, theta):
        """Views ``(weights, biases)`` into a flat vector laid out like :attr:`parameter_vector`."""
        weights, biases = [], []
        for l, op in enumerate(self.layers):
            start = self._bounds[l]
            weights.append(theta[start:start + op.n_weights].reshape(op.weight_shape))
            biases.append(theta[start + op.n_weights:self._bounds[l + 1]].reshape(op.bias_shape))
        return weights, biases

    @property
    def parameter_vector(self):
        """All parameters as one flat array (a view: writing to it changes the network).

        Layer after layer, ``W_l`` (row-major) then ``b_l``; :meth:`unflatten` maps a
        vector of this layout back to per-layer views.
        """
        return self._theta

    @property
    def layer_bounds(self):
        """Offsets of the layers in :attr:`parameter_vector` (``n_layers + 1`` of them)."""
        return self._bounds

    @property
    def weights(self):
        """``weights[l - 1]`` is ``W_l`` of shape (n_l, n_{l-1}): views, writable in place.

        To replace the parameters use :meth:`set_parameters` (or write into these
        arrays): the list itself cannot be reassigned, so it always views the
        network's parameter vector.
        """
        return self._weights

    @property
    def biases(self):
        """``biases[l - 1]`` is ``b_l`` of shape (n_l,): views, writable in place."""
        return self._biases

    def __getstate__(self):
        # views do not survive pickling: keep the flat vector and rebuild them
        state = self.__dict__.copy()
        del state["_weights"], state["_biases"], state["_thread_counts"]
        state["_workspaces"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._thread_counts = {}
        self._weights, self._biases = self.unflatten(self._theta)

    @classmethod
    def from_architecture(cls, name, in_shape, n_outputs, output_activation="identity", hidden_activation="relu",
                          **kwargs):
        """A network of a named architecture, ``"mlp"``, ``"lenet5"`` or ``"resnet"``
        (:func:`~bregman_solvers.architectures.architecture`: its ``OPTIONS`` go there),
        ``hidden_activation`` on hidden layers; the other ``kwargs`` go to the constructor."""
        from .architectures import OPTIONS, architecture

        options = {k: kwargs.pop(k) for k in set().union(*OPTIONS.values()) if k in kwargs}
        layers = architecture(name, in_shape, n_outputs, **options)
        return cls(layers, [hidden_activation] * (len(layers) - 1) + [output_activation], **kwargs)

    # ------------------------------------------------------------------ basics
    def __repr__(self):
        acts = ", ".join(a.name for a in self.activations)
        layers = self.widths if self.compiled else self.layers
        return (f"LiftedNetwork({layers}, activations=[{acts}], lambdas={self.lambdas}, "
                f"dtype={self.dtype.name}, penalty={self.penalty!r})")

    def get_parameters(self):
        """Copies of ``(weights, biases)``."""
        return [w.copy() for w in self.weights], [b.copy() for b in self.biases]

    def set_parameters(self, weights, biases):
        """Replace the parameters, copying them into the parameter vector.

        Shapes, real numeric dtypes and finiteness are checked for every array
        before anything is written, so a refused call leaves the network unchanged.
        """
        if len(weights) != self.n_layers or len(biases) != self.n_layers:
            raise ValueError(f"expected {self.n_layers} weights and biases")
        checked = []
        for l, (w, b) in enumerate(zip(weights, biases)):
            shape_w, shape_b = tuple(self.layers[l].weight_shape), tuple(self.layers[l].bias_shape)
            if np.shape(w) != shape_w or np.shape(b) != shape_b:
                raise ValueError(f"layer {l + 1}: expected W {shape_w} and b {shape_b}, "
                                 f"got {np.shape(w)} and {np.shape(b)}")
            pair = []
            for name, a in ((f"weights[{l}]", w), (f"biases[{l}]", b)):
                a = np.asarray(a)
                if a.dtype.kind not in "biuf":
                    raise TypeError(f"{name} must be real numbers, got dtype {a.dtype}")
                if not np.isfinite(a).all():
                    raise ValueError(f"{name} contains NaN or inf")
                pair.append(a)
            checked.append(pair)
        for l, (w, b) in enumerate(checked):
            self._weights[l][...] = w
            self._biases[l][...] = b

    def copy(self):
        """A deep copy of the network (parameters included)."""
        other = object.__new__(LiftedNetwork)
        # (the penalty weights too: a solver's continuation changes them in place during a fit)
        other.__setstate__({**self.__getstate__(), "_theta": self._theta.copy(), "lambdas": list(self.lambdas)})
        return other

    def _threads(self, array):
        """OpenMP threads for a pass over ``array``: ``n_threads`` at most, fewer for small passes.

        An explicit ``n_threads`` is a cap here (the kernels API honours it exactly):
        a pass too small to pay for waking threads runs on fewer (see
        ``SETTINGS.min_entries_per_thread``, :mod:`bregman_solvers._runtime`).
        """
        # memoised: the solvers ask for every pass of every iteration
        cap = current_threads()
        key = (self.n_threads if cap is None else cap, array.size, SETTINGS.min_entries_per_thread, max_threads())
        threads = self._thread_counts.get(key)
        if threads is None:
            # the size cap alone, not OpenMP's default count: a Dask worker starts with
            # OMP_NUM_THREADS=1, and an explicit n_threads must still get its threads there
            threads = max(1, min(check_n_threads(key[0]), array.size // key[2]))
            self._thread_counts[key] = threads
        return threads

    @staticmethod
    def _product_split():
        """``(blocks, threads)`` of a matrix product (``_lifted.gemm``): the process's fixed block count
        (``SETTINGS.product_blocks``, :mod:`bregman_solvers._runtime`) over the fit's threads (BLAS runs
        one thread then), or over one thread outside a fit (BLAS's own threads)."""
        return SETTINGS.product_blocks, current_threads() or 1

    def workspace(self, n_samples):
        """The reusable buffers for batches of ``n_samples`` (created on first use)."""
        ws = self._workspaces.get(n_samples)
        if ws is None:
            ws = self._workspaces[n_samples] = _Workspace(self, n_samples)
        return ws

    # --------------------------------------------------------------- checking
    def check_data(self, X0, target=None):
        """Validate an input batch (and target) against the network; return C-contiguous arrays."""
        X0, _ = check_input(X0, "X0", dtype=self.dtype)
        if X0.shape[1] != self.widths[0]:
            raise ValueError(f"X0 has {X0.shape[1]} features but the network's input width is {self.widths[0]}")
        if target is None:
            return X0
        target, _ = check_input(target, "target", dtype=self.dtype)
        if target.shape != (X0.shape[0], self.widths[-1]):
            raise ValueError(f"target must have shape ({X0.shape[0]}, {self.widths[-1]}) "
                             f"(samples of X0, output width), got {target.shape}")
        return X0, target

    def check_state(self, state, n_samples):
        if not isinstance(state, LiftedState):
            raise TypeError(f"state must be a LiftedState, got {type(state).__name__}")
        if len(state.hidden) != self.n_layers - 1:
            raise ValueError(f"state has {len(state.hidden)} hidden layers, the network {self.n_layers - 1}")
        for l, h in enumerate(state.hidden, start=1):
            if h.shape != (n_samples, self.widths[l]):
                raise ValueError(f"state.hidden[{l - 1}] must have shape ({n_samples}, {self.widths[l]}), "
                                 f"got {h.shape}")
            if h.dtype != self.dtype:
                raise TypeError(f"state.hidden[{l - 1}] has dtype {h.dtype}, the network {self.dtype}")
            if not h.flags.c_contiguous:
                raise ValueError(f"state.hidden[{l - 1}] must be C-contiguous")
        return state

    # ----------------------------------------------------------- forward pass
    def _inputs(self, l, chain):
        """The arrays layer ``l`` (from 0) reads, from ``chain = [x_0, x_1, ...]`` (its sources)."""
        return tuple(chain[l + 1 - s] for s in self.layers[l].sources)

    def bias_row(self, l):
        """The bias each output entry of layer ``l`` (from 0) receives: ``biases[l]`` itself for a
        bias per entry, else a fresh expansion (one bias per channel)."""
        op = self.layers[l]
        if op.n_biases == op.out_size:
            return self._biases[l].reshape(-1)
        row = np.empty(op.out_size, self.dtype)
        op.expand_bias(self._biases[l], row)
        return row

    def _affine(self, l, inputs, out, w_scale=1.0, cache=None):
        """out = w_scale A_l(inputs; W_l) (bias not added), layer index l from 0.

        ``inputs``: the tuple of arrays the layer reads (:meth:`_inputs`; one array: ``x_{l-1}``). ``w_scale`` is for a
        solver that keeps ``W_l / w_scale`` in the weights for a while (see :class:`~bregman_solvers.solvers._engine.
        StepEngine`): the GEMM's alpha. ``cache``: the operator's (:meth:`~bregman_solvers.operators.Operator.forward`).
        """
        if isinstance(inputs, np.ndarray):
            inputs = (inputs,)
        return self.layers[l].forward(inputs, self.weights[l], out, w_scale, self._product_split(), cache)

    def _preactivation(self, l, inputs, out):
        """out = A_l(inputs) + b_l (layer index l from 0): the operator's product, then the bias in a pass."""
        self._affine(l, inputs, out)
        _lifted.add_bias(out, self.bias_row(l), self._threads(out))
        return out

    @owns_threads
    def forward(self, X, return_hidden=False):
        """Evaluate the network: ``x_l = sigma_l(A_l(x_{l-1}) + b_l)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_0)
        return_hidden : bool
            Also return the list of pre-activations ``Z_l`` and activations ``X_l``.

        Returns
        -------
        output : ndarray of shape (n_samples, n_L)
        (pre_activations, activations) : lists, when ``return_hidden``
        """
        X = self.check_data(X)
        zs, xs = [], [X]
        for l, act in enumerate(self.activations):
            z = np.empty((X.shape[0], self.widths[l + 1]), self.dtype)
            self._preactivation(l, self._inputs(l, xs), z)
            x = np.empty_like(z)
            act(z, out=x, n_threads=self._threads(z), check_finite=False)
            zs.append(z)
            xs.append(x)
        if return_hidden:
            return xs[-1], (zs, xs[1:])
        return xs[-1]

    @owns_threads
    def predict(self, X):
        """The network's output on ``X`` (a forward pass), in chunks of at most 10,000 samples."""
        X = self.check_data(X)
        out = np.empty((X.shape[0], self.widths[-1]), self.dtype)
        for a in range(0, X.shape[0], 10000):
            out[a:a + 10000] = self.forward(X[a:a + 10000])
        return out

    @owns_threads
    def init_state(self, X0, directory=None):
        """A lifted state with the auxiliary variables of a forward pass: ``X_l = sigma_l(z_l)``.

        Each hidden layer's pre-activation is computed into the array that becomes its auxiliary
        variable and activated in place (the output layer is skipped): the peak memory is the
        auxiliary variables themselves (:meth:`memory_estimate`); networks with other than dense
        layers run :data:`INIT_CHUNK` samples at a time (a patch matrix is many times its input).
        With ``directory`` (an existing folder) the variables are memory-mapped ``.npy`` files there.
        """
        prev = self.check_data(X0)
        n = prev.shape[0]
        if directory is None:
            hidden = [np.empty((n, w), self.dtype) for w in self.widths[1:-1]]
        else:
            if not os.path.isdir(directory):
                raise ValueError(f"directory must be an existing folder, got {directory!r}")
            hidden = [np.lib.format.open_memmap(os.path.join(directory, f"x{l + 1}.npy"), "w+", self.dtype, (n, w))
                      for l, w in enumerate(self.widths[1:-1])]
        chunk = n if directory is None and self.compiled else INIT_CHUNK
        for a in range(0, n, chunk):
            self.forward_hidden(prev[a:a + chunk], [h[a:a + chunk] for h in hidden])
        return LiftedState(hidden)

    def forward_hidden(self, X0, hidden, w_scale=None):
        """The hidden layers' auxiliary variables of a forward pass, ``X_l = sigma_l(z_l)``, into ``hidden``.

        ``X0`` and the arrays of ``hidden`` must be C-contiguous, of the network's dtype and
        shapes (not checked: the solvers' per-batch path). Each pre-activation is computed in
        its array and activated in place. ``w_scale`` (per layer) as in :meth:`_affine`.
        """
        chain = [X0]
        for l, x in enumerate(hidden):
            self._affine(l, self._inputs(l, chain), x, 1.0 if w_scale is None else w_scale[l])
            _lifted.add_bias(x, self.bias_row(l), self._threads(x))
            self.activations[l](x, out=x, n_threads=self._threads(x), check_finite=False)
            chain.append(x)

    # ------------------------------------------------------------ the energy
    def _layer_pass(self, l, inputs, x_l, ws, v=None, a_x=0.0, c_z=0.0, with_loss=True, w_scale=1.0, keep_z=True,
                    prox_c=0.0, cache=None):
        """Pre-activation, residual, penalty (and x-step argument) of layer l (from 0).

        ``inputs``: the arrays the layer reads (:meth:`_inputs`; one array: ``x_{l-1}``).
        Returns the layer's energy term, or None with ``with_loss=False`` (the
        penalties are then not computed at all). ``w_scale`` as in :meth:`_affine`;
        ``keep_z=False``: ``ws.z[l]`` need not hold the pre-activation afterwards;
        ``prox_c > 0``: first ``x_l <- prox_{prox_c Psi}(v)``, the previous x-step
        (see ``_lifted.layer_pass``). ``cache`` as in :meth:`_affine`.
        """
        act = self.activations[l]
        self._affine(l, inputs, ws.z[l], w_scale, cache)
        _lifted.layer_pass(self._penalty_code, act.kind, act.param, ws.z[l], self.bias_row(l), x_l,
                           ws.residual[l], ws.loss[l] if with_loss else None, v, a_x, c_z, self._threads(ws.z[l]),
                           keep_z, prox_c, x_l if prox_c > 0 else None)
        if not with_loss:
            return None
        return float(np.mean(ws.loss[l], dtype=np.float64)) * self.lambdas[l]

    def _chain(self, X0, target, state):
        return [X0, *state.hidden, target]

    def _all_passes(self, X0, target, state, ws):
        xs = self._chain(X0, target, state)
        return np.array([self._layer_pass(l, self._inputs(l, xs), xs[l + 1], ws) for l in range(self.n_layers)])

    @owns_threads
    def energy(self, X0, target, state):
        """The lifted energy (eq. 13 / 25), mean over samples.

        Parameters
        ----------
        X0 : array-like of shape (n_samples, n_0)
        target : array-like of shape (n_samples, n_L)
            One-hot labels (classification) or the clean input (autoencoders).
        state : LiftedState

        Returns
        -------
        EnergyTerms
            ``total`` and ``per_layer`` (``lambda_l mean_i P_l(x_l^i, z_l^i)``). A term is
            ``+inf`` when an auxiliary variable lies outside its activation's domain.
        """
        X0, target = self.check_data(X0, target)
        self.check_state(state, X0.shape[0])
        return EnergyTerms(self._all_passes(X0, target, state, self.workspace(X0.shape[0])))
