"""Layers as linear operators: what a layer's pre-activation is (shared/MATH.md, "Beyond dense layers").

A lifted layer ``l`` computes ``z_l = sum_{j in in(l)} A_{l,j}(x_j; W_l) + b_l`` from earlier
layers' outputs, and the lifted energy needs of ``A`` only what every solver, the energy, the
step rules, persistence and the Dask shards use through this interface:

* :meth:`Operator.forward`: ``Z = s A(X; W)`` for a batch (samples as rows, each sample's
  entries flat, images in NHWC order);
* :meth:`Operator.adjoint`: ``V += alpha A_j^T R``, the back term of the x-step
  (``grad_{x_j} F`` receives ``lambda_l A_{l,j}^T r_l``);
* :meth:`Operator.weight_gradient`: ``G = alpha (dA/dW)^T R + beta G``, the parameter gradient
  ``grad_{W_l} F = lambda_l (dz_l / dW_l)^T r_l``;
* :meth:`Operator.norm_sq` and :meth:`Operator.input_norm_sq`: bounds of ``|A|_2^2`` (the
  x-step's Lipschitz constant) and of ``|dA/dW|_2^2`` on a batch (the parameter step's);
* the bias's shape: one entry per output entry, or one per channel (shared by every position
  of an NHWC output), mapped to and from an output row by :meth:`Operator.expand_bias` and
  :meth:`Operator.reduce_bias`.

The activation passes act on each output row as a flat vector, so they are reused unchanged
for any operator. :class:`Dense` is the first operator and the only one the compiled K steps
(``_kernels._steps.ProximalSteps``) take directly; a network with any other operator runs the
same steps through this interface (:class:`~bregman_solvers.solvers._engine.StepEngine`).

A new operator subclasses :class:`Operator`, implements ``forward``, ``adjoint`` and
``weight_gradient`` (the norm bounds default to power iterations on those), and, to be saved
in a checkpoint, :meth:`Operator.get_config` with :func:`register_operator`.
"""
import numpy as np

from ._kernels import _lifted

__all__ = ["Operator", "Dense", "register_operator", "operator_from_config", "power_iteration", "spectral_norm_sq"]

_REGISTRY = {}


def register_operator(cls):
    """Class decorator: make ``cls`` known to :func:`operator_from_config` (and so to checkpoints)."""
    if not (isinstance(cls, type) and issubclass(cls, Operator)):
        raise TypeError(f"register_operator takes an Operator subclass, got {cls!r}")
    _REGISTRY[cls.__name__] = cls
    return cls


def operator_from_config(config):
    """The operator described by ``config`` (a dict from :meth:`Operator.get_config`)."""
    if not isinstance(config, dict) or "type" not in config:
        raise ValueError(f"an operator config must be a dict with a 'type', got {config!r}")
    cls = _REGISTRY.get(config["type"])
    if cls is None:
        raise ValueError(f"unknown operator type {config['type']!r} (registered: {sorted(_REGISTRY)})")
    return cls(**{k: v for k, v in config.items() if k != "type"})


def power_iteration(apply_normal, size, v=None, n_iter=30):
    """Largest eigenvalue of a positive semi-definite map ``apply_normal`` (``v -> A^T A v``, taking
    a float64 vector of length ``size``). Returns ``(estimate, v)``; pass ``v`` back to warm-start
    the next call. Power iteration approaches from below, so callers leave a margin."""
    if v is None:
        v = np.ones(size, dtype=np.float64) / np.sqrt(max(size, 1))
    estimate = 0.0
    for _ in range(n_iter):
        w = np.asarray(apply_normal(v)).reshape(-1)
        norm = float(np.linalg.norm(w))
        if norm == 0.0:
            return 0.0, v
        estimate = norm
        v = (w / norm).astype(np.float64)
    return estimate, v


def spectral_norm_sq(a, v=None, n_iter=30):
    """Largest squared singular value of the matrix ``a`` by power iteration on ``a^T a``
    (``(estimate, v)`` as :func:`power_iteration`)."""
    return power_iteration(lambda vec: a.T @ (a @ vec.astype(a.dtype, copy=False)), a.shape[1], v, n_iter)


