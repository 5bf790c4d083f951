# The input layer's K steps in low-rank form (docs/performance.rst, "Fewer products per
# batch"). During a batch the data X_0 (n x n_in) does not move, so after k inner steps
# the first layer's weights are a multiple of its start plus a term of rank at most n:
#
#     W^(k) = beta_k W^(0) - A_k^T X_0,   beta_0 = 1, A_0 = 0,
#     beta_{k+1} = d ((1 - c_k) beta_k + c_k),   A_{k+1} = d ((1 - c_k) A_k + step R_k)
#
# (the pull towards the anchor W^(0) with weight c_k, the gradient step ``- step R_k^T X_0``
# and a weight decay's prox ``W <- d W`` all keep the form; without a decay, d = 1 and
# beta stays 1). Hence the layer's pre-activation needs no product with W:
#
#     Z^(k) = X_0 W^(k)T = beta_k P - G A_k,   P = X_0 W^(0)T (the batch's first evaluation),
#                                              G = X_0 X_0^T (n x n, once per batch),
#
# and W is formed once, after the K steps, with beta_K in its scale. nogil, trusting the
# pointers (``_steps.pyx`` checks them).

from cython cimport floating
from libc.string cimport memcpy, memset

from ._blas cimport _parallel_axpy, _parallel_scal, _product
from ._layer cimport Layer, _pull_biases
from ._passes cimport _column_sums, _sample_rows_pass


cdef inline void _gram(Layer* layer, Py_ssize_t n, floating* gram) noexcept nogil:
    """``G = X_0 X_0^T`` of the layer's input (n x n)."""
    _product(False, True, 1, <floating*>layer.x_prev, n, layer.n_in, <floating*>layer.x_prev, n, layer.n_in, 0,
             gram, layer.product_blocks, layer.product_threads)


cdef inline void _low_rank_layer(Layer* layer, int penalty, Py_ssize_t n, const floating* gram,
                                 const floating* coefficients, double beta, double a_x, double c_z, double prox_c,
                                 floating* scratch) noexcept nogil:
    """The layer's pass with ``Z = beta P - G A`` in place of ``Z = X_0 W^T`` (``P`` in ``layer.base``)."""
    cdef floating* z = <floating*>layer.z
    cdef Py_ssize_t n_out = layer.n_out
    memcpy(z, layer.base, n * n_out * sizeof(floating))
    if beta != 1.0:
        _parallel_scal(n * n_out, <floating>beta, z, layer.product_threads)
    _product(False, False, -1, gram, n, n, coefficients, n, n_out, 1, z, layer.product_blocks,
             layer.product_threads)
    _sample_rows_pass(penalty, layer.kind, <floating>layer.param, z, <floating*>layer.b, <floating*>layer.x,
                      <floating*>layer.residual, NULL, <floating*>layer.v, <floating>a_x, <floating>c_z, False,
                      prox_c, <floating*>layer.x if prox_c > 0 else NULL, n, n_out, layer.n_threads, scratch)


cdef inline double _low_rank_step(Layer* layer, Py_ssize_t n, const floating* anchor, floating* coefficients,
                                  double beta, double step, double c, double decay, floating* sums) noexcept nogil:
    """The parameter step of the low-rank layer: ``A = d ((1 - c) A + step R)`` and the explicit
    bias step (pull ``c`` towards the anchor's bias; ``anchor`` NULL: ``c = 0``; the biases are not
    decayed); returns the next ``beta = d ((1 - c) beta + c)``."""
    cdef floating* b = <floating*>layer.b
    cdef Py_ssize_t n_out = layer.n_out
    if anchor == NULL:
        c = 0.0
    if c != 0.0:
        _pull_biases(layer, anchor, c, 0, n_out)
    if (1.0 - c) * decay != 1.0:
        _parallel_scal(n * n_out, <floating>((1.0 - c) * decay), coefficients, layer.product_threads)
    _parallel_axpy(n * n_out, <floating>(decay * step), <floating*>layer.residual, coefficients,
                   layer.product_threads)
    _column_sums(<floating*>layer.residual, n, n_out, b, <floating>(-step), True, sums)
    return decay * ((1.0 - c) * beta + c)


cdef inline void _form_weights(Layer* layer, Py_ssize_t n, const floating* coefficients, double* w_scale,
                               double beta, double min_scale) noexcept nogil:
    """``W = beta W^(0) - A^T X_0`` into the weights held as ``W / w_scale``: one product (BLAS's
    beta = 1) and ``w_scale *= beta``, normalised where that falls below ``min_scale``."""
    cdef double scale = w_scale[0] * beta
    _product(True, False, <floating>(-1.0 / scale), coefficients, n, layer.n_out, <floating*>layer.x_prev, n,
             layer.n_in, 1, <floating*>layer.w, layer.product_blocks, layer.product_threads)
    w_scale[0] = scale
    if scale < min_scale:
        _parallel_scal(layer.n_out * layer.n_in, <floating>scale, <floating*>layer.w, layer.product_threads)
        w_scale[0] = 1.0


cdef inline void _clear(floating* a, Py_ssize_t size) noexcept nogil:
    memset(a, 0, size * sizeof(floating))
