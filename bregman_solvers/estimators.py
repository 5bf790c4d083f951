"""scikit-learn estimators over the lifted solvers and the back-propagation baselines.

:class:`LiftedBregmanClassifier` (fit, predict, predict_proba, decision_function, score, partial_fit),
:class:`SparseAutoencoder` and :class:`DenoisingAutoencoder` (fit, transform = the code, inverse_transform,
predict = reconstruction, score), :class:`LiftedEnergyOutlierDetector` (fit, score_samples, decision_function,
predict, energy_terms). Hyper-parameters are constructor arguments, never rewritten by ``fit``;
the trained network is on ``network_``, the fit history on ``history_`` (solvers: ``_estimator_solvers.py``).
"""
import copy

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._autoencoders import DenoisingAutoencoder, SparseAutoencoder
from ._outliers import LiftedEnergyOutlierDetector
from ._estimator_solvers import (SOLVERS, _STOCHASTIC, _check_common, _fit_network, _flat_images,
                                 _initial_network, _resolve_dtype, _resumed_network, _seed)
from .activations import get_activation
from .architectures import ARCHITECTURES
from .distributed import DEFAULT_MIN_SHARD_BATCHES
from .network import LiftedNetwork
from .operators import Operator

__all__ = ["LiftedBregmanClassifier", "SparseAutoencoder", "DenoisingAutoencoder", "LiftedEnergyOutlierDetector",
           "SOLVERS"]

