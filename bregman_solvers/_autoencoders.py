"""The sparse and denoising autoencoders of the paper's Section 6 (eq. 26-27), as scikit-learn
transformers (fit, transform = the code, inverse_transform, predict = reconstruction, score); exported by
:mod:`bregman_solvers.estimators`."""
import copy
import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._estimator_solvers import (_check_common, _fit_network, _initial_network, _resolve_dtype, _resumed_network,
                                 _seed)
from .activations import get_activation
from .distributed import DEFAULT_MIN_SHARD_BATCHES
from .network import LiftedNetwork
from .operators import Dense, Operator
from .regularisers import CodeL1

__all__ = ["SparseAutoencoder", "DenoisingAutoencoder"]


class SparseAutoencoder(TransformerMixin, BaseEstimator):
    """A sparse autoencoder trained with the lifted Bregman framework (eq. 26).

    Encoder ``hidden_layer_sizes[:code_layer]``, code layer with a soft-threshold
    activation (and l1 on its auxiliary variable), decoder, identity output; the
    target is the input itself.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (784, 784, 784)
    code_layer : int, default 2
        Which hidden layer (1-based) is the code.
    activation : str, default "relu"
        Activation of the other hidden layers.
    code_threshold : float or None, default 0.1
        ``alpha`` of the code's soft-threshold activation (None: the code layer takes
        ``activation`` like the others, an undercomplete autoencoder's code).
    code_alpha : float, default 0.05
        Weight of the l1 norm on the code (0: none).
    layers : list of Operator, optional
        The network's layers in place of dense ones of ``hidden_layer_sizes`` (copied), e.g. a
        convolutional encoder and a dense decoder (:doc:`/layers`): the first reads the
        features, the last writes them; the hidden layers take ``activation``, the output the
        identity, and layer ``code_layer`` holds the code.
    solver, batch_size, inner_iterations, epochs, tau, tau_theta, tau_x, learning_rate,
    regulariser, track_metrics, dtype, n_threads, random_state, warm_start, verbose, n_workers,
    scheduler, sync_every, aux_start, momentum, min_shard_batches
        As in :class:`~bregman_solvers.estimators.LiftedBregmanClassifier`.

    Attributes
    ----------
    network_ : LiftedNetwork
    history_ : dict
    n_features_in_ : int
    """

    def __init__(self, hidden_layer_sizes=(784, 784, 784), code_layer=2, activation="relu", code_threshold=0.1,
                 code_alpha=0.05, layers=None, solver="isgd", batch_size=100, inner_iterations=30, epochs=10, tau=1.0,
                 tau_theta="auto", tau_x=0.1, learning_rate=0.05, regulariser=None, track_metrics=False,
                 dtype=None, n_threads=None, random_state=None, warm_start=False, verbose=False, n_workers=None,
                 scheduler=None, sync_every=None, aux_start="stored", momentum=0.0,
                 min_shard_batches=DEFAULT_MIN_SHARD_BATCHES):
        self.min_shard_batches = min_shard_batches
        self.aux_start = aux_start
        self.momentum = momentum
        self.n_workers = n_workers
        self.scheduler = scheduler
        self.sync_every = sync_every
        self.hidden_layer_sizes = hidden_layer_sizes
        self.layers = layers
        self.track_metrics = track_metrics
        self.code_layer = code_layer
        self.activation = activation
        self.code_threshold = code_threshold
        self.code_alpha = code_alpha
        self.solver = solver
        self.batch_size = batch_size
        self.inner_iterations = inner_iterations
        self.epochs = epochs
        self.tau = tau
        self.tau_theta = tau_theta
        self.tau_x = tau_x
        self.learning_rate = learning_rate
        self.regulariser = regulariser
        self.dtype = dtype
        self.n_threads = n_threads
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    def _build(self, n_features, dtype):
        layers = self._operators(n_features)
        n_hidden = len(layers) - 1 if layers is not None else len(self.hidden_layer_sizes)
        if not 1 <= self.code_layer <= n_hidden:
            raise ValueError(f"code_layer must lie in 1..{n_hidden}, got {self.code_layer}")
        acts = [self.activation] * n_hidden + ["identity"]
        if self.code_threshold is not None:
            acts[self.code_layer - 1] = get_activation("soft_threshold", alpha=self.code_threshold)
        shape = layers if layers is not None else [n_features, *self.hidden_layer_sizes, n_features]
        return LiftedNetwork(shape, acts, dtype=dtype, random_state=_seed(self.random_state),
                             n_threads=self.n_threads)

    def _operators(self, n_features):
        """Copies of ``layers`` (None without), checked: the first reads and the last writes ``n_features``."""
        if self.layers is None:
            return None
        layers = list(self.layers) if isinstance(self.layers, (list, tuple)) else None
        if not layers or not all(isinstance(op, Operator) for op in layers):
            raise TypeError(f"layers must be None or a list of Operator, got {self.layers!r}")
        if layers[0].in_size != n_features or layers[-1].out_size != n_features:
            raise ValueError(f"layers: the first layer reads {layers[0].in_size} features and the last writes "
                             f"{layers[-1].out_size}; an autoencoder of X's {n_features} features needs both "
                             f"{n_features}")
        return [copy.deepcopy(op) for op in layers]

    def _inputs(self, X, rng):
        return X

    def fit(self, X, y=None, validation_data=None, callback=None, resume=None, init=None):
        """Train on ``X``; the target is ``X`` (the clean ``X`` for the denoising autoencoder).

        ``validation_data``: clean samples ``X_val`` evaluated every epoch (the denoising
        autoencoder feeds them with noise of its own seed): ``history_["val_mse"]``,
        ``history_["val_code_sparsity"]``. ``callback``, ``resume`` and ``init`` (a
        :class:`~bregman_solvers.LiftedNetwork` to start from, copied: e.g. an ``MLPRegressor``
        autoencoder imported by :func:`bregman_solvers.interop.from_sklearn`; it maps the
        features to themselves with an identity output): as in
        :meth:`~bregman_solvers.estimators.LiftedBregmanClassifier.fit` (``resume`` needs a stochastic ``solver``).
        """
        dtype = _check_common(self)
        first = not hasattr(self, "network_") or not self.warm_start
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=first)
        dtype = _resolve_dtype(self, dtype, X, first)
        if first:
            if init is not None:
                self.network_ = _initial_network(init, X.shape[1], X.shape[1], "identity", resume, classifier=False)
            else:
                self.network_ = (self._build(X.shape[1], dtype) if resume is None
                                 else _resumed_network(self, resume, X.shape[1]))
            self.history_ = {}
        dtype = self.network_.dtype                    # (a resumed network keeps its own)
        X = X.astype(dtype, copy=False)
        seed = _seed(self.random_state)
        noisy = self._inputs(X, np.random.default_rng(seed))
        validation = None
        if validation_data is not None:
            X_val = validate_data(self, validation_data, dtype=[np.float64, np.float32], reset=False)
            X_val = X_val.astype(dtype, copy=False)
            # the validation noise is another stream than the training noise's (seed + 1)
            validation = (self._inputs(X_val, np.random.default_rng(None if seed is None else seed + 1)), X_val)
        code = CodeL1(self.code_layer, self.code_alpha) if self.code_alpha else None
        history = _fit_network(self, self.network_, noisy, X, code_regulariser=code, validation_data=validation,
                               code_layer=self.code_layer, callback=callback, resume=resume)
        for key, values in history.items():
            self.history_.setdefault(key, []).extend(values)
        return self

    def _forward(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self.network_.forward(X.astype(self.network_.dtype, copy=False), return_hidden=True)

    def transform(self, X):
        """The code (activations of the code layer), shape (n_samples, code width)."""
        _, (_, xs) = self._forward(X)
        return xs[self.code_layer - 1]

    def inverse_transform(self, X):
        """Decode codes back to the input space."""
        check_is_fitted(self)
        net = self.network_
        x = np.asarray(X, dtype=net.dtype)
        if x.ndim != 2 or x.shape[1] != net.widths[self.code_layer]:
            raise ValueError(f"codes must have shape (n_samples, {net.widths[self.code_layer]}), got {x.shape}")
        decoder = net.layers[self.code_layer:]
        if not all(type(op) is Dense for op in decoder):
            raise ValueError("inverse_transform needs a decoder of dense layers (layers= gave "
                             f"{[type(op).__name__ for op in decoder]})")
        for l in range(self.code_layer, net.n_layers):
            x = net.activations[l](x @ net.weights[l].T + net.biases[l])
        return x

    def predict(self, X):
        """The reconstruction of ``X``."""
        out, _ = self._forward(X)
        return out

    def score(self, X, y=None):
        """Negative mean squared reconstruction error (higher is better)."""
        X_checked = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return -float(np.mean((self.predict(X_checked) - X_checked) ** 2))


class DenoisingAutoencoder(SparseAutoencoder):
    """A sparse denoising autoencoder (eq. 27): trained to map noisy inputs to clean ones.

    Gaussian noise of standard deviation ``noise_std`` is added to the training
    inputs (seeded by ``random_state``); the target is the clean input. Other
    parameters as :class:`SparseAutoencoder`.
    """

    def __init__(self, hidden_layer_sizes=(784, 784, 784), code_layer=2, activation="relu", code_threshold=0.1,
                 code_alpha=0.05, noise_std=0.1, layers=None, solver="isgd", batch_size=100, inner_iterations=30, epochs=10,
                 tau=1.0, tau_theta="auto", tau_x=0.1, learning_rate=0.05, regulariser=None, track_metrics=False,
                 dtype=None, n_threads=None, random_state=None, warm_start=False, verbose=False, n_workers=None,
                 scheduler=None, sync_every=None, aux_start="stored", momentum=0.0,
                 min_shard_batches=DEFAULT_MIN_SHARD_BATCHES):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, code_layer=code_layer, activation=activation,
                         code_threshold=code_threshold, code_alpha=code_alpha, layers=layers, solver=solver,
                         batch_size=batch_size,
                         inner_iterations=inner_iterations, epochs=epochs, tau=tau, tau_theta=tau_theta,
                         tau_x=tau_x, learning_rate=learning_rate, regulariser=regulariser,
                         track_metrics=track_metrics, dtype=dtype,
                         n_threads=n_threads, random_state=random_state, warm_start=warm_start, verbose=verbose,
                         n_workers=n_workers, scheduler=scheduler, sync_every=sync_every, aux_start=aux_start,
                         momentum=momentum, min_shard_batches=min_shard_batches)
        self.noise_std = noise_std

    def _inputs(self, X, rng):
        if not (isinstance(self.noise_std, numbers.Real) and self.noise_std >= 0):
            raise ValueError(f"noise_std must be a number >= 0, got {self.noise_std!r}")
        return (X + rng.normal(0.0, self.noise_std, size=X.shape)).astype(X.dtype)
