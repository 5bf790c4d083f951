# The second half of an inner step (``_steps.pyx``): every layer's back term into the
# x-step argument of the layer below, then every layer's parameter step, in ONE parallel
# region of two work-sharing loops. The back terms read the weights that the steps then
# change, hence the barrier between the loops; layers do not depend on each other within
# a loop. Each task is one block of one layer's product (or a layer whose product is not
# split), the block that the layer-by-layer calls compute, so the result is theirs to the
# bit; one region with two barriers instead of a region per back term and per parameter
# step saves the threads' waits and wake-ups between them (docs/performance.rst,
# "Threads"). nogil, trusting the pointers.

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid

from ._blas cimport _gemm_block, _gemm_blocks
from ._layer cimport Layer, _parameter_step, _pull_biases, _update_units
from ._low_rank cimport _low_rank_step
from ._passes cimport _column_sums


cdef inline bint _sweep_applies(Layer* layers, int L, const floating* anchor, const double* w_scale,
                                const double* pull, const double* decay, double min_scale,
                                bint low_rank) noexcept nogil:
    """Whether :func:`_back_terms_and_steps` may take this step: products spread over threads,
    and no layer's weights due for normalising (a pass over them that the back terms must
    not see half done: such a step, a few in a hundred, takes the layer-by-layer calls)."""
    cdef int l
    cdef double c
    if layers[0].product_threads <= 1:
        return False
    for l in range(1 if low_rank else 0, L):
        c = pull[l] if anchor != NULL else 0.0
        if w_scale[l] * (1.0 - c) * decay[l] < min_scale and w_scale[l] != 1.0:
            return False
    return True


cdef inline int _layer_tasks(Layer* layer, Py_ssize_t n, bint back, bint* split_rows,
                             Py_ssize_t* block) noexcept nogil:
    """The blocks of a layer's back-term (``back``) or gradient product, as the layer-by-layer
    calls split it (one block: not split)."""
    if back:
        return <int>_gemm_blocks(<int>n, <int>layer.n_in, <int>layer.n_out, layer.product_blocks, split_rows, block)
    return <int>_gemm_blocks(<int>layer.n_out, <int>layer.n_in, <int>n, layer.product_blocks, split_rows, block)


cdef inline int _find_task(Layer* layers, int first, int L, Py_ssize_t n, bint back, int task,
                           bint* split_rows, Py_ssize_t* block, int* index) noexcept nogil:
    """The layer of loop task ``task`` (layers ``first`` to ``L - 1``, each its blocks in turn),
    with its split and its block's ``index``; -1 past the last task."""
    cdef int l, count
    for l in range(first, L):
        count = _layer_tasks(&layers[l], n, back, split_rows, block)
        if task < count:
            index[0] = task
            return l
        task -= count
    return -1


cdef inline int _count_tasks(Layer* layers, int first, int L, Py_ssize_t n, bint back) noexcept nogil:
    cdef int l, total = 0
    cdef bint split_rows
    cdef Py_ssize_t block
    for l in range(first, L):
        total += _layer_tasks(&layers[l], n, back, &split_rows, &block)
    return total


