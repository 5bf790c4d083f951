# cython: language_level=3
"""The batch step of the lifted solvers: one compiled implementation, without the GIL.

:class:`ProximalSteps` holds the arrays of one batch problem (the network's
parameters, the batch's variables with samples as rows, the workspace) as raw
pointers, checked once when it is made. Its methods are the steps of eq. 17 on the
batch energy (with eq. 24's proximity term), each used by every solver that takes it:

* :meth:`~ProximalSteps.evaluate`: every layer's product ``Z = s X_prev W^T`` and
  fused pass (the pending x-step of its target first, then the residual, the
  penalties and the next x-step's argument ``V``), then the back terms
  ``V_h += back s R_{h+1} W_{h+1}``;
* :meth:`~ProximalSteps.parameter_step`: the scaled parameter step
  ``W/s += (c a / s') W_anchor - (step / s') R^T X`` with ``s' = (1 - c) s``;
* :meth:`~ProximalSteps.run`: implicit SGD's K inner steps on a batch, the two
  above in a loop, then the last x-step ``X_h = prox_{c Psi}(V_h)``.

``solvers._engine.StepEngine`` builds one per batch size and calls it.
"""
import numpy as np

cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport INFINITY
from libc.stdlib cimport free

from ._blas cimport _axpy, _gemm, _gemm_block, _gemm_blocks, _parallel_axpy, _parallel_scal, _product, _scal
from ._math cimport _work_space
from ._passes cimport _column_sums, _column_sums_strided, _sample_pass_row, _sample_rows_pass, _x_step_rows
from ._rows cimport N_KINDS

cnp.import_array()


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
    Py_ssize_t n_in, n_out, w_offset, b_offset
    int kind
    double param
    int n_threads           # OpenMP threads of the layer's pass
    int product_blocks      # blocks its products are split into (fixed: the results do not depend on threads)
    int product_threads     # OpenMP threads its products and parameter updates are spread over


