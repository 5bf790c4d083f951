# cython: language_level=3
"""The inner iterations of implicit SGD on one batch, in one call without the GIL.

:class:`ProximalSteps` holds the arrays of one batch problem (the network's
parameters, the batch's variables, the workspace) as raw pointers, checked once
when it is made; :meth:`ProximalSteps.run` then takes K proximal-gradient steps
(eq. 17 on the batch energy with the proximity term of eq. 24) as
``StepEngine`` takes them in Python, call for call, so the iterates are the
same to the bit:

* step 0: the scaled parameter step (no pull: it starts at the anchor);
* steps 1 .. K - 1: every layer's pass (GEMM ``Z = s X_prev W^T`` and the fused
  pass that first takes the previous x-step of the layer's target, then computes
  the residual and the next x-step's argument ``V``), the back terms
  ``V_h += back s R_{h+1} W_{h+1}``, then the scaled parameter step with the pull
  ``W/s += (c a / s') W_anchor - (step / s') R^T X``;
* at the end, the last x-step ``x_h = prox_{c Psi}(V_h)``.

The batch may be stored with samples or with features as rows (the products
then in transposed form, as ``FeatureRowsEngine`` has them). Measured on a
784-784-784-784-10 batch of 100 with K = 10 (``benchmarks/profile_batch.py``):
the K steps take 5-6% less time than the Python loop's calls with their
argument checks.
"""
import numpy as np

cimport numpy as cnp

cnp.import_array()

include "_rows.pxi"
include "_passes.pxi"


ctypedef struct Layer:
    # W_l (n_out x n_in, held as W_l / w_scale[l]) and b_l, inside the parameter vector
    void* w
    void* b
    # the layer's input, its target (the next auxiliary variable, or the batch's
    # target for the last layer), pre-activation, residual, and the x-step argument
    # of its target (NULL for the last layer); every one of shape (n, width) or (width, n)
    void* x_prev
    void* x
    void* z
    void* residual
    void* v
    Py_ssize_t n_in, n_out, w_offset, b_offset
    int kind
    double param
    int n_threads           # OpenMP threads of the layer's pass
    int product_blocks      # blocks its products are split into (fixed: the results do not depend on threads)
    int product_threads     # OpenMP threads its products and parameter updates are spread over