def _positive_int(value, name, owner):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _shape(shape, name, owner):
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) == 0:
        raise ValueError(f"{owner}: {name} must be a positive integer or a tuple of them, got {shape!r}")
    return tuple(_positive_int(s, name, owner) for s in shape)


class Operator:
    """A layer's linear map ``A(x; W)``: the pre-activation is ``A(x; W) + b`` (module docstring).

    Subclasses set, in ``__init__``, :attr:`in_shape` (a tuple per source), :attr:`out_shape`,
    :attr:`weight_shape` and :attr:`bias_shape`, and implement :meth:`forward`, :meth:`adjoint`
    and :meth:`weight_gradient`. Operators hold no parameters and no state: the network keeps
    ``W`` and ``b`` in its parameter vector and passes them in.

    Attributes
    ----------
    sources : tuple of int
        Which earlier layers' outputs the operator reads, as offsets back from its layer:
        ``(1,)`` reads ``x_{l-1}`` (a chain); ``(1, 2)`` also ``x_{l-2}`` (a skip connection).
    in_shapes : tuple of tuple
        Each source's per-sample shape, in the order of :attr:`sources`.
    out_shape, weight_shape, bias_shape : tuple
        Per-sample output shape, and the shapes of ``W`` (``(0,)`` for a map without weights)
        and of ``b`` (``out_shape``'s size, or its last axis: one bias per channel).
    compiled : bool
        Whether the compiled K steps take this operator directly (:class:`Dense` only).
    """

    sources = (1,)
    compiled = False

    # ---------------------------------------------------------------- shapes
    @property
    def in_shape(self):
        """The per-sample shape of the first source (``x_{l-1}``)."""
        return self.in_shapes[0]

    @property
    def in_size(self):
        return int(np.prod(self.in_shape))

    @property
    def out_size(self):
        return int(np.prod(self.out_shape))

    @property
    def n_weights(self):
        return int(np.prod(self.weight_shape))

    @property
    def n_biases(self):
        return int(np.prod(self.bias_shape))

    def __repr__(self):
        config = self.get_config() if type(self).get_config is not Operator.get_config else {}
        args = ", ".join(f"{k}={v!r}" for k, v in config.items() if k != "type")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self):
        return hash((type(self).__name__, self.out_shape, self.in_shapes))

    def get_config(self):
        """A JSON-able dict that :func:`operator_from_config` turns back into this operator."""
        raise NotImplementedError(f"{type(self).__name__} has no config: it cannot be saved in a checkpoint "
                                  f"(implement get_config and decorate the class with register_operator)")

    # ------------------------------------------------------------ parameters
    def init_weights(self, rng, out):
        """Glorot-uniform initialisation of ``W`` into ``out`` (fan-in: entries each output reads)."""
        if out.size:
            fan_in, fan_out = self.fan_in_out()
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            out[...] = rng.uniform(-limit, limit, size=out.shape)

    def fan_in_out(self):
        """``(fan_in, fan_out)`` of the Glorot initialisation."""
        return self.in_size, self.out_size

    def expand_bias(self, b, out):
        """``out`` (length :attr:`out_size`): the bias each output entry receives."""
        if self.n_biases == self.out_size:
            np.copyto(out, b)
        else:                                   # one per channel, channels last (NHWC)
            out.reshape(-1, self.n_biases)[...] = b

    def reduce_bias(self, row, out, alpha=1.0, accumulate=False):
        """``out = alpha * (the adjoint of expand_bias)(row)`` (``+=`` when ``accumulate``)."""
        summed = row if self.n_biases == self.out_size else row.reshape(-1, self.n_biases).sum(axis=0)
        if accumulate:
            out += alpha * summed
        else:
            np.multiply(summed, alpha, out=out)

    def bias_gradient(self, residual, out, alpha=1.0, accumulate=False):
        """``out (+)= alpha`` times the residual's sums over samples, mapped to the bias's shape
        (:meth:`reduce_bias`): the gradient of ``<R, b expanded>`` in ``b``."""
        if self.n_biases == self.out_size:
            _lifted.column_sums(residual, out.reshape(-1), alpha, accumulate)
        else:
            sums = np.empty(self.out_size, residual.dtype)
            _lifted.column_sums(residual, sums, 1.0, False)
            self.reduce_bias(sums, out, alpha, accumulate)
        return out

    def temporary_entries(self):
        """Entries per sample of the largest temporary array a product allocates (0 for none):
        what :meth:`~bregman_solvers.LiftedNetwork.memory_estimate` adds per batch row."""
        return 0

    # -------------------------------------------------------------- the map
    def forward(self, inputs, weights, out, scale=1.0, split=(1, 1), cache=None):
        """``out = scale * A(inputs; W)`` (no bias), for a batch.

        Parameters
        ----------
        inputs : tuple of ndarray
            One (n_samples, size) C-contiguous array per source, in the order of :attr:`sources`.
        weights : ndarray of shape :attr:`weight_shape`
        out : ndarray of shape (n_samples, out_size)
        scale : float
        split : (int, int)
            ``(blocks, threads)`` of a matrix product (``_kernels._lifted.gemm``).
        cache : dict or None
            Where the operator may keep what it derived from ``inputs`` (a convolution's patch
            matrix) for a :meth:`weight_gradient` on the same inputs. The step engine passes one
            dict per layer and empties it whenever the auxiliary variables change; None: keep nothing.
        """
        raise NotImplementedError

    def adjoint(self, residual, weights, source, out, alpha, split=(1, 1)):
        """``out += alpha * A_source^T residual``: the back term into source ``source`` (an index
        into :attr:`sources`)."""
        raise NotImplementedError

    def weight_gradient(self, residual, inputs, out, alpha, beta=0.0, split=(1, 1), cache=None):
        """``out = alpha (dA/dW)^T residual + beta out`` (out of shape :attr:`weight_shape`);
        ``cache``: the dict a :meth:`forward` on the same ``inputs`` filled, or None."""
        raise NotImplementedError

    def design(self, inputs, cache=None):
        """The design matrix ``D`` with ``A(x; W) = D W^T`` row by row: (rows, weights per output
        channel), e.g. the patch matrix of a convolution; what a preconditioned parameter step
        (``theta_metric="input"``) takes the metric from. Operators without one raise."""
        raise NotImplementedError(f"{type(self).__name__} has no design matrix: theta_metric='input' "
                                  f"needs Dense, Conv2d, AvgPooled or Residual layers")

    def channel_rows(self, weights):
        """The weights as one row per output channel, ``(channels, d)``, in the order of
        :meth:`design`'s columns (a view where the layout is already row by row)."""
        return weights.reshape(self.bias_shape[0], -1)

    def set_channel_rows(self, weights, rows):
        """Write :meth:`channel_rows`'s layout ``rows`` back into ``weights``."""
        weights.reshape(self.bias_shape[0], -1)[...] = rows

    # ----------------------------------------------------------- the bounds
    def norm_sq(self, weights, source=0, v=None, n_iter=30):
        """``|A_source|_2^2`` by power iteration on ``A^T A`` (one sample). Returns ``(estimate, v)``."""
        size = int(np.prod(self.in_shapes[source]))
        dtype = weights.dtype

        def normal(vec):
            inputs = [np.zeros((1, int(np.prod(s))), dtype) for s in self.in_shapes]
            inputs[source][0] = vec
            z = np.empty((1, self.out_size), dtype)
            self.forward(tuple(inputs), weights, z)
            back = np.zeros((1, size), dtype)
            self.adjoint(z, weights, source, back, 1.0)
            return back[0]

        return power_iteration(normal, size, v, n_iter)

    def input_norm_sq(self, inputs, v=None, n_iter=20):
        """``|W -> A(inputs; W)|_2^2`` on a batch: the squared Lipschitz constant of the layer's
        pre-activation in its weights (dense: ``|X_{l-1}|_2^2``). Returns ``(estimate, v)``."""
        if not self.n_weights:
            return 0.0, v
        dtype = inputs[0].dtype
        n = inputs[0].shape[0]
        z = np.empty((n, self.out_size), dtype)
        g = np.empty(self.weight_shape, dtype)

        def normal(vec):
            self.forward(inputs, vec.astype(dtype).reshape(self.weight_shape), z)
            self.weight_gradient(z, inputs, g, 1.0)
            return g

        return power_iteration(normal, self.n_weights, v, n_iter)


