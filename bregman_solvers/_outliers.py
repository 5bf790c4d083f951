"""Anomaly detection with the lifted energy (the paper's outlook, Section 7), as a scikit-learn
outlier detector; exported by :mod:`bregman_solvers.estimators`."""
import numbers

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._autoencoders import SparseAutoencoder
from ._params import Interval, Options, settings_for, validate_params
from .solvers._relax import relaxed_energy

__all__ = ["LiftedEnergyOutlierDetector", "SCORES"]

#: What a sample's score is: the lifted energy at relaxed auxiliary variables, or the forward pass's
SCORES = ("energy", "reconstruction")
#: Rows scored at once: the memory of scoring stays bounded for any number of rows
SCORE_CHUNK = 4096

class LiftedEnergyOutlierDetector(OutlierMixin, BaseEstimator):
    """Novelty detection by the lifted energy of an autoencoder trained on normal data.

    ``fit`` trains a lifted autoencoder (a :class:`~bregman_solvers.estimators.SparseAutoencoder`,
    implicit SGD by default) on normal samples. A sample's score is minus its lifted energy
    (eq. 13 with the sample itself as the output variable) at auxiliary variables relaxed for it
    with the parameters fixed: ``x_steps`` proximal-gradient steps from the forward pass
    (:func:`~bregman_solvers.solvers.relaxed_energy`). A sample that no choice of auxiliary
    variables explains cheaply is unusual, and :meth:`energy_terms` says in which layer. With
    ``scoring="reconstruction"`` (or ``x_steps=0``) the score is minus the forward pass's
    reconstruction loss, the energy at consistency, for comparison. The protocol and results
    are in :doc:`/anomaly`.

    Parameters
    ----------
    hidden_layer_sizes : sequence of int, default (128, 32, 128)
        The autoencoder's hidden widths (input and output: the features).
    code_layer : int, default 2
        The hidden layer holding the code.
    activation : str, default "relu"
    code_threshold : float or None, default None
        As in :class:`~bregman_solvers.estimators.SparseAutoencoder` (None: an undercomplete
        code with ``activation``).
    code_alpha : float, default 0.0
        Weight of the l1 norm on the code during training (the score is the network's energy alone).
    layers : list of Operator, optional
        Any architecture of the operators (:doc:`/layers`) in place of the dense layers, e.g. a
        convolutional encoder and a dense decoder; as in
        :class:`~bregman_solvers.estimators.SparseAutoencoder`. The relaxation and the scoring
        work through the operators unchanged.
    scoring : {"energy", "reconstruction"}, default "energy"
    x_steps : int, default 20
        Proximal-gradient steps on the auxiliary variables per scored sample.
    contamination : float in (0, 0.5], default 0.1
        The expected fraction of outliers among the training samples: :attr:`offset_` is the
        score below which that fraction of them lies, and :meth:`predict` calls a sample an
        outlier (-1) below it.
    solver, batch_size, inner_iterations, epochs, tau, tau_theta, tau_x, learning_rate, dtype, n_threads, random_state, verbose, aux_start, momentum
        The autoencoder's training, as in :class:`~bregman_solvers.estimators.SparseAutoencoder`
        (``epochs="auto"``: at least 300 batch steps). ``solver="sgd-bp"`` trains the same
        autoencoder by back-propagation (then score it by ``scoring="reconstruction"``, or by the energy
        of the lifted network it defines). ``n_threads`` also caps the scoring's threads.

    Attributes
    ----------
    autoencoder_ : SparseAutoencoder
    network_ : LiftedNetwork
    history_ : dict
    offset_ : float
    n_features_in_ : int
    """

    def __init__(self, hidden_layer_sizes=(128, 32, 128), code_layer=2, activation="relu", code_threshold=None,
                 code_alpha=0.0, layers=None, scoring="energy", x_steps=20, contamination=0.1, solver="isgd", batch_size=100,
                 inner_iterations=30, epochs="auto", tau=1.0, tau_theta="auto", tau_x=0.1, learning_rate=0.05,
                 dtype=None, n_threads=None, random_state=None, verbose=False, aux_start="stored", momentum=0.0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.code_layer = code_layer
        self.activation = activation
        self.code_threshold = code_threshold
        self.code_alpha = code_alpha
        self.layers = layers
        self.scoring = scoring
        self.x_steps = x_steps
        self.contamination = contamination
        self.solver = solver
        self.batch_size = batch_size
        self.inner_iterations = inner_iterations
        self.epochs = epochs
        self.tau = tau
        self.tau_theta = tau_theta
        self.tau_x = tau_x
        self.learning_rate = learning_rate
        self.dtype = dtype
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.aux_start = aux_start
        self.momentum = momentum

    #: The detector's own parameters (:mod:`bregman_solvers._params`); the autoencoder checks the rest.
    #: (Not named ``_parameter_constraints``: scikit-learn's estimator checks read that name as a
    #: table of its own private constraint classes.)
    _detector_constraints = {
        "scoring": [Options(*SCORES)],
        "x_steps": [Interval(numbers.Integral, 0, None)],
        "contamination": [Interval(numbers.Real, 0, 0.5, "right")],
    }

    def _check_scoring(self):
        validate_params(self, self._detector_constraints)

    def fit(self, X, y=None):
        """Train the autoencoder on ``X`` (normal samples, or mostly: see ``contamination``).

        ``y`` is ignored. Features should be on comparable scales (e.g. ``StandardScaler``, or
        pixels in [0, 1]).
        """
        self._check_scoring()
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        # the autoencoder's hyper-parameters, as they are: those its constructor names
        self.autoencoder_ = SparseAutoencoder(**settings_for(SparseAutoencoder, self)).fit(X)
        self.network_ = self.autoencoder_.network_
        self.history_ = self.autoencoder_.history_
        self.offset_ = float(np.percentile(self.score_samples(X), 100.0 * self.contamination))
        return self

    def energy_terms(self, X):
        """Per sample and layer, the lifted energy's terms ``lambda_l B_l(x_l, z_l)`` at the scored
        auxiliary variables (``scoring="reconstruction"``: the forward pass's, where only the output
        layer's term is nonzero), shape (n_samples, n_layers); rows are scored in chunks of
        :data:`SCORE_CHUNK`. :meth:`score_samples` is minus their row sums."""
        check_is_fitted(self)
        self._check_scoring()
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        net = self.network_
        if not net.parameter_vector.flags.writeable:
            net = net.copy()        # e.g. unpickled from a read-only memory map: the kernels need writable weights
        steps = 0 if self.scoring == "reconstruction" else self.x_steps
        terms = np.empty((X.shape[0], net.n_layers))
        for a in range(0, X.shape[0], SCORE_CHUNK):
            rows = X[a:a + SCORE_CHUNK].astype(net.dtype, copy=False)
            terms[a:a + SCORE_CHUNK], _ = relaxed_energy(net, rows, rows, steps, self.n_threads)
        return terms

    def score_samples(self, X):
        """Minus each sample's energy (higher: more normal, scikit-learn's convention)."""
        return -self.energy_terms(X).sum(axis=1)

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """+1 for inliers, -1 for outliers (``decision_function(X) < 0``)."""
        return np.where(self.decision_function(X) < 0, -1, 1)
