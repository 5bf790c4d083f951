"""Skip connections into the pre-activation: the basic block of ResNet v1 as an operator.

shared/MATH.md, "Residual blocks": the skip enters the pre-activation,

    z_l = A_l(x_{l-1}; W_l) + b_l + S(x_{l-2}),        x_l = sigma_l(z_l),

with ``S`` the identity (``x_{l-2}`` of the output's shape) or a learned projection (a 1x1
convolution, strided where the block halves the image, or a dense map for flat layers). The
layer reads two sources, so ``x_{l-2}`` receives one more back term, ``lambda_l S^T r_l``, and
the x-prox stays entrywise: every solver trains it through the operator interface unchanged.
A basic block is two lifted layers, ``Conv2d`` then ``Residual(Conv2d)``.
"""
import numpy as np

from ._kernels import _lifted
from .convolution import Conv2d
from .operators import Dense, Operator, _shape, operator_from_config, register_operator

__all__ = ["Residual"]


def _part(cache, key):
    """The sub-cache of one of the block's two maps (None without a cache)."""
    return None if cache is None else cache.setdefault(key, {})


@register_operator
class Residual(Operator):
    """``A(x_{l-1}, x_{l-2}; W) = B(x_{l-1}; W_B) + S(x_{l-2}; W_S)``: an operator plus a skip.

    Parameters
    ----------
    operator : Operator or dict
        ``B``, the block's main path on ``x_{l-1}`` (typically a :class:`Conv2d`). A dict is an
        operator config (checkpoints).
    skip_shape : tuple of int, optional
        The per-sample shape of ``x_{l-2}``; by default ``operator``'s output shape.
    projection : bool, default False
        ``False``: ``S`` is the identity, and ``skip_shape`` must equal the output shape.
        ``True``: ``S`` is learned, a 1x1 :class:`Conv2d` (stride ``ceil(H_skip / H_out)``) when
        both shapes are images, else a :class:`Dense` map; its weights follow ``B``'s in ``W``
        (then a flat vector) and it has no bias of its own (``b_l`` is the layer's).
    zero_init : bool, default False
        Start ``B``'s weights at zero (the projection's stay Glorot): the block starts as its
        skip, ``x_l = sigma(S(x_{l-2}) + b_l)``, the "zero-gamma" start of deep residual
        networks (Goyal et al. 2017). Measured in docs/layers.rst.
    """

    sources = (1, 2)

    def __init__(self, operator, skip_shape=None, projection=False, zero_init=False):
        if isinstance(operator, dict):
            operator = operator_from_config(operator)
        if not isinstance(operator, Operator) or operator.sources != (1,):
            raise TypeError(f"Residual: operator must be an Operator reading one source, got {operator!r}")
        self.operator = operator
        out_shape = tuple(operator.out_shape)
        skip_shape = out_shape if skip_shape is None else _shape(skip_shape, "skip_shape", "Residual")
        for name, flag in (("projection", projection), ("zero_init", zero_init)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"Residual: {name} must be True or False, got {flag!r}")
        self.zero_init = bool(zero_init)
        self.projection = None
        if projection:
            self.projection = self._projection(skip_shape, out_shape)
        elif skip_shape != out_shape:
            raise ValueError(f"Residual: the skip reads shape {skip_shape} but the block's output is {out_shape}; "
                             f"an identity skip needs equal shapes (pass projection=True for a learned projection)")
        self.in_shapes = (tuple(operator.in_shape), skip_shape)
        self.out_shape = out_shape
        self.bias_shape = operator.bias_shape
        self._n_main = operator.n_weights
        n_skip = self.projection.n_weights if self.projection is not None else 0
        self.weight_shape = operator.weight_shape if not n_skip else (self._n_main + n_skip,)

    @staticmethod
    def _projection(skip_shape, out_shape):
        if len(skip_shape) == 3 and len(out_shape) == 3:
            stride = max(1, -(-skip_shape[0] // out_shape[0]))     # ceil: 28 -> 14 and 3 -> 2 by stride 2
            proj = Conv2d(skip_shape, out_shape[2], 1, stride=stride)
            if tuple(proj.out_shape) != out_shape:
                raise ValueError(f"Residual: no 1x1 projection maps the skip's {skip_shape} to the output {out_shape} "
                                 f"(a stride {stride} projection gives {proj.out_shape})")
            return proj
        return Dense(int(np.prod(skip_shape)), int(np.prod(out_shape)))

    def get_config(self):
        return {"type": "Residual", "operator": self.operator.get_config(), "skip_shape": list(self.in_shapes[1]),
                "projection": self.projection is not None, "zero_init": self.zero_init}

    def fan_in_out(self):
        return self.operator.fan_in_out()

    def temporary_entries(self):
        extra = 0 if self.projection is None else self.out_size + self.projection.temporary_entries()
        return max(self.operator.temporary_entries(), extra)

    def _split(self, weights):
        """``(W_B, W_S)`` views of the layer's weights (``W_S`` None for the identity skip)."""
        if self.projection is None:
            return weights, None
        flat = weights.reshape(-1)
        return (flat[:self._n_main].reshape(self.operator.weight_shape),
                flat[self._n_main:].reshape(self.projection.weight_shape))

    def init_weights(self, rng, out):
        main, skip = self._split(out)
        self.operator.init_weights(rng, main)      # drawn either way: the stream stays the same
        if self.zero_init:
            main[...] = 0
        if skip is not None:
            self.projection.init_weights(rng, skip)

    # ---------------------------------------------------------------- products
    def forward(self, inputs, weights, out, scale=1.0, split=(1, 1), cache=None):
        main, skip = self._split(weights)
        self.operator.forward(inputs[:1], main, out, scale, split, _part(cache, "main"))
        if skip is None:
            _lifted.axpy(scale, inputs[1].reshape(-1), out.reshape(-1), split[1])
        else:
            # S(x) added to B(x): the projection's product into a temporary, then one axpy
            extra = np.empty_like(out)
            self.projection.forward(inputs[1:], skip, extra, scale, split, _part(cache, "skip"))
            _lifted.axpy(1.0, extra.reshape(-1), out.reshape(-1), split[1])
        return out

    def adjoint(self, residual, weights, source, out, alpha, split=(1, 1)):
        main, skip = self._split(weights)
        if source == 0:
            return self.operator.adjoint(residual, main, 0, out, alpha, split)
        if skip is None:
            _lifted.axpy(alpha, residual.reshape(-1), out.reshape(-1), split[1])
            return out
        return self.projection.adjoint(residual, skip, 0, out, alpha, split)

    def weight_gradient(self, residual, inputs, out, alpha, beta=0.0, split=(1, 1), cache=None):
        main, skip = self._split(out)
        self.operator.weight_gradient(residual, inputs[:1], main, alpha, beta, split, _part(cache, "main"))
        if skip is not None:
            self.projection.weight_gradient(residual, inputs[1:], skip, alpha, beta, split, _part(cache, "skip"))
        return out

    def design(self, inputs, cache=None):
        """``[D_B D_S]``: the main path's design matrix and, with a projection, the skip's beside it
        (both have a row per output position), so that ``A = [D_B D_S] [W_B W_S]^T`` channel by
        channel (:meth:`channel_rows`). With the identity skip the block is ``D_B W^T`` plus
        ``x_{l-2}``, a term constant in ``W``: its curvature in ``W`` is the main path's."""
        main = self.operator.design(inputs[:1], _part(cache, "main"))
        if self.projection is None:
            return main
        return np.hstack([main, self.projection.design(inputs[1:], _part(cache, "skip"))])

    def channel_rows(self, weights):
        main, skip = self._split(weights)
        rows = self.operator.channel_rows(main)
        return rows if skip is None else np.hstack([rows, self.projection.channel_rows(skip)])

    def set_channel_rows(self, weights, rows):
        main, skip = self._split(weights)
        d = self._n_main // self.bias_shape[0]
        self.operator.set_channel_rows(main, rows[:, :d])
        if skip is not None:
            self.projection.set_channel_rows(skip, rows[:, d:])

    # ----------------------------------------------------------- the bounds
    def norm_sq(self, weights, source=0, v=None, n_iter=30):
        main, skip = self._split(weights)
        if source == 0:
            return self.operator.norm_sq(main, 0, v, n_iter)
        if skip is None:
            return 1.0, v
        return self.projection.norm_sq(skip, 0, v, n_iter)

    def input_norm_sq(self, inputs, v=None, n_iter=20):
        """``|B'|^2 + |S'|^2`` (the maps ``W -> B(x; W)`` and ``W -> S(x; W)`` side by side:
        ``|[M N]|^2 <= |M|^2 + |N|^2``)."""
        v_main, v_skip = v if isinstance(v, tuple) else (None, None)
        estimate, v_main = self.operator.input_norm_sq(inputs[:1], v_main, n_iter)
        if self.projection is not None:
            extra, v_skip = self.projection.input_norm_sq(inputs[1:], v_skip, n_iter)
            estimate += extra
        return estimate, (v_main, v_skip)