cdef class ProximalSteps:
    """The arrays of one batch problem (see the module docstring).

    Parameters
    ----------
    penalty : int
        Code of the lifted penalty (``_lifted.PENALTY_CODES``).
    weights, biases : list of ndarray
        The network's parameters (views of its parameter vector, ``bounds`` its layer offsets).
    xs : list of ndarray
        ``[X_0, X_1, ..., X_{L-1}, target]`` of the batch, samples as rows.
    z, residual, loss, v : list of ndarray
        The workspace (``loss``: each sample's penalty, one array per layer; ``v``: one per
        hidden layer).
    kinds, params, threads : sequences
        Activation code and parameter, and OpenMP threads of the passes, per layer.
    bounds : ndarray of intp
        Offsets of the layers in the parameter vector (``n_layers + 1``).
    product_blocks, product_threads : int, default 1
        Blocks each matrix product is split into, and threads they and the parameter
        updates are spread over (each thread calls BLAS on its blocks; BLAS itself
        should then run one thread). See ``_blas.pxd``, ``_parallel_gemm``.

    The arrays must stay alive and in place while the object is used: it keeps
    references to them.
    """

    cdef Layer* layers
    cdef int n_layers, penalty
    cdef bint single
    cdef Py_ssize_t n_samples, n_parameters, widest
    cdef void* scratch
    cdef object dtype
    cdef list arrays

    def __cinit__(self):
        self.layers = NULL
        self.scratch = NULL

    def __init__(self, int penalty, list weights not None, list biases not None, list xs not None,
                 list z not None, list residual not None, list loss not None, list v not None, kinds, params,
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
                                    ("loss", loss, L), ("v", v, L - 1), ("kinds", kinds, L), ("params", params, L),
                                    ("threads", threads, L), ("bounds", bounds, L + 1)]:
            if len(seq) != expected:
                raise ValueError(f"{name} must have {expected} entries, got {len(seq)}")
        self.dtype = np.asarray(weights[0]).dtype
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"weights must be float32 or float64, got {self.dtype}")
        self.single = self.dtype == np.float32
        self.penalty = penalty
        self.n_samples = np.shape(xs[0])[0] if np.ndim(xs[0]) == 2 else 0
        if self.n_samples < 1:
            raise ValueError("xs[0] must be a batch of at least one sample")
        self.n_parameters = int(bounds[L])
        self.arrays = []
        self.layers = <Layer*>_work_space(L * sizeof(Layer), "ProximalSteps")
        self.n_layers = L
        self.widest = 1
        n = self.n_samples
        for l in range(L):
            n_out, n_in = np.shape(weights[l]) if np.ndim(weights[l]) == 2 else (0, 0)
            if n_out < 1 or n_in < 1:
                raise ValueError(f"weights[{l}] must be a non-empty matrix, got shape {np.shape(weights[l])}")
            if int(bounds[l + 1]) - int(bounds[l]) != n_out * (n_in + 1):
                raise ValueError(f"bounds do not match the shapes of layer {l}")
            kind = int(kinds[l])
            if not 0 <= kind < N_KINDS:
                raise ValueError(f"kinds[{l}] must be the code of an activation, got {kind}")
            if int(threads[l]) < 1:
                raise ValueError(f"threads[{l}] must be >= 1, got {threads[l]}")
            self.layers[l].w = self._data(weights[l], (n_out, n_in), f"weights[{l}]")
            self.layers[l].b = self._data(biases[l], (n_out,), f"biases[{l}]")
            # the data and the target are only read (they may be the caller's read-only arrays)
            self.layers[l].x_prev = self._data(xs[l], (n, n_in), f"xs[{l}]", True, l > 0)
            self.layers[l].x = self._data(xs[l + 1], (n, n_out), f"xs[{l + 1}]", True, l < L - 1)
            self.layers[l].z = self._data(z[l], (n, n_out), f"z[{l}]")
            self.layers[l].residual = self._data(residual[l], (n, n_out), f"residual[{l}]")
            self.layers[l].loss = self._data(loss[l], (n,), f"loss[{l}]")
            self.layers[l].v = self._data(v[l], (n, n_out), f"v[{l}]") if l < L - 1 else NULL
            self.layers[l].n_in, self.layers[l].n_out = n_in, n_out
            self.layers[l].w_offset = int(bounds[l])
            self.layers[l].b_offset = int(bounds[l]) + n_out * n_in
            self.layers[l].kind, self.layers[l].param = kind, float(params[l])
            self.layers[l].n_threads = int(threads[l])
            self.layers[l].product_blocks = product_blocks
            self.layers[l].product_threads = product_threads
            self.widest = max(self.widest, n_out)
        # work space: a row of per-entry losses per thread of a pass, then the bias sums' row
        cdef Py_ssize_t rows = max(max(int(t) for t in threads), product_threads) + 1
        self.scratch = _work_space(rows * self.widest * (4 if self.single else 8), "ProximalSteps")

    def __dealloc__(self):
        free(self.layers)
        free(self.scratch)

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

    cdef int _check_x_step(self, const double[::1] a_x, const double[::1] c_z, const double[::1] back,
                           const double[::1] prox_c, bint pending) except -1:
        cdef int h, L = self.n_layers
        _check_length("a_x", a_x.shape[0], L - 1)
        _check_length("c_z", c_z.shape[0], L - 1)
        _check_length("back", back.shape[0], L - 1)
        _check_length("prox_c", prox_c.shape[0], L - 1)
        for h in range(L - 1):
            if pending and self.penalty != 2 and not (0 < prox_c[h] < INFINITY):
                raise ValueError(f"prox_c must be positive and finite, got {prox_c[h]}")
        return 0

    cdef int _check_scales(self, const double[::1] w_scale) except -1:
        cdef int l
        _check_length("w_scale", w_scale.shape[0], self.n_layers)
        for l in range(self.n_layers):
            if not (0 < w_scale[l] < INFINITY):
                raise ValueError("w_scale must be positive and finite")
        return 0

    cdef void* _anchor(self, anchor, const double[::1] anchor_scale, const double[::1] pull) except? NULL:
        cdef int l
        _check_length("anchor_scale", anchor_scale.shape[0], self.n_layers)
        _check_length("pull", pull.shape[0], self.n_layers)
        if anchor is None:
            return NULL
        for l in range(self.n_layers):
            if not (0 < anchor_scale[l] < INFINITY):
                raise ValueError("anchor_scale must be positive and finite")
            if not (0 < pull[l] < 1):
                raise ValueError(f"pull must lie in (0, 1), got {pull[l]}")
        return self._data(anchor, (self.n_parameters,), "anchor", keep=False, writable=False)

    def evaluate(self, const double[::1] w_scale, const double[::1] a_x, const double[::1] c_z,
                 const double[::1] back, const double[::1] prox_c, const signed char[::1] with_v,
                 const signed char[::1] layers, bint with_loss, bint pending):
        """The layers' passes at the current iterate, in place.

        Layer ``l`` runs when ``layers[l]``; hidden layer ``h``'s x-step argument ``V_h``
        (own term ``a_x X_h + c_z Z_h`` plus the back term ``back R_{h+1} W_{h+1}``, the
        latter when layers ``h`` and ``h + 1`` both run) is computed when ``with_v[h]``.
        ``with_loss``: each sample's penalty into the ``loss`` arrays. ``pending``: each
        layer's pass first takes the x-step ``X_h = prox_{prox_c[h] Psi}(V_h)`` of its target,
        whose argument the ``v`` arrays hold (all layers must run).
        """
        cdef int L = self.n_layers, l
        self._check_scales(w_scale)
        self._check_x_step(a_x, c_z, back, prox_c, pending)
        _check_length("with_v", with_v.shape[0], L - 1)
        _check_length("layers", layers.shape[0], L)
        if pending:
            for l in range(L):
                if not layers[l] or (l < L - 1 and not with_v[l]):
                    raise ValueError("a pending x-step needs every layer's pass and every V")
        with nogil:
            if self.single:
                _evaluate(self.layers, L, self.penalty, self.n_samples, &w_scale[0], _first(a_x), _first(c_z),
                          _first(back), _first(prox_c), &with_v[0] if L > 1 else NULL, &layers[0], with_loss,
                          pending, <float*>self.scratch, self.widest)
            else:
                _evaluate(self.layers, L, self.penalty, self.n_samples, &w_scale[0], _first(a_x), _first(c_z),
                          _first(back), _first(prox_c), &with_v[0] if L > 1 else NULL, &layers[0], with_loss,
                          pending, <double*>self.scratch, self.widest)

    def parameter_step(self, anchor, const double[::1] anchor_scale, double[::1] w_scale,
                       const double[::1] step, const double[::1] pull, double min_scale):
        """The scaled parameter step of every layer, in place (see :meth:`run` for the arguments)."""
        self._check_scales(w_scale)
        _check_length("step", step.shape[0], self.n_layers)
        cdef void* anchor_data = self._anchor(anchor, anchor_scale, pull)
        if not 0 < min_scale <= 1:
            raise ValueError(f"min_scale must lie in (0, 1], got {min_scale}")
        cdef int l
        with nogil:
            for l in range(self.n_layers):
                if self.single:
                    _parameter_step(&self.layers[l], self.n_samples, <float*>anchor_data, &w_scale[l],
                                    anchor_scale[l], step[l], pull[l], min_scale, <float*>self.scratch)
                else:
                    _parameter_step(&self.layers[l], self.n_samples, <double*>anchor_data, &w_scale[l],
                                    anchor_scale[l], step[l], pull[l], min_scale, <double*>self.scratch)

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
        cdef int L = self.n_layers
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        self._check_scales(w_scale)
        self._check_x_step(a_x, c_z, back, prox_c, True)
        _check_length("step", step.shape[0], L)
        cdef void* anchor_data = self._anchor(anchor, anchor_scale, pull)
        if not 0 < min_scale <= 1:
            raise ValueError(f"min_scale must lie in (0, 1], got {min_scale}")
        with nogil:
            if self.single:
                _steps(<float*>anchor_data, self.layers, L, self.penalty, self.n_samples, n_steps,
                       &anchor_scale[0], &w_scale[0], &step[0], &pull[0], _first(a_x), _first(c_z), _first(back),
                       _first(prox_c), min_scale, <float*>self.scratch, self.widest)
            else:
                _steps(<double*>anchor_data, self.layers, L, self.penalty, self.n_samples, n_steps,
                       &anchor_scale[0], &w_scale[0], &step[0], &pull[0], _first(a_x), _first(c_z), _first(back),
                       _first(prox_c), min_scale, <double*>self.scratch, self.widest)


