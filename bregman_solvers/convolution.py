"""Convolutional layers as operators (shared/MATH.md, "Convolution").

:class:`Conv2d` is a :class:`~bregman_solvers.operators.Operator`: the solvers train it exactly
as they train a dense layer, through the operator interface. Images are samples first, each
sample's ``H x W x C`` entries flat in NHWC order (so a :class:`~bregman_solvers.operators.Dense`
layer after a convolution reads its output flattened, for free). With ``P(X)`` the patch
matrix of a batch (:func:`bregman_solvers._kernels._conv.im2col`):

* forward: ``Z = P(X) W_mat^T``, one GEMM of (n H_out W_out) x (k_h k_w C_in) x C_out;
* weight gradient: ``alpha R^T P(X)``, one GEMM;
* adjoint (the back term): ``col2im(R W_mat)``, one GEMM and the scatter-add adjoint of im2col;
* one bias per output channel, shared by every position.

:class:`AvgPooled` folds average pooling into the operator of the layer that reads the pooled
image (``A = B o P``, MATH.md "Average pooling"): no auxiliary variable for the pooled image,
and ``P``, ``P^T`` are one pass each (:func:`bregman_solvers._kernels._conv.avg_pool`).
A dense layer reads an image flattened (NHWC order) without any operator: flattening is free.
"""
import numpy as np

from ._kernels import _conv, _lifted
from .operators import Operator, _positive_int, _shape, operator_from_config, register_operator, spectral_norm_sq

__all__ = ["Conv2d", "AvgPooled"]