cdef class ProximalSteps:
    """The arrays of one batch problem, for :meth:`run` (see the module docstring).

    Parameters
    ----------
    penalty : int
        Code of the lifted penalty (``_lifted.PENALTY_CODES``).
    features_as_rows : bool
        Whether the batch arrays are stored ``(width, n_samples)``.
    weights, biases : list of ndarray
        The network's parameters (views of its parameter vector, ``bounds`` its layer offsets).
    xs : list of ndarray
        ``[X_0, X_1, ..., X_{L-1}, target]`` of the batch.
    z, residual, v : list of ndarray
        The workspace (``v``: one per hidden layer).
    kinds, params, threads : sequences
        Activation code and parameter, and OpenMP threads of the passes, per layer.
    bounds : ndarray of intp
        Offsets of the layers in the parameter vector (``n_layers + 1``).
    product_blocks, product_threads : int, default 1
        Blocks each matrix product is split into, and threads they and the parameter
        updates are spread over (each thread calls BLAS on its blocks; BLAS itself
        should then run one thread). See ``_passes.pxi``, ``_parallel_gemm``.

    The arrays must stay alive and in place while the object is used: it keeps
    references to them.
    """

    cdef Layer* layers
    cdef int n_layers, penalty
    cdef bint features_as_rows, single
    cdef Py_ssize_t n_samples, n_parameters
    cdef void* scratch
    cdef object dtype
    cdef list arrays

    def __cinit__(self):
        self.layers = NULL
        self.scratch = NULL

    def __init__(self, int penalty, bint features_as_rows, list weights not None, list biases not None,
                 list xs not None, list z not None, list residual not None, list v not None, kinds, params,
                 threads, bounds, int product_blocks=1, int product_threads=1):
        cdef int L = len(weights), l
        free(self.layers)           # __init__ called again: start afresh
        free(self.scratch)
        self.layers, self.scratch, self.n_layers = NULL, NULL, 0
        if L < 1:
            raise ValueError("weights must list at least one layer")
        if product_blocks < 1 or product_threads < 1:
            raise ValueError(f"product_blocks and product_threads must be >= 1, got {product_blocks} and "
                             f"{product_threads}")
        if penalty < 0 or penalty > 2:
            raise ValueError(f"penalty must be 0, 1 or 2, got {penalty}")
        for name, seq, expected in [("biases", biases, L), ("xs", xs, L + 1), ("z", z, L), ("residual", residual, L),
                                    ("v", v, L - 1), ("kinds", kinds, L), ("params", params, L),
                                    ("threads", threads, L), ("bounds", bounds, L + 1)]:
            if len(seq) != expected:
                raise ValueError(f"{name} must have {expected} entries, got {len(seq)}")
        self.dtype = np.asarray(weights[0]).dtype
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"weights must be float32 or float64, got {self.dtype}")
        self.single = self.dtype == np.float32
        self.penalty = penalty
        self.features_as_rows = features_as_rows
        n_axis = 1 if features_as_rows else 0
        self.n_samples = np.shape(xs[0])[n_axis] if np.ndim(xs[0]) == 2 else 0
        if self.n_samples < 1:
            raise ValueError("xs[0] must be a batch of at least one sample")
        self.n_parameters = int(bounds[L])
        self.arrays = []
        self.layers = <Layer*>_work_space(L * sizeof(Layer), "ProximalSteps")
        self.n_layers = L
        cdef Py_ssize_t widest = 1
        for l in range(L):
            n_out, n_in = np.shape(weights[l]) if np.ndim(weights[l]) == 2 else (0, 0)
            if n_out < 1 or n_in < 1:
                raise ValueError(f"weights[{l}] must be a non-empty matrix, got shape {np.shape(weights[l])}")
            if int(bounds[l + 1]) - int(bounds[l]) != n_out * (n_in + 1):
                raise ValueError(f"bounds do not match the shapes of layer {l}")
            kind = int(kinds[l])
            if kind < IDENTITY or kind > SOFTMAX or (features_as_rows and kind == SOFTMAX):
                raise ValueError(f"kinds[{l}] must be the code of an activation"
                                 f"{' acting entrywise' if features_as_rows else ''}, got {kind}")
            if int(threads[l]) < 1:
                raise ValueError(f"threads[{l}] must be >= 1, got {threads[l]}")
            self.layers[l].w = self._data(weights[l], (n_out, n_in), f"weights[{l}]")
            self.layers[l].b = self._data(biases[l], (n_out,), f"biases[{l}]")
            self.layers[l].x_prev = self._data(xs[l], self._batch_shape(n_in), f"xs[{l}]")
            self.layers[l].x = self._data(xs[l + 1], self._batch_shape(n_out), f"xs[{l + 1}]")
            self.layers[l].z = self._data(z[l], self._batch_shape(n_out), f"z[{l}]")
            self.layers[l].residual = self._data(residual[l], self._batch_shape(n_out), f"residual[{l}]")
            self.layers[l].v = (self._data(v[l], self._batch_shape(n_out), f"v[{l}]") if l < L - 1 else NULL)
            self.layers[l].n_in, self.layers[l].n_out = n_in, n_out
            self.layers[l].w_offset = int(bounds[l])
            self.layers[l].b_offset = int(bounds[l]) + n_out * n_in
            self.layers[l].kind, self.layers[l].param = kind, float(params[l])
            self.layers[l].n_threads = int(threads[l])
            self.layers[l].product_blocks = product_blocks
            self.layers[l].product_threads = product_threads
            widest = max(widest, n_out)
        # work space: the bias sums' row (samples as rows) or each thread's two rows of
        # the feature-rows pass
        cdef Py_ssize_t entries = (2 * self.n_samples * max(max(int(t) for t in threads), product_threads)
                                   if features_as_rows else widest)
        self.scratch = _work_space(entries * (4 if self.single else 8), "ProximalSteps")

    def __dealloc__(self):
        free(self.layers)
        free(self.scratch)

    cdef tuple _batch_shape(self, Py_ssize_t width):
        return (width, self.n_samples) if self.features_as_rows else (self.n_samples, width)

    cdef void* _data(self, a, tuple shape, str name, bint keep=True, bint writable=True) except NULL:
        """The data pointer of a C-contiguous (and ``writable``) array of this dtype and ``shape``
        (with ``keep``, a reference is kept for the object's lifetime)."""
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
        if a.dtype != self.dtype:
            raise TypeError(f"{name} must have dtype {self.dtype}, got {a.dtype}")
        if a.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
        if writable and not a.flags.writeable:
            raise ValueError(f"{name} must be writable")
        if keep:
            self.arrays.append(a)
        return cnp.PyArray_DATA(<cnp.ndarray>a)

    def run(self, int n_steps, anchor, const double[::1] anchor_scale, double[::1] w_scale,
            const double[::1] step, const double[::1] pull, const double[::1] a_x, const double[::1] c_z,
            const double[::1] back, const double[::1] prox_c, double min_scale):
        """Take ``n_steps`` proximal-gradient steps from the current iterate, in place.

        The first evaluation of the layers (the one that reports the batch energy and
        prepares ``V``) has been done; ``run`` continues from there.

        Parameters
        ----------
        n_steps : int
            K >= 1.
        anchor : ndarray or None
            The flat parameter vector theta^k of the proximity term, its weights held
            as ``W / anchor_scale``; None: no proximity term (``pull`` is then unused).
        anchor_scale, w_scale : float64 arrays of length L
            The scales of the anchor's and of the network's weights; ``w_scale`` is updated.
        step : float64 array of length L
            ``tau_theta_l lambda_l / n_samples``: the parameter step on the summed residuals.
        pull : float64 array of length L
            ``c_l = tau_theta_l / tau`` in ``(0, 1)``: the weight of the anchor in a step.
        a_x, c_z, back, prox_c : float64 arrays of length L - 1
            The x-step's coefficients per hidden layer (``StepEngine.x_coefficients``):
            ``V_h = a_x X_h + c_z Z_h + back R_{h+1} W_{h+1}``, ``X_h = prox_{prox_c Psi}(V_h)``.
        min_scale : float
            Weights whose scale would fall below it are normalised first.
        """
        cdef int L = self.n_layers, l
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        # lengths compared as C integers: no Python objects made per call
        _check_length("anchor_scale", anchor_scale.shape[0], L)
        _check_length("w_scale", w_scale.shape[0], L)
        _check_length("step", step.shape[0], L)
        _check_length("pull", pull.shape[0], L)
        _check_length("a_x", a_x.shape[0], L - 1)
        _check_length("c_z", c_z.shape[0], L - 1)
        _check_length("back", back.shape[0], L - 1)
        _check_length("prox_c", prox_c.shape[0], L - 1)
        for l in range(L):
            if not (0 < w_scale[l] < INFINITY) or not (0 < anchor_scale[l] < INFINITY):
                raise ValueError("w_scale and anchor_scale must be positive and finite")
            if anchor is not None and not (0 < pull[l] < 1):
                raise ValueError(f"pull must lie in (0, 1), got {pull[l]}")
        for l in range(L - 1):
            if self.penalty != 2 and not (0 < prox_c[l] < INFINITY):
                raise ValueError(f"prox_c must be positive and finite, got {prox_c[l]}")
        cdef void* anchor_data = NULL
        if anchor is not None:
            anchor_data = self._data(anchor, (self.n_parameters,), "anchor", keep=False, writable=False)
        if not 0 < min_scale <= 1:
            raise ValueError(f"min_scale must lie in (0, 1], got {min_scale}")
        with nogil:
            if self.single:
                _steps(<float*>anchor_data, self.layers, L, self.penalty, self.features_as_rows, self.n_samples,
                       n_steps, &anchor_scale[0], &w_scale[0], &step[0], &pull[0], &a_x[0] if L > 1 else NULL,
                       &c_z[0] if L > 1 else NULL, &back[0] if L > 1 else NULL, &prox_c[0] if L > 1 else NULL,
                       min_scale, <float*>self.scratch)
            else:
                _steps(<double*>anchor_data, self.layers, L, self.penalty, self.features_as_rows, self.n_samples,
                       n_steps, &anchor_scale[0], &w_scale[0], &step[0], &pull[0], &a_x[0] if L > 1 else NULL,
                       &c_z[0] if L > 1 else NULL, &back[0] if L > 1 else NULL, &prox_c[0] if L > 1 else NULL,
                       min_scale, <double*>self.scratch)


