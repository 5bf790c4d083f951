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
  ``W/s += (c a / s') W_anchor - (step / s') R^T X`` with ``s' = (1 - c) s``, then
  ``s <- decay s'`` (a weight decay's prox, 1 without one);
* :meth:`~ProximalSteps.run`: implicit SGD's K inner steps on a batch, the two
  above in a loop (on threads, each step's back terms and parameter steps as the blocks
  of one parallel region: ``_sweep.pxd``), then the last x-step ``X_h = prox_{c Psi}(V_h)``; with ``low_rank``
  the input layer's steps in low-rank form (``_low_rank.pxd``: its pre-activation from
  the batch's Gram matrix, its weights formed once after the K steps).

``solvers._engine.StepEngine`` builds one per batch size and calls it.
"""
import numpy as np

cimport numpy as cnp
from cython cimport floating
from libc.math cimport INFINITY
from libc.stdlib cimport free

from ._blas cimport _product
from ._layer cimport Layer, _add_back_term, _layer, _parameter_step
from ._low_rank cimport _clear, _form_weights, _gram, _low_rank_layer, _low_rank_step
from ._math cimport _work_space
from ._passes cimport _x_step_rows
from ._rows cimport N_KINDS
from ._sweep cimport _back_terms_and_steps, _sweep_applies

cnp.import_array()


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
    # the low-rank input layer's Gram matrix (n x n) and coefficients A (n x n_1), NULL until
    # a run asks for them; whether ``layers[0].base`` holds X_0 W_1^T at the current weights
    cdef void* gram
    cdef void* coefficients
    cdef bint base_valid

    def __cinit__(self):
        self.layers = NULL
        self.scratch = NULL
        self.gram = NULL
        self.coefficients = NULL

    def __init__(self, int penalty, list weights not None, list biases not None, list xs not None,
                 list z not None, list residual not None, list loss not None, list v not None, kinds, params,
                 threads, bounds, int product_blocks=1, int product_threads=1):
        cdef int L = len(weights), l
        free(self.layers)           # __init__ called again: start afresh
        free(self.scratch)
        self.layers, self.scratch, self.n_layers = NULL, NULL, 0
        self.gram, self.coefficients, self.base_valid = NULL, NULL, False
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
            self.layers[l].base = NULL
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

    cdef _decays(self, decay):
        """``decay`` checked, as a float64 array of length L (None: ones)."""
        if decay is None:
            return np.ones(self.n_layers)
        decays = np.ascontiguousarray(decay, dtype=np.float64)
        _check_length("decay", decays.shape[0] if decays.ndim == 1 else -1, self.n_layers)
        if not np.all((decays > 0) & (decays <= 1)):
            raise ValueError("decay must lie in (0, 1]")
        return decays

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
                 const signed char[::1] layers, bint with_loss, bint pending, bint forward=False):
        """The layers' passes at the current iterate, in place.

        Layer ``l`` runs when ``layers[l]``; hidden layer ``h``'s x-step argument ``V_h``
        (own term ``a_x X_h + c_z Z_h`` plus the back term ``back R_{h+1} W_{h+1}``, the
        latter when layers ``h`` and ``h + 1`` both run) is computed when ``with_v[h]``.
        ``with_loss``: each sample's penalty into the ``loss`` arrays. ``pending``: each
        layer's pass first takes the x-step ``X_h = prox_{prox_c[h] Psi}(V_h)`` of its target,
        whose argument the ``v`` arrays hold (all layers must run). ``forward``: each hidden
        layer's pass first sets its target to the forward pass ``X_h = sigma(Z_h + b_h)`` (all
        layers must run): the batch's forward start and its first evaluation from one product
        per layer.
        """
        cdef int L = self.n_layers, l
        self._check_scales(w_scale)
        self._check_x_step(a_x, c_z, back, prox_c, pending)
        _check_length("with_v", with_v.shape[0], L - 1)
        _check_length("layers", layers.shape[0], L)
        if pending and forward:
            raise ValueError("a pending x-step and the forward pass exclude each other")
        if pending:
            for l in range(L):
                if not layers[l] or (l < L - 1 and not with_v[l]):
                    raise ValueError("a pending x-step needs every layer's pass and every V")
        if forward:
            for l in range(L):
                if not layers[l]:
                    raise ValueError("the forward pass needs every layer's pass")
        with nogil:
            if self.single:
                _evaluate(self.layers, L, self.penalty, self.n_samples, &w_scale[0], _first(a_x), _first(c_z),
                          _first(back), _first(prox_c), &with_v[0] if L > 1 else NULL, &layers[0], with_loss,
                          pending, forward, <float*>self.scratch, self.widest)
            else:
                _evaluate(self.layers, L, self.penalty, self.n_samples, &w_scale[0], _first(a_x), _first(c_z),
                          _first(back), _first(prox_c), &with_v[0] if L > 1 else NULL, &layers[0], with_loss,
                          pending, forward, <double*>self.scratch, self.widest)
        self.base_valid = self.layers[0].base != NULL and layers[0]

    def parameter_step(self, anchor, const double[::1] anchor_scale, double[::1] w_scale,
                       const double[::1] step, const double[::1] pull, double min_scale, decay=None):
        """The scaled parameter step of every layer, in place (see :meth:`run` for the arguments)."""
        self._check_scales(w_scale)
        _check_length("step", step.shape[0], self.n_layers)
        cdef void* anchor_data = self._anchor(anchor, anchor_scale, pull)
        cdef const double[::1] decays = self._decays(decay)
        if not 0 < min_scale <= 1:
            raise ValueError(f"min_scale must lie in (0, 1], got {min_scale}")
        cdef int l
        self.base_valid = False
        with nogil:
            for l in range(self.n_layers):
                if self.single:
                    _parameter_step(&self.layers[l], self.n_samples, <float*>anchor_data, &w_scale[l],
                                    anchor_scale[l], step[l], pull[l], decays[l], min_scale, <float*>self.scratch)
                else:
                    _parameter_step(&self.layers[l], self.n_samples, <double*>anchor_data, &w_scale[l],
                                    anchor_scale[l], step[l], pull[l], decays[l], min_scale, <double*>self.scratch)

    def run(self, int n_steps, anchor, const double[::1] anchor_scale, double[::1] w_scale,
            const double[::1] step, const double[::1] pull, const double[::1] a_x, const double[::1] c_z,
            const double[::1] back, const double[::1] prox_c, double min_scale, bint low_rank=False, decay=None):
        """Take ``n_steps`` proximal-gradient steps from the current iterate, in place.

        The first evaluation of the layers (the one that reports the batch energy and
        prepares ``V``) has been done; ``run`` continues from there. With an ``anchor`` the
        iterate's parameters are the anchor's (the first step starts at it).

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
        low_rank : bool, default False
            Take the input layer's steps in low-rank form (``_low_rank.pxd``): the same
            iterates up to rounding, with two products of the layer per step replaced by one
            with the batch's Gram matrix (worth it when the batch is small against the
            layer, see ``StepEngine.low_rank_pays``).
        decay : float64 array of length L, optional
            Per layer, the factor ``1 / (1 + tau_theta_l alpha)`` of a weight decay
            (``SquaredL2(alpha)``) applied to the weights after each parameter step, as the
            scale alone; in (0, 1], None: 1 (no decay).
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
        cdef const double[::1] decays = self._decays(decay)
        if low_rank:
            self._low_rank_buffers(w_scale[0])
        cdef void* gram = self.gram if low_rank else NULL
        self.base_valid = False
        with nogil:
            if self.single:
                _steps(<float*>anchor_data, self.layers, L, self.penalty, self.n_samples, n_steps,
                       &anchor_scale[0], &w_scale[0], &step[0], &pull[0], &decays[0], _first(a_x), _first(c_z),
                       _first(back), _first(prox_c), min_scale, <float*>gram, <float*>self.coefficients, <float*>self.scratch,
                       self.widest)
            else:
                _steps(<double*>anchor_data, self.layers, L, self.penalty, self.n_samples, n_steps,
                       &anchor_scale[0], &w_scale[0], &step[0], &pull[0], &decays[0], _first(a_x), _first(c_z),
                       _first(back), _first(prox_c), min_scale, <double*>gram, <double*>self.coefficients,
                       <double*>self.scratch, self.widest)

    cdef int _low_rank_buffers(self, double w_scale) except -1:
        """Make the low-rank buffers (once) and the input layer's product ``P = X_0 W_1^T``
        where the last evaluation did not leave it."""
        cdef Layer* first = &self.layers[0]
        cdef Py_ssize_t n = self.n_samples
        if self.gram == NULL:
            buffers = [np.zeros((n, n), self.dtype), np.zeros((n, first.n_out), self.dtype),
                       np.zeros((n, first.n_out), self.dtype)]
            self.arrays.extend(buffers)
            self.gram = cnp.PyArray_DATA(<cnp.ndarray>buffers[0])
            self.coefficients = cnp.PyArray_DATA(<cnp.ndarray>buffers[1])
            first.base = cnp.PyArray_DATA(<cnp.ndarray>buffers[2])
        if not self.base_valid:
            with nogil:
                if self.single:
                    _product(False, True, <float>w_scale, <float*>first.x_prev, n, first.n_in, <float*>first.w,
                             first.n_out, first.n_in, 0, <float*>first.base, first.product_blocks,
                             first.product_threads)
                else:
                    _product(False, True, w_scale, <double*>first.x_prev, n, first.n_in, <double*>first.w,
                             first.n_out, first.n_in, 0, <double*>first.base, first.product_blocks,
                             first.product_threads)
        return 0