@register_operator
class Conv2d(Operator):
    """A 2-D convolution (cross-correlation, as in every deep-learning framework) on NHWC images.

    Parameters
    ----------
    in_shape : (int, int, int)
        ``(H, W, C_in)`` of the input images.
    channels : int
        ``C_out``, the number of kernels.
    kernel_size : int or (int, int)
    stride : int, default 1
    padding : int, default 0
        Zero padding on every side.

    The kernel ``W`` has shape (C_out, k_h, k_w, C_in), the bias (C_out,); the output shape is
    ``(H_out, W_out, C_out)`` with ``H_out = (H + 2 padding - k_h) // stride + 1``.
    """

    def __init__(self, in_shape, channels, kernel_size, stride=1, padding=0):
        in_shape = _shape(in_shape, "in_shape", "Conv2d")
        if len(in_shape) != 3:
            raise ValueError(f"Conv2d: in_shape must be (height, width, channels), got {in_shape}")
        self.channels = _positive_int(channels, "channels", "Conv2d")
        kernel = _shape(kernel_size, "kernel_size", "Conv2d")
        if len(kernel) == 1:
            kernel = kernel * 2
        if len(kernel) != 2:
            raise ValueError(f"Conv2d: kernel_size must be an int or (height, width), got {kernel_size!r}")
        self.kernel_size = kernel
        self.stride = _positive_int(stride, "stride", "Conv2d")
        if isinstance(padding, (bool, np.bool_)) or not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"Conv2d: padding must be an integer >= 0, got {padding!r}")
        self.padding = int(padding)
        height, width, _ = in_shape
        if kernel[0] > height + 2 * self.padding or kernel[1] > width + 2 * self.padding:
            raise ValueError(f"Conv2d: kernel_size {kernel} is larger than the padded input "
                             f"({height + 2 * self.padding}, {width + 2 * self.padding})")
        self.in_shapes = (in_shape,)
        self.out_shape = (_conv.output_size(height, kernel[0], self.stride, self.padding),
                          _conv.output_size(width, kernel[1], self.stride, self.padding), self.channels)
        self.weight_shape = (self.channels, kernel[0], kernel[1], in_shape[2])
        self.bias_shape = (self.channels,)

    def get_config(self):
        return {"type": "Conv2d", "in_shape": list(self.in_shape), "channels": self.channels,
                "kernel_size": list(self.kernel_size), "stride": self.stride, "padding": self.padding}

    def fan_in_out(self):
        k = self.kernel_size[0] * self.kernel_size[1]
        return k * self.in_shape[2], k * self.channels

    def temporary_entries(self):
        """The patch matrix's row block of one sample: ``H_out W_out k_h k_w C_in`` entries."""
        return self._positions * (self.n_weights // self.channels)

    # ---------------------------------------------------------------- products
    @property
    def _positions(self):
        return self.out_shape[0] * self.out_shape[1]

    def _geometry(self):
        height, width, channels = self.in_shape
        return height, width, channels, self.kernel_size[0], self.kernel_size[1], self.stride, self.padding

    def patches(self, images, threads=1):
        """The patch matrix of a batch of flat images (n, H W C_in): (n H_out W_out, k_h k_w C_in)."""
        cols = np.empty((images.shape[0] * self._positions, self.n_weights // self.channels), images.dtype)
        _conv.im2col(images, cols, *self._geometry(), threads)
        return cols

    def forward(self, inputs, weights, out, scale=1.0, split=(1, 1), cache=None):
        cols = self.patches(inputs[0], split[1])
        if cache is not None:           # the weight gradient on the same inputs reuses it
            cache["patches"] = cols
        _lifted.gemm(False, True, scale, cols, weights.reshape(self.channels, -1), 0.0,
                     out.reshape(-1, self.channels), *split)
        return out

    def adjoint(self, residual, weights, source, out, alpha, split=(1, 1)):
        w = weights.reshape(self.channels, -1)
        cols = np.empty((residual.shape[0] * self._positions, w.shape[1]), residual.dtype)
        _lifted.gemm(False, False, 1.0, residual.reshape(-1, self.channels), w, 0.0, cols, *split)
        _conv.col2im(cols, out, *self._geometry(), alpha, split[1])
        return out

    def weight_gradient(self, residual, inputs, out, alpha, beta=0.0, split=(1, 1), cache=None):
        cols = cache.get("patches") if cache is not None else None
        if cols is None:
            cols = self.patches(inputs[0], split[1])
        _lifted.gemm(True, False, alpha, residual.reshape(-1, self.channels), cols, beta,
                     out.reshape(self.channels, -1), *split)
        return out

    def design(self, inputs, cache=None):
        """The patch matrix (n H_out W_out, k_h k_w C_in)."""
        cols = cache.get("patches") if cache is not None else None
        return self.patches(inputs[0]) if cols is None else cols

    def input_norm_sq(self, inputs, v=None, n_iter=20):
        """``|P(X)|_2^2``: the weight gradient's bound is the patch matrix's spectral norm."""
        return spectral_norm_sq(self.patches(inputs[0]), v, n_iter)


@register_operator
class AvgPooled(Operator):
    """An operator applied after average pooling: ``A(x; W) = B(P x; W)`` (MATH.md, "Average pooling").

    ``P`` averages non-overlapping ``size x size`` windows of an NHWC image (stride ``size``;
    rows and columns beyond the last whole window are dropped). The pooled image is never an
    auxiliary variable: the layer reading it owns ``P``, so a LeNet-style "conv, pool, conv"
    is two lifted layers, the second ``AvgPooled(Conv2d(...), 2)``.

    Parameters
    ----------
    operator : Operator or dict
        ``B``, reading the pooled image: a :class:`Conv2d` on ``(H // size, W // size, C)`` or
        any operator of that many inputs (a :class:`~bregman_solvers.operators.Dense` layer reads
        it flattened). A dict is an operator config (checkpoints).
    size : int, default 2
        The pooling window's side (and stride).
    in_shape : (int, int, int), optional
        ``(H, W, C)`` of the image before pooling; by default ``operator``'s image shape times
        ``size`` (required when ``operator`` reads a flat vector).

    ``W`` and ``b`` are ``operator``'s. With ``P P^T = I / size^2`` the x-step's bound is
    ``|B|^2 / size^2``; the parameter step's is ``B``'s on the pooled batch.
    """

    def __init__(self, operator, size=2, in_shape=None):
        if isinstance(operator, dict):
            operator = operator_from_config(operator)
        if not isinstance(operator, Operator) or operator.sources != (1,):
            raise TypeError(f"AvgPooled: operator must be an Operator reading one source, got {operator!r}")
        self.operator = operator
        self.size = _positive_int(size, "size", "AvgPooled")
        if in_shape is None:
            if len(operator.in_shape) != 3:
                raise ValueError(f"AvgPooled: in_shape (H, W, C) is required when the operator reads a flat vector "
                                 f"({operator!r})")
            h, w, c = operator.in_shape
            in_shape = (h * self.size, w * self.size, c)
        in_shape = _shape(in_shape, "in_shape", "AvgPooled")
        if len(in_shape) != 3:
            raise ValueError(f"AvgPooled: in_shape must be (height, width, channels), got {in_shape}")
        height, width, channels = in_shape
        if self.size > min(height, width):
            raise ValueError(f"AvgPooled: size {self.size} is larger than the image {in_shape}")
        self.pooled_shape = (height // self.size, width // self.size, channels)
        reads = tuple(operator.in_shape)
        if int(np.prod(reads)) != int(np.prod(self.pooled_shape)) or (len(reads) == 3 and reads != self.pooled_shape):
            raise ValueError(f"AvgPooled: pooling {in_shape} by {self.size} gives {self.pooled_shape}, but the "
                             f"operator {operator!r} reads {reads}")
        self.in_shapes = (in_shape,)
        self.out_shape = operator.out_shape
        self.weight_shape = operator.weight_shape
        self.bias_shape = operator.bias_shape

    def get_config(self):
        return {"type": "AvgPooled", "operator": self.operator.get_config(), "size": self.size,
                "in_shape": list(self.in_shape)}

    def fan_in_out(self):
        return self.operator.fan_in_out()

    def init_weights(self, rng, out):
        self.operator.init_weights(rng, out)

    def temporary_entries(self):
        return self.operator.in_size + self.operator.temporary_entries()

    def pool(self, images, threads=1):
        """``P X``: the pooled batch (n, H/s W/s C) of flat images (n, H W C)."""
        pooled = np.empty((images.shape[0], self.operator.in_size), images.dtype)
        _conv.avg_pool(images, pooled, *self.in_shape, self.size, threads)
        return pooled

    def forward(self, inputs, weights, out, scale=1.0, split=(1, 1), cache=None):
        pooled = self.pool(inputs[0], split[1])
        inner = None
        if cache is not None:
            cache["pooled"], inner = pooled, cache.setdefault("inner", {})
        return self.operator.forward((pooled,), weights, out, scale, split, inner)

    def adjoint(self, residual, weights, source, out, alpha, split=(1, 1)):
        back = np.zeros((residual.shape[0], self.operator.in_size), residual.dtype)
        self.operator.adjoint(residual, weights, 0, back, 1.0, split)
        _conv.avg_pool_adjoint(back, out, *self.in_shape, self.size, alpha, split[1])
        return out

    def weight_gradient(self, residual, inputs, out, alpha, beta=0.0, split=(1, 1), cache=None):
        pooled = cache.get("pooled") if cache is not None else None
        if pooled is None:
            pooled = self.pool(inputs[0], split[1])
        inner = cache.get("inner") if cache is not None else None
        return self.operator.weight_gradient(residual, (pooled,), out, alpha, beta, split, inner)

    def design(self, inputs, cache=None):
        """The inner operator's design matrix of the pooled input."""
        pooled = cache.get("pooled") if cache is not None else None
        if pooled is None:
            pooled = self.pool(inputs[0])
        return self.operator.design((pooled,), cache.get("inner") if cache is not None else None)

    def norm_sq(self, weights, source=0, v=None, n_iter=30):
        """``|B|^2 / size^2`` (``|P|^2 = 1 / size^2``): a bound of ``|B P|^2``."""
        estimate, v = self.operator.norm_sq(weights, 0, v, n_iter)
        return estimate / self.size ** 2, v

    def input_norm_sq(self, inputs, v=None, n_iter=20):
        return self.operator.input_norm_sq((self.pool(inputs[0]),), v, n_iter)