cdef int _check_length(str name, Py_ssize_t length, Py_ssize_t expected) except -1:
    if length != expected:
        raise ValueError(f"{name} must have length {expected}, got {length}")
    return 0


cdef void _layer(Layer* layer, int penalty, bint features_as_rows, Py_ssize_t n, floating scale, double a_x,
                 double c_z, double prox_c, floating* scratch) noexcept nogil:
    """One layer's GEMM and pass (residual and ``V``, no loss, ``Z`` not kept); ``prox_c > 0``:
    the pending x-step of its target first.

    A product split into blocks runs in one parallel region with its pass (the pass's
    rows spread over the same threads after a barrier): the threads go from the one to
    the other without waiting to be woken, which costs 100-400 us on a virtual machine.
    Every block and row is computed as alone, so the result is that of the two calls.
    """
    cdef floating* w = <floating*>layer.w
    cdef floating* x_prev = <floating*>layer.x_prev
    cdef floating* x = <floating*>layer.x
    cdef floating* z = <floating*>layer.z
    cdef floating* x_out = x if prox_c > 0 else NULL
    cdef floating* v = <floating*>layer.v
    cdef floating* residual = <floating*>layer.residual
    cdef floating* b = <floating*>layer.b
    cdef floating p = <floating>layer.param
    cdef Py_ssize_t n_out = layer.n_out, n_in = layer.n_in, block, t, start, stop, row, extent
    cdef bint split_rows
    cdef floating* bias_row
    cdef Py_ssize_t count
    cdef int threads
    # Z = scale X W^T (samples as rows: n x n_out) or Z^T = scale W X^T (features as rows: n_out x n)
    cdef int m = <int>(n_out if features_as_rows else n), cols = <int>(n if features_as_rows else n_out)
    count = _gemm_blocks(m, cols, <int>n_in, layer.product_blocks, &split_rows, &block)
    threads = layer.product_threads if layer.product_threads < count else <int>count
    if threads <= 1:
        if features_as_rows:
            _product(False, False, scale, w, n_out, n_in, x_prev, n_in, n, 0, z, layer.product_blocks, 1)
            _feature_rows_pass(penalty, layer.kind, p, z, b, x, residual, NULL, v, <floating>a_x, <floating>c_z,
                               False, prox_c, x_out, n_out, n, layer.n_threads, scratch)
        else:
            _product(False, True, scale, x_prev, n, n_in, w, n_out, n_in, 0, z, layer.product_blocks, 1)
            _sample_rows_pass(penalty, layer.kind, p, z, b, x, residual, NULL, v, <floating>a_x, <floating>c_z,
                              False, prox_c, x_out, n, n_out, layer.n_threads, NULL)
        return
    extent = m if split_rows else cols
    with parallel(num_threads=threads):
        bias_row = scratch + threadid() * 2 * n if features_as_rows else <floating*>NULL
        for t in prange(count, schedule="static"):
            start = t * block
            stop = start + block if start + block < extent else extent
            if features_as_rows:
                _gemm_block(False, False, split_rows, start, stop, m, cols, <int>n_in, scale, w, <int>n_in,
                            x_prev, <int>n, 0, z, cols)
            else:
                _gemm_block(False, True, split_rows, start, stop, m, cols, <int>n_in, scale, x_prev, <int>n_in,
                            w, <int>n_in, 0, z, cols)
        # (the implicit barrier of the loop above: every block of Z is written)
        for row in prange(m, schedule="static"):
            if features_as_rows:
                _feature_pass_row(penalty, layer.kind, p, z + row * n, b[row], x + row * n, residual + row * n,
                                  v + row * n if v != NULL else <floating*>NULL, <floating>a_x, <floating>c_z,
                                  False, prox_c, x_out + row * n if x_out != NULL else <floating*>NULL, bias_row,
                                  NULL, n)
            else:
                _sample_pass_row(penalty, layer.kind, p, z + row * n_out, b, x + row * n_out,
                                 residual + row * n_out, v + row * n_out if v != NULL else <floating*>NULL,
                                 <floating>a_x, <floating>c_z, False, prox_c,
                                 x_out + row * n_out if x_out != NULL else <floating*>NULL, NULL, n_out)