@register_operator
class Dense(Operator):
    """A fully connected layer: ``A(x; W) = W x``, ``W`` of shape (n_out, n_in) (eq. 13).

    With samples as rows each product is one GEMM: ``Z = X W^T``, the back term ``R W`` and the
    gradient ``R^T X`` (MATH.md). The compiled K steps take dense layers without this class's
    methods (the same products, on raw pointers).

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    """

    compiled = True

    def __init__(self, n_in, n_out):
        self.n_in = _positive_int(n_in, "n_in", "Dense")
        self.n_out = _positive_int(n_out, "n_out", "Dense")
        self.in_shapes = ((self.n_in,),)
        self.out_shape = (self.n_out,)
        self.weight_shape = (self.n_out, self.n_in)
        self.bias_shape = (self.n_out,)

    def get_config(self):
        return {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out}

    def forward(self, inputs, weights, out, scale=1.0, split=(1, 1), cache=None):
        _lifted.gemm(False, True, scale, inputs[0], weights, 0.0, out, *split)
        return out

    def adjoint(self, residual, weights, source, out, alpha, split=(1, 1)):
        _lifted.gemm(False, False, alpha, residual, weights, 1.0, out, *split)
        return out

    def weight_gradient(self, residual, inputs, out, alpha, beta=0.0, split=(1, 1), cache=None):
        _lifted.gemm(True, False, alpha, residual, inputs[0], beta, out, *split)
        return out

    def design(self, inputs, cache=None):
        return inputs[0]

    def norm_sq(self, weights, source=0, v=None, n_iter=30):
        return spectral_norm_sq(weights, v, n_iter)

    def input_norm_sq(self, inputs, v=None, n_iter=20):
        return spectral_norm_sq(inputs[0], v, n_iter)