class LiftedBregmanClassifier(ClassifierMixin, BaseEstimator):
    """A feed-forward classifier trained with the lifted Bregman framework.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        The hidden widths of the dense network (``layers=None``).
    layers : None, str or list of Operator, default None
        The network: None for dense layers of ``hidden_layer_sizes``; a named architecture,
        ``"lenet5"`` or ``"resnet"`` (:mod:`bregman_solvers.architectures`, on images of
        ``image_shape``); or the operators themselves (:mod:`bregman_solvers.operators`), the
        last one with an output per class.
    image_shape : None or tuple of int, default None
        ``(H, W, C)`` (or ``(H, W)``: one channel) of image inputs given flat, NHWC order; images
        given as (n, H, W) or (n, H, W, C) arrays bring their own shape.
    activation : str, default "relu"
        Activation of the hidden layers (any of :func:`bregman_solvers.activations.available`
        except softmax).
    output : {"identity", "softmax"}, default "softmax"
        Softmax with the cross-entropy (as ``MLPClassifier``), or the identity output with the
        squared-error loss on one-hot labels (the paper's choice for its MNIST tables, which the
        command line keeps). Softmax is the default since it kept every seed of scikit-learn's
        small sets near ``MLPClassifier`` where the identity output left one digits seed at 92%
        (docs/estimators.rst, "Small tabular data").
    lambdas : float or sequence, default 1.0
        Weights of the layers' penalties.
    solver : str, default "isgd"
        ``isgd`` (implicit SGD, Algorithm 1), ``spg`` (stochastic prox-gradient),
        ``averaging`` (model averaging), ``pg`` / ``fista`` / ``bcd`` / ``admm``
        (deterministic lifted solvers, ``epochs`` iterations), or the
        back-propagation baselines ``sgd-bp``, ``isgd-bp``, ``gd-bp``.
    batch_size, inner_iterations : int
    epochs : int or "auto", default "auto"
        ``"auto"``: 10 epochs, or more where the data are small, so that a stochastic solver
        takes at least 600 batch steps (``max(10, ceil(600 / batches per epoch))``: 43 epochs on
        the 1,347 training samples of scikit-learn's digits, 120 on 426 of breast cancer; 10 from
        6,000 samples on at batch size 100);
        10 iterations for a deterministic solver. Measured over ten seeds on the three small sets
        (docs/estimators.rst): 10 epochs left 50 steps on breast cancer and 20 on wine, and the
        test accuracy varied with the seed.
    tau, tau_theta, tau_x : float, schedule or "auto", default "auto"
        Steps of the lifted stochastic solvers (see :class:`~bregman_solvers.ImplicitSGD`);
        ``tau_theta="auto"`` caps 0.5 by the layers' Lipschitz bounds, so that unscaled data do
        not diverge; ``tau="auto"`` is 10 (100 for a convolutional network in the input metric)
        and ``tau_x="auto"`` 0.5 (0.1 for a network with convolutions, pooling or residual
        blocks). ``solver="isgd-bp"`` takes ``tau="auto"`` as 10.
    learning_rate : float
        Step of the back-propagation baselines.
    alpha : float >= 0, default 0.08
        Weight decay: ``SquaredL2(alpha / n_samples)``, i.e. ``alpha / 2 |W|_F^2`` added to the
        loss summed over the ``n_samples`` training samples of the fit call (of the chunk, for
        ``partial_fit``), on every layer's weights, not the biases; used when ``regulariser`` is
        None (0: none). It runs inside the compiled steps (its prox is a factor on the weights'
        scale, :doc:`/performance`). The default was measured over ten seeds on scikit-learn's
        small sets (docs/estimators.rst, "Small tabular data"), where it took breast cancer's and
        wine's means to ``MLPClassifier``'s; on large data it is negligible (0.08 / 60,000 on
        MNIST).
    regulariser : regulariser or None
        On the weights (:mod:`bregman_solvers.regularisers`), in place of ``alpha``'s weight decay.
    penalty : {"bregman", "classical"}, default "bregman"
        The lifted penalty of the lifted solvers: the Bregman loss (eq. 13) or the
        classical lifted network's ``0.5 |x - z|^2`` (eq. 7).
    track_metrics : bool, default False
        Record the training metrics every epoch in ``history_`` (the training loss and
        accuracy, the lifted energy, the linear-activation rates: one forward pass over
        the training data per epoch).
    dtype : {None, "float32", "float64"}, default None
        The computation dtype; None: float32 for float32 data, float64 otherwise.
    n_threads : int or None
        The most threads a fit uses, BLAS included (None: the usable cores that no
        other fit of this process holds). The results do not depend on it.
    random_state : int, RandomState, Generator or None
    warm_start : bool, default False
        Continue from the previous fit's network.
    verbose : bool
    n_workers : int or None
        Train data-parallel on Dask with this many shards (solvers ``isgd`` and
        ``averaging``): :class:`~bregman_solvers.DistributedImplicitSGD` on a new local
        cluster of ``n_workers`` processes, or on the cluster of ``scheduler``.
    scheduler : str or None
        Address of a running Dask scheduler (e.g. ``"tcp://host:8786"``): train on its
        workers (one shard each unless ``n_workers``).
    sync_every : int, "epoch" or None, default None
        Batches per shard between two averagings of the data-parallel fit. None: 20 batches
        for solver ``isgd``, once per epoch for ``averaging`` (eq. 23); see
        :class:`~bregman_solvers.DistributedImplicitSGD`.
    min_shard_batches : int or None, default 50
        The fewest batches a shard of the data-parallel fit holds: smaller data are not split
        evenly but given whole (or in overlapping windows) to every shard, which keeps the
        accuracy of one process; None: always the even split. See
        :class:`~bregman_solvers.DistributedImplicitSGD` and :doc:`/scaling`, "Small data".
    aux_start : {"forward", "stored"}, default "forward"
        Where a batch's auxiliary variables start implicit SGD's K steps (solver ``isgd``,
        and the Dask back end): see :class:`~bregman_solvers.ImplicitSGD`. (The
        autoencoders default to ``"stored"``: docs/results.rst.)
    momentum : float, default 0.7
        The inertial step between implicit SGD's batches (solver ``isgd``, and the Dask back
        end with it): see :class:`~bregman_solvers.ImplicitSGD`. (The autoencoders default
        to 0: docs/results.rst.)
    theta_metric : {"auto", "euclidean", "input"}, default "auto"
        The metric of implicit SGD's parameter step (solver ``isgd``): ``"input"`` takes a
        Gauss-Newton step per layer in the metric of its input (for convolutional networks,
        whose Euclidean steps are small; ``alpha``'s weight decay enters the same step);
        ``"auto"`` takes it for a network with a convolution that allows it (``"lenet5"``) and
        the Euclidean step otherwise: see :class:`~bregman_solvers.ImplicitSGD` and :doc:`/layers`.
    penalty_growth : float >= 0, schedule or "auto", default "auto"
        The penalty continuation of the lifted stochastic solvers (``isgd``, ``spg``,
        ``averaging``, and the Dask back end): in epoch ``e`` the hidden layers' penalty weights
        are ``lambdas (1 + penalty_growth * e)``; ``"auto"`` raises them 1, 2, 3, 4 and holds them
        there for a convolutional or residual network and keeps them for a dense one; see
        :class:`~bregman_solvers.ImplicitSGD`. The back-propagation solvers have no penalties and
        ignore it. Each ``partial_fit`` call runs the epoch after those done, so the weights grow
        call by call.

    Attributes
    ----------
    classes_ : ndarray
    network_ : LiftedNetwork
    history_ : dict
    n_features_in_ : int
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", output="softmax", lambdas=1.0,
                 layers=None, image_shape=None, solver="isgd", batch_size=100, inner_iterations=10, epochs="auto", tau="auto",
                 tau_theta="auto",
                 tau_x="auto", learning_rate=0.1, alpha=0.08, regulariser=None, penalty="bregman", track_metrics=False,
                 dtype=None, n_threads=None, random_state=None, warm_start=False, verbose=False, n_workers=None,
                 scheduler=None, sync_every=None, aux_start="forward", momentum=0.7,
                 min_shard_batches=DEFAULT_MIN_SHARD_BATCHES, theta_metric="auto", penalty_growth="auto"):
        self.theta_metric = theta_metric
        self.penalty_growth = penalty_growth
        self.alpha = alpha
        self.aux_start = aux_start
        self.momentum = momentum
        self.n_workers = n_workers
        self.scheduler = scheduler
        self.sync_every = sync_every
        self.min_shard_batches = min_shard_batches
        self.hidden_layer_sizes = hidden_layer_sizes
        self.layers = layers
        self.image_shape = image_shape
        self.activation = activation
        self.output = output
        self.penalty = penalty
        self.track_metrics = track_metrics
        self.lambdas = lambdas
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

    def _build(self, n_features, n_classes, dtype):
        if self.output not in ("identity", "softmax"):
            raise ValueError(f"output must be 'identity' or 'softmax', got {self.output!r}")
        if get_activation(self.activation).name == "softmax":
            raise ValueError("activation of the hidden layers cannot be softmax")
        common = dict(lambdas=self.lambdas, dtype=dtype, random_state=_seed(self.random_state), n_threads=self.n_threads,
                      penalty=self.penalty)
        if isinstance(self.layers, str):
            if self.layers not in ARCHITECTURES:
                raise ValueError(f"layers must be None, one of {ARCHITECTURES} or a list of operators, "
                                 f"got {self.layers!r}")
            image = self.image_shape_ if self.layers != "mlp" else n_features
            if image is None:
                raise ValueError(f"layers={self.layers!r} needs images: give image_shape=(height, width, channels) "
                                 f"or X as an (n, height, width[, channels]) array")
            if int(np.prod(image)) != n_features:
                raise ValueError(f"image_shape {image} holds {int(np.prod(image))} entries, X has {n_features} "
                                 f"features")
            options = {} if self.layers != "mlp" else {"hidden": self._hidden()}
            return LiftedNetwork.from_architecture(self.layers, image, n_classes, self.output, self.activation,
                                                   **options, **common)
        if self.layers is not None:
            layers = list(self.layers) if isinstance(self.layers, (list, tuple)) else None
            if not layers or not all(isinstance(op, Operator) for op in layers):
                raise TypeError(f"layers must be None, a name or a list of Operator, got {self.layers!r}")
            if layers[0].in_size != n_features or layers[-1].out_size != n_classes:
                raise ValueError(f"layers: the first layer reads {layers[0].in_size} features and the last writes "
                                 f"{layers[-1].out_size} outputs; X has {n_features} features and y {n_classes} classes")
            layers = [copy.deepcopy(op) for op in layers]
            return LiftedNetwork(layers, [self.activation] * (len(layers) - 1) + [self.output], **common)
        hidden = self._hidden()
        return LiftedNetwork([n_features, *hidden, n_classes], [self.activation] * len(hidden) + [self.output],
                             **common)

    def _hidden(self):
        return list(self.hidden_layer_sizes) if np.ndim(self.hidden_layer_sizes) else [self.hidden_layer_sizes]

    def _flat(self, X, first):
        return _flat_images(self, X, first)

    def _targets(self, y, dtype):
        """One-hot rows of the network's output width for labels ``y`` (all seen before)."""
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y contains labels not seen before: {unseen}")
        return np.eye(self.network_.widths[-1], dtype=dtype)[self._encoder.transform(y)]

    def _fit(self, X, y, partial, classes=None, validation_data=None, callback=None, resume=None, init=None):
        dtype = _check_common(self)
        first = not hasattr(self, "network_") or not (self.warm_start or partial)
        X = self._flat(X, first)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], reset=first)
        dtype = _resolve_dtype(self, dtype, X, first)
        check_classification_targets(y)
        if first:
            if partial and classes is not None:
                self._encoder = LabelEncoder().fit(classes)
            else:
                self._encoder = LabelEncoder().fit(y)
            self.classes_ = self._encoder.classes_
            if len(self.classes_) < 2 and not partial:
                raise ValueError(f"the classifier needs samples of at least 2 classes; got 1 class: {self.classes_}")
            n_outputs = max(len(self.classes_), 2)
            if init is not None:
                self.network_ = _initial_network(init, X.shape[1], n_outputs, self.output, resume)
            else:
                self.network_ = (self._build(X.shape[1], n_outputs, dtype) if resume is None
                                 else _resumed_network(self, resume, X.shape[1]))
            self.history_ = {}
        dtype = self.network_.dtype                    # (a resumed network keeps its own)
        target = self._targets(y, dtype)
        validation = None
        if validation_data is not None:
            try:
                X_val, y_val = validation_data
            except (TypeError, ValueError):
                raise ValueError("validation_data must be a pair (X, y)") from None
            X_val = validate_data(self, self._flat(X_val, False), dtype=[np.float64, np.float32], reset=False)
            validation = (X_val.astype(dtype, copy=False), self._targets(np.asarray(y_val), dtype))
        history = _fit_network(self, self.network_, X.astype(self.network_.dtype, copy=False), target,
                               partial=partial, validation_data=validation, callback=callback, resume=resume)
        for key, values in history.items():
            self.history_.setdefault(key, []).extend(values)
        return self

    def fit(self, X, y, validation_data=None, callback=None, resume=None, init=None):
        """Train on ``X`` (n_samples, n_features) and class labels ``y``.

        ``validation_data``: ``(X_val, y_val)``, evaluated every epoch (``history_["val_loss"]``,
        ``history_["val_accuracy"]``). ``callback(result)``: called after every epoch with the
        solver's :class:`~bregman_solvers.FitResult` so far (return True to stop), e.g. to save a
        checkpoint. ``resume``: a :class:`~bregman_solvers.Checkpoint` of an earlier fit of a
        stochastic solver on the same data: the fit continues from its epoch (``epochs`` is the
        total), with its network and auxiliary variables, as the uninterrupted fit would. ``init``: a
        :class:`~bregman_solvers.LiftedNetwork` to start from instead of a random initialisation (a
        copy is trained), e.g. one trained by back-propagation
        (:func:`bregman_solvers.interop.from_sklearn`): its input and output widths must match the
        data and the classes, its output activation ``output``.
        """
        return self._fit(X, y, partial=False, validation_data=validation_data, callback=callback, resume=resume,
                         init=init)

    def partial_fit(self, X, y, classes=None):
        """One epoch of a stochastic solver on ``(X, y)``; ``classes`` is required on the first call.

        The epoch is the one after those done (``len(history_["epoch"])``): its own batch order
        and, with a penalty continuation, its own penalty weights.

        The parameters carry over between calls; the lifted solvers start the
        auxiliary variables of the given samples from a forward pass each call
        (they belong to the samples, which may differ from call to call).
        """
        if self.solver not in _STOCHASTIC:
            raise ValueError(f"partial_fit needs a stochastic solver {_STOCHASTIC}, got {self.solver!r}")
        if not hasattr(self, "network_") and classes is None:
            raise ValueError("classes must be given on the first call to partial_fit")
        return self._fit(X, y, partial=True, classes=classes)

    def decision_function(self, X):
        """The network's outputs, shape (n_samples, n_classes) (or (n_samples,) for 2 classes)."""
        check_is_fitted(self)
        X = validate_data(self, self._flat(X, False), dtype=[np.float64, np.float32], reset=False)
        out = self.network_.predict(X.astype(self.network_.dtype, copy=False))
        if len(self.classes_) == 2:
            return (out[:, 1] - out[:, 0]).astype(np.float64)
        return out.astype(np.float64)

    def predict_proba(self, X):
        """Class probabilities: the softmax output, or the softmax of an identity output's scores."""
        check_is_fitted(self)
        X = validate_data(self, self._flat(X, False), dtype=[np.float64, np.float32], reset=False)
        out = self.network_.predict(X.astype(self.network_.dtype, copy=False)).astype(np.float64)
        if self.output == "softmax":
            return out
        out -= out.max(axis=1, keepdims=True)
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out

    def predict(self, X):
        """Predicted class labels."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba[:, :len(self.classes_)], axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