cdef void _add_back_term(Layer* below, Layer* above, bint features_as_rows, Py_ssize_t n,
                         floating coefficient) noexcept nogil:
    """``V += coefficient R_above W_above`` into the ``V`` of the layer below (its target's x-step)."""
    if features_as_rows:
        _product(True, False, coefficient, <floating*>above.w, above.n_out, above.n_in,
                 <floating*>above.residual, above.n_out, n, 1, <floating*>below.v, above.product_blocks,
                 above.product_threads)
    else:
        _product(False, False, coefficient, <floating*>above.residual, n, above.n_out,
                 <floating*>above.w, above.n_out, above.n_in, 1, <floating*>below.v, above.product_blocks,
                 above.product_threads)


cdef void _parameter_step(Layer* layer, bint features_as_rows, Py_ssize_t n, floating* anchor, double* w_scale,
                          double anchor_scale, double step, double c, double min_scale,
                          floating* scratch) noexcept nogil:
    """The scaled proximity step of one layer (``StepEngine._scaled_proximity_step``);
    ``anchor`` NULL: without the pull (``c = 0``).

    When the gradient product splits into row blocks of W, each thread takes its
    blocks' output units whole: the pull of their weights and biases, their rows of the
    product and their bias sums, in one parallel region (the same operations on every
    entry as the unsplit calls, so the same result).
    """
    cdef floating* w = <floating*>layer.w
    cdef floating* b = <floating*>layer.b
    cdef floating* residual = <floating*>layer.residual
    cdef floating* x_prev = <floating*>layer.x_prev
    cdef Py_ssize_t n_out = layer.n_out, n_in = layer.n_in, n_w = n_out * n_in, block, t, start, stop
    cdef Py_ssize_t count
    cdef bint split_rows
    cdef int threads
    cdef double scale
    cdef floating alpha
    if anchor == NULL:
        c = 0.0
    if w_scale[0] * (1.0 - c) < min_scale and w_scale[0] != 1.0:
        _parallel_scal(n_w, <floating>w_scale[0], w, layer.product_threads)
        w_scale[0] = 1.0
    scale = w_scale[0] * (1.0 - c)
    alpha = <floating>(-step / scale)
    # the gradient product W += alpha R^T X (samples as rows) or alpha R X^T (features as rows): n_out x n_in
    count = _gemm_blocks(<int>n_out, <int>n_in, <int>n, layer.product_blocks, &split_rows, &block)
    threads = layer.product_threads if layer.product_threads < count else <int>count
    if split_rows and threads > 1:
        with parallel(num_threads=threads):
            for t in prange(count, schedule="static"):
                start = t * block
                stop = start + block if start + block < n_out else n_out
                _update_units(layer, features_as_rows, n, anchor, anchor_scale, scale, step, c, alpha, start,
                              stop, scratch)
        w_scale[0] = scale
        return
    if anchor != NULL:
        _parallel_axpy(n_w, <floating>(c * anchor_scale / scale), anchor + layer.w_offset, w,
                       layer.product_threads)
        # the biases explicitly (a few hundred entries)
        _scal(n_out, <floating>(1.0 - c), b)
        _axpy(n_out, <floating>c, anchor + layer.b_offset, b)
    if features_as_rows:
        _product(False, True, alpha, residual, n_out, n, x_prev, n_in, n, 1, w, layer.product_blocks,
                 layer.product_threads)
    else:
        _product(True, False, alpha, residual, n, n_out, x_prev, n, n_in, 1, w, layer.product_blocks,
                 layer.product_threads)
    w_scale[0] = scale
    if features_as_rows:
        _row_sums(residual, n_out, n, b, <floating>(-step), True)
    else:
        _column_sums(residual, n, n_out, b, <floating>(-step), True, scratch)


