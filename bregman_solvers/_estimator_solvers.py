"""What the estimators share: the solver of an estimator's hyper-parameters, and the checks and the
fit call common to :mod:`bregman_solvers.estimators`' classes (needs scikit-learn, as they do)."""
import numbers

import numpy as np

from ._params import POSITIVE_INT, Interval, Options, is_auto, settings_for, validate_params
from .distributed import DistributedImplicitSGD
from .regularisers import SquaredL2
from .solvers import (ADMM, SGDBP, BlockCoordinateDescent, GradientDescentBP, ImplicitSGD, ImplicitSGDBP,
                      ModelAveraging, ProximalGradient, StochasticProximalGradient)
from .solvers._batches import AUTO_TAU

__all__ = ["SOLVERS"]

#: Solver names accepted by the estimators.
SOLVERS = ("isgd", "spg", "averaging", "pg", "fista", "bcd", "admm", "sgd-bp", "isgd-bp", "gd-bp")
_STOCHASTIC = ("isgd", "spg", "averaging", "sgd-bp", "isgd-bp")


#: ``epochs="auto"``: enough epochs for at least this many batch steps (and at least 10 epochs)
AUTO_BATCH_STEPS = 600


def _resolved_epochs(est, n_samples):
    """``est.epochs``, or for ``"auto"`` the epochs of at least :data:`AUTO_BATCH_STEPS` batch steps with
    a stochastic solver (10 for a deterministic one) and at least 10: measured on scikit-learn's small
    sets (docs/estimators.rst), ten epochs of a few hundred samples are a few dozen steps, too few."""
    if est.epochs != "auto":
        return est.epochs
    if est.solver not in _STOCHASTIC:
        return 10
    batches = -(-n_samples // min(est.batch_size, n_samples))
    return max(10, -(-AUTO_BATCH_STEPS // batches))


#: The stochastic solvers by name; each takes the estimator's settings its constructor names
#: (:func:`~bregman_solvers._params.settings_for`) besides the resolved epochs and seed
_STOCHASTIC_SOLVERS = {"isgd": ImplicitSGD, "spg": StochasticProximalGradient, "averaging": ModelAveraging,
                       "sgd-bp": SGDBP, "isgd-bp": ImplicitSGDBP}


def _weight_regulariser(est, n_samples):
    """``est.regulariser``, or where it is None and the estimator has a weight decay ``alpha > 0``
    (the classifier), ``SquaredL2(alpha / n_samples)``: ``alpha / 2 |W|^2`` against the summed loss."""
    alpha = getattr(est, "alpha", 0.0)        # the autoencoders have none (their code_alpha is the code's l1)
    if est.regulariser is not None or not alpha:
        return est.regulariser
    return SquaredL2(alpha / n_samples)


def _make_solver(est, code_regulariser=None, epochs=None, validation_data=None, code_layer=None, callback=None,
                 n_samples=1):
    """The solver object for an estimator's hyper-parameters (``epochs``: in place of ``est.epochs``;
    ``validation_data``: (inputs, targets) evaluated every epoch; ``callback``: called after each;
    ``n_samples``: the training samples, which scale the weight decay ``alpha``)."""
    epochs = est.epochs if epochs is None else epochs
    monitor = dict(validation_data=validation_data, track_energy=bool(est.track_metrics), code_layer=code_layer,
                   callback=callback)
    regulariser = _weight_regulariser(est, n_samples)
    given = dict(epochs=epochs, random_state=_seed(est.random_state), code_regulariser=code_regulariser,
                 regulariser=regulariser, **monitor)
    name = est.solver
    if est.n_workers is not None or est.scheduler is not None:
        if name not in ("isgd", "averaging"):
            raise ValueError(f"n_workers and scheduler (the Dask back end) need solver 'isgd' or 'averaging', "
                             f"got {name!r}")
        settings = settings_for(DistributedImplicitSGD, est, leave_out=given)
        if name == "averaging":
            settings["momentum"] = 0.0           # eq. 23: every batch from the round's theta
        return DistributedImplicitSGD(averaging="batch" if name == "averaging" else "shard", **settings, **given)
    if name in _STOCHASTIC_SOLVERS:
        cls = _STOCHASTIC_SOLVERS[name]
        settings = settings_for(cls, est, leave_out=given)
        if cls is ImplicitSGDBP and is_auto(settings["tau"]):
            settings["tau"] = AUTO_TAU["euclidean"]      # back-propagation's steps are Euclidean
        return cls(**settings, **given)
    if name == "gd-bp":
        return GradientDescentBP(learning_rate=est.learning_rate, epochs=epochs, regulariser=regulariser,
                                 code_regulariser=code_regulariser, verbose=est.verbose, n_threads=est.n_threads,
                                 **monitor)
    common_det = dict(max_iter=epochs, regulariser=regulariser, code_regulariser=code_regulariser,
                      n_threads=est.n_threads, callback=callback)
    if name in ("pg", "fista"):
        return ProximalGradient(accelerated=name == "fista", **common_det)
    if name == "bcd":
        return BlockCoordinateDescent(inner_iterations=est.inner_iterations, **common_det)
    if name == "admm":
        return ADMM(max_iter=epochs, regulariser=regulariser, code_regulariser=code_regulariser,
                    n_threads=est.n_threads, callback=callback)
    raise ValueError(f"solver must be one of {SOLVERS}, got {name!r}")


def _image_shape(shape):
    """``image_shape`` as (H, W, C) (None stays None; (H, W) gets one channel)."""
    if shape is None:
        return None
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) not in (2, 3) or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise ValueError(f"image_shape must be (height, width) or (height, width, channels) of positive integers, "
                         f"got {shape!r}")
    return tuple(int(s) for s in shape) + ((1,) if len(shape) == 2 else ())


def _seed(random_state):
    if random_state is None or isinstance(random_state, numbers.Integral):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    raise ValueError(f"random_state must be None, an int, a RandomState or a Generator, got {random_state!r}")


#: The rows every estimator checks before it builds a solver (:mod:`bregman_solvers._params`); the
#: solver it builds checks the settings it takes against its own table
_ESTIMATOR_CONSTRAINTS = {
    "solver": [Options(*SOLVERS)],
    "batch_size": [POSITIVE_INT],
    "inner_iterations": [POSITIVE_INT],
    "epochs": [POSITIVE_INT, Options("auto")],
}


#: The classifier's weight decay (the autoencoders have none)
_ALPHA = {"alpha": [Interval(numbers.Real, 0, None)]}


def _check_common(est):
    validate_params(est, _ESTIMATOR_CONSTRAINTS)
    if hasattr(est, "alpha"):
        validate_params(est, _ALPHA)
        if not np.isfinite(est.alpha):
            raise ValueError(f"alpha must be finite, got {est.alpha!r}")
    if est.dtype is not None and est.dtype not in ("float32", "float64", np.float32, np.float64):
        raise ValueError(f"dtype must be None, 'float32' or 'float64', got {est.dtype!r}")
    return None if est.dtype is None else np.dtype(est.dtype)


def _resolve_dtype(est, dtype, X, first):
    """The computation dtype: the estimator's, else the fitted network's (continuing a fit), else
    the data's when it is float32 (no copy to float64, half the memory), else float64."""
    if dtype is not None:
        return dtype
    if not first:
        return est.network_.dtype
    return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)


def _fit_network(est, network, X, target, code_regulariser=None, partial=False, validation_data=None,
                 code_layer=None, callback=None, resume=None):
    """Fit ``network``; ``resume`` (a :class:`~bregman_solvers.Checkpoint` of a stochastic fit) continues
    from its epoch (and batch, after a stop at a batch boundary) with its auxiliary variables, Bregman state
    and the momentum's previous parameters."""
    # partial_fit: the next epoch after those done (its own batch order and penalty weights)
    done = len(getattr(est, "history_", {}).get("epoch", ())) if partial else 0
    epochs = done + 1 if partial else _resolved_epochs(est, X.shape[0])
    solver = _make_solver(est, code_regulariser, epochs, validation_data, code_layer, callback, X.shape[0])
    if resume is None:
        return (solver.fit(network, X, target, initial_epoch=done) if partial else solver.fit(network, X, target)).history
    if est.solver not in _STOCHASTIC:
        raise ValueError(f"resume needs a stochastic solver {_STOCHASTIC}, got {est.solver!r}")
    if isinstance(solver, DistributedImplicitSGD):
        # the shards' auxiliary variables start from a forward pass of the checkpoint's network
        return solver.fit(network, X, target, initial_epoch=resume.epoch).history
    kwargs = dict(initial_epoch=resume.epoch, bregman_state=resume.bregman_state)
    if est.solver not in ("sgd-bp", "isgd-bp"):
        kwargs["state"] = resume.state
    if est.solver in ("isgd", "spg"):
        kwargs["previous_parameters"] = resume.previous_parameters
        kwargs["position"] = resume.position
    return solver.fit(network, X, target, **kwargs).history


def _resumed_network(est, resume, n_features):
    """The network of a checkpoint to continue, checked against the data."""
    from .persistence import Checkpoint

    if not isinstance(resume, Checkpoint):
        raise TypeError(f"resume must be a Checkpoint (bregman_solvers.load), got {type(resume).__name__}")
    if resume.network.widths[0] != n_features:
        raise ValueError(f"resume: the checkpoint's network takes {resume.network.widths[0]} features, "
                         f"X has {n_features}")
    return resume.network


def _initial_network(init, n_features, n_outputs, output, resume, classifier=True):
    """A copy of the network ``init`` to start an estimator's fit from, checked against the data (a
    classifier's ``output`` can be set to match; an autoencoder's output is the identity)."""
    from .network import LiftedNetwork

    if not isinstance(init, LiftedNetwork):
        raise TypeError(f"init must be a LiftedNetwork, got {type(init).__name__}")
    if resume is not None:
        raise ValueError("init and resume cannot be given together (resume continues the checkpoint's network)")
    if (init.widths[0], init.widths[-1]) != (n_features, n_outputs):
        per_class = " (one per class, at least 2)" if classifier else " (an autoencoder's)"
        raise ValueError(f"init: the network maps {init.widths[0]} features to {init.widths[-1]} outputs; the data "
                         f"need {n_features} to {n_outputs}{per_class}")
    if init.activations[-1].name != output:
        fix = f"the classifier's output is {output!r} (set output={init.activations[-1].name!r})" if classifier \
            else f"an autoencoder's is {output!r}"
        raise ValueError(f"init: the network's output activation is {init.activations[-1].name!r}, {fix}")
    return init.copy()


def _flat_images(est, X, first):
    """``X`` with each sample flat, NHWC: image arrays (n, H, W[, C]) reshaped, their shape checked
    against ``est.image_shape`` (and, after the first fit, against the fitted ``image_shape_``)."""
    shape = None
    if isinstance(X, np.ndarray) and X.ndim in (3, 4):
        shape = X.shape[1:] + ((1,) if X.ndim == 3 else ())
        X = X.reshape(X.shape[0], -1)
    if first:
        given = _image_shape(est.image_shape)
        if shape is not None and given is not None and given != shape:
            raise ValueError(f"image_shape {given} differs from the images' shape {shape}")
        est.image_shape_ = shape or given
    elif shape is not None and shape != getattr(est, "image_shape_", None):
        raise ValueError(f"X holds images of shape {shape}, the classifier was fitted on {est.image_shape_}")
    return X