cdef inline const double* _first(const double[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] > 0 else NULL


cdef int _check_length(str name, Py_ssize_t length, Py_ssize_t expected) except -1:
    if length != expected:
        raise ValueError(f"{name} must have length {expected}, got {length}")
    return 0


cdef void _layer(Layer* layer, int penalty, Py_ssize_t n, floating scale, bint with_v, double a_x, double c_z,
                 double prox_c, bint with_loss, floating* scratch, Py_ssize_t widest) noexcept nogil:
    """One layer's product and pass (residual, ``V`` with ``with_v``, the penalties with
    ``with_loss``; ``Z`` not kept); ``prox_c > 0``: the pending x-step of its target first.

    A product split into blocks runs in one parallel region with its pass (the pass's
    rows spread over the same threads after a barrier): the threads go from the one to
    the other without waiting to be woken (docs/performance.rst, "Threads"). Every
    block and row is computed as alone, so the result is that of the two calls.
    ``scratch`` holds a row of ``widest`` entries per thread.
    """
    cdef floating* x = <floating*>layer.x
    cdef floating* z = <floating*>layer.z
    cdef floating* x_out = x if prox_c > 0 else NULL
    cdef floating* v = <floating*>layer.v if with_v else NULL   # (with_v whenever prox_c > 0)
    cdef floating* residual = <floating*>layer.residual
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
        _sample_rows_pass(penalty, layer.kind, p, z, <floating*>layer.b, x, residual, loss, v,
                          <floating>a_x, <floating>c_z, False, prox_c, x_out, n, n_out, layer.n_threads, scratch)
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
            row_loss = _sample_pass_row(penalty, layer.kind, p, z + row * n_out, <floating*>layer.b,
                                        x + row * n_out, residual + row * n_out,
                                        v + row * n_out if v != NULL else <floating*>NULL, <floating>a_x,
                                        <floating>c_z, False, prox_c,
                                        x_out + row * n_out if x_out != NULL else <floating*>NULL, work, n_out)
            if with_loss:
                loss[row] = <floating>row_loss


cdef void _add_back_term(Layer* below, Layer* above, Py_ssize_t n, floating coefficient) noexcept nogil:
    """``V += coefficient R_above W_above`` into the ``V`` of the layer below (its target's x-step)."""
    _product(False, False, coefficient, <floating*>above.residual, n, above.n_out, <floating*>above.w,
             above.n_out, above.n_in, 1, <floating*>below.v, above.product_blocks, above.product_threads)


cdef void _evaluate(Layer* layers, int L, int penalty, Py_ssize_t n, const double* w_scale, const double* a_x,
                    const double* c_z, const double* back, const double* prox_c, const signed char* with_v,
                    const signed char* active, bint with_loss, bint pending, floating* scratch,
                    Py_ssize_t widest) noexcept nogil:
    """The loop of :meth:`ProximalSteps.evaluate`."""
    cdef int l
    for l in range(L):
        if not active[l]:
            continue
        if l < L - 1:
            _layer(&layers[l], penalty, n, <floating>w_scale[l], with_v[l], a_x[l], c_z[l],
                   prox_c[l] if pending else 0.0, with_loss, scratch, widest)
        else:
            _layer(&layers[l], penalty, n, <floating>w_scale[l], False, 0.0, 0.0, 0.0, with_loss, scratch, widest)
    for l in range(L - 1):
        if with_v[l] and active[l] and active[l + 1]:
            _add_back_term(&layers[l], &layers[l + 1], n, <floating>(back[l] * w_scale[l + 1]))


cdef void _parameter_step(Layer* layer, Py_ssize_t n, floating* anchor, double* w_scale, double anchor_scale,
                          double step, double c, double min_scale, floating* sums) noexcept nogil:
    """The scaled parameter step of one layer; ``anchor`` NULL: without the pull (``c = 0``).

    ``W/s += (c a / s') W_anchor - (step / s') R^T X`` with ``s' = (1 - c) s`` (the weights
    held as ``W / s``, ``a`` the anchor's scale): the pull is one pass (``axpy``) and the
    gradient product accumulates into the weights with BLAS's ``beta = 1``; the biases
    (a few hundred entries) are updated explicitly. When the product splits into row
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
    if w_scale[0] * (1.0 - c) < min_scale and w_scale[0] != 1.0:
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
                _update_units(layer, n, anchor, anchor_scale, scale, step, c, alpha, start, stop, sums)
        w_scale[0] = scale
        return
    if anchor != NULL:
        _parallel_axpy(n_w, <floating>(c * anchor_scale / scale), anchor + layer.w_offset, w,
                       layer.product_threads)
        _scal(n_out, <floating>(1.0 - c), b)
        _axpy(n_out, <floating>c, anchor + layer.b_offset, b)
    _product(True, False, alpha, <floating*>layer.residual, n, n_out, <floating*>layer.x_prev, n, n_in, 1, w,
             layer.product_blocks, layer.product_threads)
    w_scale[0] = scale
    _column_sums(<floating*>layer.residual, n, n_out, b, <floating>(-step), True, sums)


cdef void _update_units(Layer* layer, Py_ssize_t n, floating* anchor, double anchor_scale, double scale,
                        double step, double c, floating alpha, Py_ssize_t start, Py_ssize_t stop,
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
    # R: n x n_out, its columns [start, stop)
    _gemm(True, False, <int>units, <int>n_in, <int>n, alpha, residual + start, <int>n_out,
          <floating*>layer.x_prev, <int>n_in, 1, w, <int>n_in)
    _column_sums_strided(residual + start, n, units, n_out, b, <floating>(-step), True, sums + start)


cdef void _steps(floating* anchor, Layer* layers, int L, int penalty, Py_ssize_t n, int n_steps,
                 const double* anchor_scale, double* w_scale, const double* step, const double* pull,
                 const double* a_x, const double* c_z, const double* back, const double* prox_c, double min_scale,
                 floating* scratch, Py_ssize_t widest) noexcept nogil:
    """The loop of :meth:`ProximalSteps.run`: each x-step but the last is taken by the next
    step's layer passes, on rows still in cache."""
    cdef int k, l
    for k in range(n_steps):
        if k > 0:
            for l in range(L):
                if l < L - 1:
                    _layer(&layers[l], penalty, n, <floating>w_scale[l], True, a_x[l], c_z[l], prox_c[l], False,
                           scratch, widest)
                else:
                    _layer(&layers[l], penalty, n, <floating>w_scale[l], False, 0.0, 0.0, 0.0, False, scratch,
                           widest)
            for l in range(L - 1):
                _add_back_term(&layers[l], &layers[l + 1], n, <floating>(back[l] * w_scale[l + 1]))
        # the first step starts at the anchor itself: no pull
        for l in range(L):
            _parameter_step(&layers[l], n, anchor if k > 0 else NULL, &w_scale[l], anchor_scale[l], step[l],
                            pull[l], min_scale, scratch)
    for l in range(L - 1):
        _x_step_rows(penalty, layers[l].kind, <floating>layers[l].param, prox_c[l], <floating*>layers[l].v,
                     <floating*>layers[l].x, n, layers[l].n_out, layers[l].n_threads)