cdef inline void _back_terms_and_steps(Layer* layers, int L, Py_ssize_t n, floating* anchor,
                                       const double* anchor_scale, double* w_scale, const double* step,
                                       const double* pull, const double* decay, const double* back, bint with_back,
                                       bint low_rank, floating* coefficients, double* beta, floating* scratch,
                                       Py_ssize_t widest) noexcept nogil:
    """``V_h += back_h s R_{h+1} W_{h+1}`` for every hidden layer (with ``with_back``), then every layer's scaled
    parameter step (:func:`_parameter_step`; the input layer's :func:`_low_rank_step` with
    ``low_rank``, ``beta`` its multiple of the start weights, updated), in one parallel region
    over the layers' product threads. Needs :func:`_sweep_applies`; ``scratch`` holds a row of
    ``widest`` entries per thread (the bias sums)."""
    cdef int n_back = _count_tasks(layers, 1, L, n, True) if with_back else 0
    cdef int first = 1 if low_rank else 0
    cdef int n_steps = _count_tasks(layers, first, L, n, False) + (1 if low_rank else 0)
    cdef int task, l, index
    cdef bint split_rows
    cdef Py_ssize_t block, start, stop, extent
    cdef double c, scale
    cdef floating* sums
    cdef Layer* layer
    with parallel(num_threads=layers[0].product_threads):
        sums = scratch + threadid() * widest
        # tasks dealt round-robin: a layer's blocks are consecutive, so each thread gets one of each
        for task in prange(n_back, schedule="static", chunksize=1):
            l = _find_task(layers, 1, L, n, True, task, &split_rows, &block, &index)
            layer = &layers[l]
            extent = n if split_rows else layer.n_in
            start = index * block
            stop = start + block if start + block < extent else extent
            _gemm_block(False, False, split_rows, start, stop, <int>n, <int>layer.n_in, <int>layer.n_out,
                        <floating>(back[l - 1] * w_scale[l]), <floating*>layer.residual, <int>layer.n_out,
                        <floating*>layer.w, <int>layer.n_in, 1, <floating*>layers[l - 1].v, <int>layer.n_in)
        # (the implicit barrier: every back term has read its weights)
        for task in prange(n_steps, schedule="static", chunksize=1):
            if low_rank and task == 0:
                beta[0] = _low_rank_step(&layers[0], n, anchor, coefficients, beta[0], step[0], pull[0], decay[0],
                                         sums)
            else:
                l = _find_task(layers, first, L, n, False, task - (1 if low_rank else 0), &split_rows, &block,
                               &index)
                layer = &layers[l]
                c = pull[l] if anchor != NULL else 0.0
                scale = w_scale[l] * (1.0 - c)
                start = index * block
                extent = layer.n_out if split_rows else layer.n_in
                stop = start + block if start + block < extent else extent
                if split_rows:
                    _update_units(layer, n, anchor, anchor_scale[l], scale, step[l], c,
                                  <floating>(-step[l] / scale), start, stop, sums)
                else:
                    _update_columns(layer, n, anchor, anchor_scale[l], scale, step[l], c,
                                    <floating>(-step[l] / scale), start, stop, index == 0, sums)
    for l in range(first, L):
        c = pull[l] if anchor != NULL else 0.0
        w_scale[l] = w_scale[l] * (1.0 - c) * decay[l]


cdef inline void _update_columns(Layer* layer, Py_ssize_t n, floating* anchor, double anchor_scale, double scale,
                                 double step, double c, floating alpha, Py_ssize_t start, Py_ssize_t stop,
                                 bint with_biases, floating* sums) noexcept nogil:
    """:func:`_parameter_step` for the input units ``[start, stop)`` (columns of W, a product
    split in columns): their weights' pull and columns of the gradient product; ``with_biases``:
    the biases' pull and step too (``sums``: a row of n_out)."""
    cdef floating* w = <floating*>layer.w
    cdef floating* a
    cdef floating coefficient = <floating>(c * anchor_scale / scale)
    cdef Py_ssize_t n_in = layer.n_in, row, j
    if anchor != NULL:
        a = anchor + layer.w_offset
        for row in range(layer.n_out):
            for j in range(start, stop):
                w[row * n_in + j] = w[row * n_in + j] + coefficient * a[row * n_in + j]
        if with_biases:
            _pull_biases(layer, anchor, c, 0, layer.n_out)
    _gemm_block(True, False, False, start, stop, <int>layer.n_out, <int>n_in, <int>n, alpha,
                <floating*>layer.residual, <int>layer.n_out, <floating*>layer.x_prev, <int>n_in, 1, w, <int>n_in)
    if with_biases:
        _column_sums(<floating*>layer.residual, n, layer.n_out, <floating*>layer.b, <floating>(-step), True, sums)