def dense_layers(widths):
    """The dense operators of ``widths = [n_0, ..., n_L]``."""
    return [Dense(n_in, n_out) for n_in, n_out in zip(widths[:-1], widths[1:])]


def check_layers(layers):
    """A network's operators: a non-empty sequence of :class:`Operator` whose sources exist and
    whose input shapes match the outputs they read (errors name the layer). Returns a list."""
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__len__"):
        raise TypeError(f"layers must be a sequence of Operator (or of int widths), got {type(layers).__name__}")
    layers = list(layers)
    if not layers:
        raise ValueError("layers must list at least one operator")
    shapes = [tuple(layers[0].in_shape) if isinstance(layers[0], Operator) else None]
    for l, op in enumerate(layers, start=1):
        if not isinstance(op, Operator):
            raise TypeError(f"layer {l}: expected an Operator, got {type(op).__name__}")
        if len(op.sources) != len(op.in_shapes) or not op.sources:
            raise ValueError(f"layer {l} ({op!r}): sources {op.sources} and in_shapes {op.in_shapes} differ "
                             f"in length")
        for source, shape in zip(op.sources, op.in_shapes):
            if not isinstance(source, (int, np.integer)) or source < 1 or source > l:
                raise ValueError(f"layer {l} ({op!r}): source {source!r} must be between 1 and {l} "
                                 f"(layers back; {l} is the input)")
            read = shapes[l - source]
            what = "the input" if l - source == 0 else f"layer {l - source}'s output"
            if int(np.prod(read)) != int(np.prod(shape)):
                raise ValueError(f"layer {l} ({op!r}) reads {what} of shape {read} as shape {tuple(shape)}: "
                                 f"sizes differ")
            if len(read) > 1 and len(shape) > 1 and tuple(read) != tuple(shape):
                # an image read as another image (a channel or height/width mismatch); a flat
                # reader (a dense layer) flattens any output for free
                raise ValueError(f"layer {l} ({op!r}) reads {what} of shape {read} as shape {tuple(shape)}: "
                                 f"shapes differ")
        if op.n_biases < 1 or op.out_size % op.n_biases:
            raise ValueError(f"layer {l} ({op!r}): bias shape {op.bias_shape} must divide the output "
                             f"{op.out_shape} (one per entry or one per channel)")
        shapes.append(tuple(op.out_shape))
    return layers
