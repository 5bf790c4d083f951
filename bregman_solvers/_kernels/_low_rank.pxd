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
from cython.parallel cimport parallel, prange
from libc.string cimport memcpy, memset

from ._blas cimport _gemm_block, _gemm_blocks, _parallel_scal, _product, _vector_blocks
from ._layer cimport Layer, _pull_biases
from ._passes cimport _column_sums_strided, _sample_pass_row, _sample_rows_pass


cdef inline void _gram(Layer* layer, Py_ssize_t n, floating* gram) noexcept nogil:
    """``G = X_0 X_0^T`` of the layer's input (n x n)."""
    _product(False, True, 1, <floating*>layer.x_prev, n, layer.n_in, <floating*>layer.x_prev, n, layer.n_in, 0,
             gram, layer.product_blocks, layer.product_threads)


cdef inline void _low_rank_layer(Layer* layer, int penalty, Py_ssize_t n, const floating* gram,
                                 const floating* coefficients, double beta, double a_x, double c_z, double prox_c,
                                 floating* scratch) noexcept nogil:
    """The layer's pass with ``Z = beta P - G A`` in place of ``Z = X_0 W^T`` (``P`` in ``layer.base``).

    Like :func:`_layer`, a split product runs in one parallel region with its pass: each
    block of ``Z`` is copied from ``P``, scaled and given its product, then the pass's rows
    are spread over the same threads, so neither the copy nor the pass runs on one thread
    while the others fall asleep. The blocks are those of the unfused calls (the same result).
    """
    cdef floating* z = <floating*>layer.z
    cdef floating* x = <floating*>layer.x
    cdef floating* v = <floating*>layer.v
    cdef floating* x_out = x if prox_c > 0 else NULL
    cdef const floating* base = <floating*>layer.base
    cdef Py_ssize_t n_out = layer.n_out, block, t, start, stop, row
    cdef bint split_rows
    cdef int threads
    cdef Py_ssize_t count = _gemm_blocks(<int>n, <int>n_out, <int>n, layer.product_blocks, &split_rows, &block)
    threads = layer.product_threads if layer.product_threads < count else <int>count
    if threads <= 1:
        _scaled_copy(base, z, n * n_out, beta)
        _product(False, False, -1, gram, n, n, coefficients, n, n_out, 1, z, layer.product_blocks, 1)
        _sample_rows_pass(penalty, layer.kind, <floating>layer.param, z, <floating*>layer.b, x,
                          <floating*>layer.residual, NULL, v, <floating>a_x, <floating>c_z, False, prox_c, x_out, n,
                          n_out, layer.n_threads, scratch)
        return
    with parallel(num_threads=threads):
        for t in prange(count, schedule="static"):
            start = t * block
            stop = start + block if start + block < (n if split_rows else n_out) else (n if split_rows else n_out)
            if split_rows:
                _scaled_copy(base + start * n_out, z + start * n_out, (stop - start) * n_out, beta)
            else:
                for row in range(n):
                    _scaled_copy(base + row * n_out + start, z + row * n_out + start, stop - start, beta)
            _gemm_block(False, False, split_rows, start, stop, <int>n, <int>n_out, <int>n, -1, gram, <int>n,
                        coefficients, <int>n_out, 1, z, <int>n_out)
        # (the implicit barrier of the loop above: every block of Z is written)
        for row in prange(n, schedule="static"):
            _sample_pass_row(penalty, layer.kind, <floating>layer.param, z + row * n_out, <floating*>layer.b,
                             x + row * n_out, <floating*>layer.residual + row * n_out,
                             v + row * n_out if v != NULL else <floating*>NULL, <floating>a_x, <floating>c_z, False,
                             prox_c, x_out + row * n_out if x_out != NULL else <floating*>NULL, <floating*>NULL,
                             n_out)


cdef inline void _scaled_copy(const floating* source, floating* target, Py_ssize_t size, double beta) noexcept nogil:
    """``target = beta source`` (a plain copy when ``beta`` is 1, as the scaling pass it replaces)."""
    cdef Py_ssize_t i
    cdef floating scale = <floating>beta
    if beta == 1.0:
        memcpy(target, source, size * sizeof(floating))
        return
    for i in range(size):
        target[i] = scale * source[i]


cdef inline double _low_rank_step(Layer* layer, Py_ssize_t n, const floating* anchor, floating* coefficients,
                                  double beta, double step, double c, double decay, floating* sums) noexcept nogil:
    """The parameter step of the low-rank layer: ``A = d ((1 - c) A + step R)`` and the explicit
    bias step (pull ``c`` towards the anchor's bias; ``anchor`` NULL: ``c = 0``; the biases are not
    decayed); returns the next ``beta = d ((1 - c) beta + c)``.

    One pass over ``A`` (the pull's scaling and the step together), split into blocks of
    output units (columns of ``A`` and ``R``) over the layer's product threads when the batch
    is large enough to pay for them: each entry gets the same operations wherever its block
    starts, and each bias sum adds its column in row order, so the result depends on neither."""
    cdef Py_ssize_t n_out = layer.n_out, n_blocks, block, t, start
    if anchor == NULL:
        c = 0.0
    n_blocks = _vector_blocks(n * n_out, layer.product_threads, &block)
    if n_blocks <= 1:
        _update_coefficients(layer, n, anchor, coefficients, step, c, decay, 0, n_out, sums)
    else:
        block = (n_out + n_blocks - 1) // n_blocks
        for t in prange(n_blocks, schedule="static", num_threads=<int>n_blocks):
            start = t * block
            if start < n_out:
                _update_coefficients(layer, n, anchor, coefficients, step, c, decay, start,
                                     start + block if start + block < n_out else n_out, sums)
    return decay * ((1.0 - c) * beta + c)


cdef inline void _update_coefficients(Layer* layer, Py_ssize_t n, const floating* anchor, floating* coefficients,
                                      double step, double c, double decay, Py_ssize_t start, Py_ssize_t stop,
                                      floating* sums) noexcept nogil:
    """:func:`_low_rank_step` for the output units ``[start, stop)`` (``sums``: a row of n_out)."""
    cdef Py_ssize_t n_out = layer.n_out, i, j
    cdef const floating* residual = <floating*>layer.residual
    cdef floating keep = <floating>((1.0 - c) * decay), gain = <floating>(decay * step)
    cdef floating* row
    if c != 0.0:
        _pull_biases(layer, anchor, c, start, stop)
    for i in range(n):
        row = coefficients + i * n_out
        if keep != 1:
            for j in range(start, stop):
                row[j] = keep * row[j]
        for j in range(start, stop):
            row[j] = row[j] + gain * residual[i * n_out + j]
    _column_sums_strided(residual + start, n, stop - start, n_out, <floating*>layer.b + start,
                         <floating>(-step), True, sums + start)


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
