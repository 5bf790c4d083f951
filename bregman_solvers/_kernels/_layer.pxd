# One layer of a batch problem (``Layer``: raw pointers into the network's parameters,
# the batch's variables and the workspace, checked by ``_steps.ProximalSteps``), and the
# steps on one layer: its product and pass, the back term into the layer below, its
# scaled parameter step. nogil, trusting the pointers.

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.string cimport memcpy

from ._blas cimport _axpy, _gemm, _gemm_block, _gemm_blocks, _parallel_axpy, _parallel_scal, _product, _scal
from ._passes cimport _column_sums, _column_sums_strided, _sample_pass_row, _sample_rows_pass


ctypedef struct Layer:
    # W_l (n_out x n_in, held as W_l / w_scale[l]) and b_l, inside the parameter vector
    void* w
    void* b
    # the layer's input, its target (the next auxiliary variable, or the batch's target
    # for the last layer), pre-activation, residual, each sample's penalty, and the
    # x-step argument of its target (NULL for the last layer); batch arrays are (n, width)
    void* x_prev
    void* x
    void* z
    void* residual
    void* loss
    void* v
    # the input layer's product ``X_0 W^T`` kept for its low-rank steps (``_low_rank.pxd``),
    # written by every pass of the layer when not NULL
    void* base
    Py_ssize_t n_in, n_out, w_offset, b_offset
    int kind
    double param
    int n_threads           # OpenMP threads of the layer's pass
    int product_blocks      # blocks its products are split into (fixed: the results do not depend on threads)
    int product_threads     # OpenMP threads its products and parameter updates are spread over


cdef inline void _layer(Layer* layer, int penalty, Py_ssize_t n, floating scale, bint with_v, double a_x, double c_z,
                 double prox_c, bint with_loss, floating* scratch, Py_ssize_t widest,
                 bint forward=False) noexcept nogil:
    """One layer's product and pass (residual, ``V`` with ``with_v``, the penalties with
    ``with_loss``; ``Z`` not kept); ``prox_c > 0``: the pending x-step of its target first;
    ``forward``: its target set to the forward pass's ``sigma(Z + b)`` first.

    A product split into blocks runs in one parallel region with its pass (the pass's
    rows spread over the same threads after a barrier): the threads go from the one to
    the other without waiting to be woken (docs/performance.rst, "Threads"). Every
    block and row is computed as alone, so the result is that of the two calls.
    ``scratch`` holds a row of ``widest`` entries per thread.
    """
    cdef floating* x = <floating*>layer.x
    cdef floating* z = <floating*>layer.z
    cdef floating* x_out = x if prox_c > 0 or forward else NULL
    cdef floating* v = <floating*>layer.v if with_v else NULL   # (with_v whenever prox_c > 0)
    cdef floating* residual = <floating*>layer.residual
    cdef floating* base = <floating*>layer.base
    cdef floating* loss = <floating*>layer.loss if with_loss else NULL
    cdef floating* work
    cdef floating p = <floating>layer.param
    cdef Py_ssize_t n_out = layer.n_out, n_in = layer.n_in, block, t, start, stop, row, count
    cdef bint split_rows
    cdef int threads
    cdef double row_loss
    # Z = scale X W^T (n x n_out)
    count = _gemm_blocks(<int>n, <int>n_out, <int>n_in, layer.product_blocks, &split_rows, &block)
    threads = layer.product_threads if layer.product_threads < count else <int>count
    if threads <= 1:
        _product(False, True, scale, <floating*>layer.x_prev, n, n_in, <floating*>layer.w, n_out, n_in, 0, z,
                 layer.product_blocks, 1)
        if base != NULL:
            memcpy(base, z, n * n_out * sizeof(floating))
        _sample_rows_pass(penalty, layer.kind, p, z, <floating*>layer.b, x, residual, loss, v,
                          <floating>a_x, <floating>c_z, False, prox_c, x_out, n, n_out, layer.n_threads, scratch,
                          forward)
        return
    with parallel(num_threads=threads):
        work = scratch + threadid() * widest if with_loss else <floating*>NULL
        for t in prange(count, schedule="static"):
            start = t * block
            stop = start + block if start + block < (n if split_rows else n_out) else (n if split_rows else n_out)
            _gemm_block(False, True, split_rows, start, stop, <int>n, <int>n_out, <int>n_in, scale,
                        <floating*>layer.x_prev, <int>n_in, <floating*>layer.w, <int>n_in, 0, z, <int>n_out)
        # (the implicit barrier of the loop above: every block of Z is written)
        for row in prange(n, schedule="static"):
            if base != NULL:
                memcpy(base + row * n_out, z + row * n_out, n_out * sizeof(floating))
            row_loss = _sample_pass_row(penalty, layer.kind, p, z + row * n_out, <floating*>layer.b,
                                        x + row * n_out, residual + row * n_out,
                                        v + row * n_out if v != NULL else <floating*>NULL, <floating>a_x,
                                        <floating>c_z, False, prox_c,
                                        x_out + row * n_out if x_out != NULL else <floating*>NULL, work, n_out,
                                        forward)
            if with_loss:
                loss[row] = <floating>row_loss