cdef void _update_units(Layer* layer, bint features_as_rows, Py_ssize_t n, floating* anchor, double anchor_scale,
                        double scale, double step, double c, floating alpha, Py_ssize_t start, Py_ssize_t stop,
                        floating* sums) noexcept nogil:
    """:func:`_parameter_step` for the output units ``[start, stop)``: their weights' and biases'
    pull, their rows of the gradient product, their bias sums (``sums``: a row of n_out)."""
    cdef floating* w = <floating*>layer.w + start * layer.n_in
    cdef floating* b = <floating*>layer.b + start
    cdef floating* residual = <floating*>layer.residual
    cdef Py_ssize_t units = stop - start, n_in = layer.n_in, n_out = layer.n_out
    if anchor != NULL:
        _axpy(units * n_in, <floating>(c * anchor_scale / scale), anchor + layer.w_offset + start * n_in, w)
        _scal(units, <floating>(1.0 - c), b)
        _axpy(units, <floating>c, anchor + layer.b_offset + start, b)
    if features_as_rows:      # R: n_out x n, rows [start, stop)
        _gemm(False, True, <int>units, <int>n_in, <int>n, alpha, residual + start * n, <int>n,
              <floating*>layer.x_prev, <int>n, 1, w, <int>n_in)
        _row_sums(residual + start * n, units, n, b, <floating>(-step), True)
    else:                     # R: n x n_out, columns [start, stop)
        _gemm(True, False, <int>units, <int>n_in, <int>n, alpha, residual + start, <int>n_out,
              <floating*>layer.x_prev, <int>n_in, 1, w, <int>n_in)
        _column_sums_strided(residual + start, n, units, n_out, b, <floating>(-step), True, sums + start)