cdef inline const double* _first(const double[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] > 0 else NULL


cdef int _check_length(str name, Py_ssize_t length, Py_ssize_t expected) except -1:
    if length != expected:
        raise ValueError(f"{name} must have length {expected}, got {length}")
    return 0


cdef void _evaluate(Layer* layers, int L, int penalty, Py_ssize_t n, const double* w_scale, const double* a_x,
                    const double* c_z, const double* back, const double* prox_c, const signed char* with_v,
                    const signed char* active, bint with_loss, bint pending, bint forward, floating* scratch,
                    Py_ssize_t widest) noexcept nogil:
    """The loop of :meth:`ProximalSteps.evaluate`."""
    cdef int l
    for l in range(L):
        if not active[l]:
            continue
        if l < L - 1:
            _layer(&layers[l], penalty, n, <floating>w_scale[l], with_v[l], a_x[l], c_z[l],
                   prox_c[l] if pending else 0.0, with_loss, scratch, widest, forward)
        else:
            _layer(&layers[l], penalty, n, <floating>w_scale[l], False, 0.0, 0.0, 0.0, with_loss, scratch, widest)
    for l in range(L - 1):
        if with_v[l] and active[l] and active[l + 1]:
            _add_back_term(&layers[l], &layers[l + 1], n, <floating>(back[l] * w_scale[l + 1]))


cdef void _steps(floating* anchor, Layer* layers, int L, int penalty, Py_ssize_t n, int n_steps,
                 const double* anchor_scale, double* w_scale, const double* step, const double* pull,
                 const double* decay, const double* a_x, const double* c_z, const double* back, const double* prox_c, double min_scale,
                 floating* gram, floating* coefficients, floating* scratch, Py_ssize_t widest) noexcept nogil:
    """The loop of :meth:`ProximalSteps.run`: each x-step but the last is taken by the next
    step's layer passes, on rows still in cache. ``gram`` not NULL: the input layer in
    low-rank form (its product ``P`` in ``layers[0].base``)."""
    cdef int k, l
    cdef bint low_rank = gram != NULL
    cdef double beta = 1.0              # the low-rank layer's multiple of its start weights
    if low_rank:
        _gram(&layers[0], n, gram)
        _clear(coefficients, n * layers[0].n_out)
    for k in range(n_steps):
        if k > 0:
            for l in range(L):
                if l == 0 and low_rank:
                    _low_rank_layer(&layers[0], penalty, n, gram, coefficients, beta, a_x[0] if L > 1 else 0.0,
                                    c_z[0] if L > 1 else 0.0, prox_c[0] if L > 1 else 0.0, scratch)
                elif l < L - 1:
                    _layer(&layers[l], penalty, n, <floating>w_scale[l], True, a_x[l], c_z[l], prox_c[l], False,
                           scratch, widest)
                else:
                    _layer(&layers[l], penalty, n, <floating>w_scale[l], False, 0.0, 0.0, 0.0, False, scratch,
                           widest)
        # the first step starts at the anchor itself: no pull
        if _sweep_applies(layers, L, anchor if k > 0 else NULL, w_scale, pull, decay, min_scale, low_rank):
            _back_terms_and_steps(layers, L, n, anchor if k > 0 else NULL, anchor_scale, w_scale, step, pull, decay,
                                  back, k > 0, low_rank, coefficients, &beta, scratch, widest)
            continue
        if k > 0:
            for l in range(L - 1):
                _add_back_term(&layers[l], &layers[l + 1], n, <floating>(back[l] * w_scale[l + 1]))
        for l in range(L):
            if l == 0 and low_rank:
                beta = _low_rank_step(&layers[0], n, anchor if k > 0 else NULL, coefficients, beta, step[0], pull[0],
                                      decay[0], scratch)
            else:
                _parameter_step(&layers[l], n, anchor if k > 0 else NULL, &w_scale[l], anchor_scale[l], step[l],
                                pull[l], decay[l], min_scale, scratch)
    if low_rank:
        _form_weights(&layers[0], n, coefficients, &w_scale[0], beta, min_scale)
    for l in range(L - 1):
        _x_step_rows(penalty, layers[l].kind, <floating>layers[l].param, prox_c[l], <floating*>layers[l].v,
                     <floating*>layers[l].x, n, layers[l].n_out, layers[l].n_threads)


# _simd_level(): each module holds its own copy of _smooth.h's level
include "_simd_level.pxi"