cdef inline void _add_back_term(Layer* below, Layer* above, Py_ssize_t n, floating coefficient) noexcept nogil:
    """``V += coefficient R_above W_above`` into the ``V`` of the layer below (its target's x-step)."""
    _product(False, False, coefficient, <floating*>above.residual, n, above.n_out, <floating*>above.w,
             above.n_out, above.n_in, 1, <floating*>below.v, above.product_blocks, above.product_threads)


cdef inline void _parameter_step(Layer* layer, Py_ssize_t n, floating* anchor, double* w_scale, double anchor_scale,
                          double step, double c, double decay, double min_scale, floating* sums) noexcept nogil:
    """The scaled parameter step of one layer; ``anchor`` NULL: without the pull (``c = 0``).

    ``W/s += (c a / s') W_anchor - (step / s') R^T X`` with ``s' = (1 - c) s`` (the weights
    held as ``W / s``, ``a`` the anchor's scale): the pull is one pass (``axpy``) and the
    gradient product accumulates into the weights with BLAS's ``beta = 1``; the biases
    (a few hundred entries) are updated explicitly. A weight decay's prox (``SquaredL2``:
    ``W <- decay W``, ``decay = 1 / (1 + tau_theta alpha)``) after the step is only the new
    scale ``decay s'``: the stored entries move as without it. When the product splits into row
    blocks of W, each thread takes its blocks' output units whole: the pull of their
    weights and biases, their rows of the product and their bias sums, in one parallel
    region (the same operations on every entry as unsplit, so the same result).
    """
    cdef floating* w = <floating*>layer.w
    cdef floating* b = <floating*>layer.b
    cdef Py_ssize_t n_out = layer.n_out, n_in = layer.n_in, n_w = n_out * n_in, block, t, start, stop, count
    cdef bint split_rows
    cdef int threads
    cdef double scale
    cdef floating alpha
    if anchor == NULL:
        c = 0.0
    if w_scale[0] * (1.0 - c) * decay < min_scale and w_scale[0] != 1.0:
        _parallel_scal(n_w, <floating>w_scale[0], w, layer.product_threads)
        w_scale[0] = 1.0
    scale = w_scale[0] * (1.0 - c)
    alpha = <floating>(-step / scale)
    # the gradient product W += alpha R^T X: n_out x n_in
    count = _gemm_blocks(<int>n_out, <int>n_in, <int>n, layer.product_blocks, &split_rows, &block)
    threads = layer.product_threads if layer.product_threads < count else <int>count
    if split_rows and threads > 1:
        with parallel(num_threads=threads):
            for t in prange(count, schedule="static"):
                start = t * block
                stop = start + block if start + block < n_out else n_out
                _update_units(layer, n, anchor, anchor_scale, scale, step, c, alpha, start, stop, sums + start)
        w_scale[0] = scale * decay
        return
    if anchor != NULL:
        _parallel_axpy(n_w, <floating>(c * anchor_scale / scale), anchor + layer.w_offset, w,
                       layer.product_threads)
        _pull_biases(layer, anchor, c, 0, n_out)
    _product(True, False, alpha, <floating*>layer.residual, n, n_out, <floating*>layer.x_prev, n, n_in, 1, w,
             layer.product_blocks, layer.product_threads)
    w_scale[0] = scale * decay
    _column_sums(<floating*>layer.residual, n, n_out, b, <floating>(-step), True, sums)


cdef inline void _update_units(Layer* layer, Py_ssize_t n, floating* anchor, double anchor_scale, double scale,
                        double step, double c, floating alpha, Py_ssize_t start, Py_ssize_t stop,
                        floating* sums) noexcept nogil:
    """:func:`_parameter_step` for the output units ``[start, stop)``: their weights' and biases'
    pull, their rows of the gradient product, their bias sums (``sums``: a row of ``stop - start``)."""
    cdef floating* w = <floating*>layer.w + start * layer.n_in
    cdef floating* b = <floating*>layer.b + start
    cdef floating* residual = <floating*>layer.residual
    cdef Py_ssize_t units = stop - start, n_in = layer.n_in, n_out = layer.n_out
    if anchor != NULL:
        _axpy(units * n_in, <floating>(c * anchor_scale / scale), anchor + layer.w_offset + start * n_in, w)
        _pull_biases(layer, anchor, c, start, stop)
    # R: n x n_out, its columns [start, stop)
    _gemm(True, False, <int>units, <int>n_in, <int>n, alpha, residual + start, <int>n_out,
          <floating*>layer.x_prev, <int>n_in, 1, w, <int>n_in)
    _column_sums_strided(residual + start, n, units, n_out, b, <floating>(-step), True, sums)


cdef inline void _pull_biases(Layer* layer, const floating* anchor, double c, Py_ssize_t start,
                              Py_ssize_t stop) noexcept nogil:
    """The pull of biases ``[start, stop)`` towards the anchor's: ``b = (1 - c) b + c b_anchor``."""
    cdef floating* b = <floating*>layer.b + start
    _scal(stop - start, <floating>(1.0 - c), b)
    _axpy(stop - start, <floating>c, anchor + layer.b_offset + start, b)