cdef void _steps(floating* anchor, Layer* layers, int L, int penalty, bint features_as_rows, Py_ssize_t n,
                 int n_steps, const double* anchor_scale, double* w_scale, const double* step, const double* pull,
                 const double* a_x, const double* c_z, const double* back, const double* prox_c, double min_scale,
                 floating* scratch) noexcept nogil:
    """The loop of :meth:`ProximalSteps.run`."""
    cdef int k, l
    for k in range(n_steps):
        if k > 0:
            for l in range(L):
                if l < L - 1:
                    _layer(&layers[l], penalty, features_as_rows, n, <floating>w_scale[l], a_x[l], c_z[l],
                           prox_c[l], scratch)
                else:
                    _layer(&layers[l], penalty, features_as_rows, n, <floating>w_scale[l], 0.0, 0.0, 0.0, scratch)
            for l in range(L - 1):
                _add_back_term(&layers[l], &layers[l + 1], features_as_rows, n,
                               <floating>(back[l] * w_scale[l + 1]))
        # the first step starts at the anchor itself: no pull
        for l in range(L):
            _parameter_step(&layers[l], features_as_rows, n, anchor if k > 0 else NULL, &w_scale[l],
                            anchor_scale[l], step[l], pull[l], min_scale, scratch)
    for l in range(L - 1):
        _x_step_rows(penalty, layers[l].kind, <floating>layers[l].param, prox_c[l], <floating*>layers[l].v,
                     <floating*>layers[l].x, layers[l].n_out if features_as_rows else n,
                     n if features_as_rows else layers[l].n_out, layers[l].n_threads)
