# cython: language_level=3
"""Fused layer kernels of the lifted network: BLAS products and one pass per layer.

For a layer l with pre-activations ``Z = X_prev W^T + b`` (samples as rows):

* :func:`gemm` is the one door to BLAS (``scipy.linalg.cython_blas`` s/dgemm) for
  row-major arrays: a row-major product ``C = A B`` is the column-major product
  ``C^T = B^T A^T``, so the operands are swapped and the transposition flags kept;
  no array is ever copied or transposed in memory;
* :func:`layer_pass` adds the bias and, in one OpenMP pass over samples, computes
  the residual (the z-gradient of the penalty), each sample's penalty, and the
  argument ``V = a_x X + c_z Z`` of the auxiliary-variable step of this layer;
* :func:`column_sums` gives the bias gradient in a fixed summation order.

Penalties (``penalty`` code): 0 the Bregman loss ``B(x, z)`` with residual
``sigma(z) - x``; 1 the classical lifted penalty ``0.5 |x - z|^2`` (eq. 7) with
residual ``z - x``; 2 MAC-QP's ``0.5 |x - sigma(z)|^2`` (eq. 6) with residual
``sigma'(z) (sigma(z) - x)``, whose ``V`` uses ``sigma(z)`` in place of ``z``.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.limits cimport INT_MAX
from libc.math cimport isfinite
from libc.stdlib cimport free
from scipy.linalg.cython_blas cimport dasum, dcopy, sasum, scopy

import numpy as np

from ._blas cimport _parallel_axpy, _parallel_gemm, _parallel_scal
from ._math cimport _work_space
from ._passes cimport _column_sums, _sample_rows_pass
from ._rows cimport IDENTITY, N_KINDS, SOFTMAX, _backprop_row, _sigma_row

PENALTY_CODES = {"bregman": 0, "classical": 1, "mac_qp": 2}


cdef int _check_threads(int count, str name="n_threads") except -1:
    if count < 1:
        raise ValueError(f"{name} must be >= 1, got {count}")
    return 0


def gemm(bint trans_a, bint trans_b, double alpha, const floating[:, ::1] a, const floating[:, ::1] b,
         double beta, floating[:, ::1] c, int n_blocks=1, int n_threads=1):
    """``c = alpha op(a) op(b) + beta c`` for C-contiguous (row-major) arrays.

    ``op(a)`` is ``a.T`` when ``trans_a``. Shapes are checked; the product runs
    without the GIL on the BLAS that scipy links. With ``n_blocks > 1`` (and a
    product large enough to pay for it) the rows or columns of ``c`` are split into
    up to that many blocks, spread over ``n_threads`` OpenMP threads, each calling
    BLAS on its blocks: meant for BLAS limited to one thread, as during a fit
    (``bregman_solvers._threads``). The result depends on ``n_blocks``, never on
    ``n_threads``.
    """
    _check_threads(n_blocks, "n_blocks")
    _check_threads(n_threads)
    cdef int m = a.shape[1] if trans_a else a.shape[0]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    cdef int kb = b.shape[1] if trans_b else b.shape[0]
    cdef int n = b.shape[0] if trans_b else b.shape[1]
    if k != kb:
        raise ValueError(f"inner dimensions differ: op(a) is {m}x{k}, op(b) is {kb}x{n}")
    if c.shape[0] != m or c.shape[1] != n:
        raise ValueError(f"c must have shape ({m}, {n}), got ({c.shape[0]}, {c.shape[1]})")
    if m == 0 or n == 0:
        return
    cdef floating alpha_ = <floating>alpha, beta_ = <floating>beta
    cdef const floating* a_ptr = &a[0, 0] if a.shape[0] * a.shape[1] > 0 else NULL
    cdef const floating* b_ptr = &b[0, 0] if b.shape[0] * b.shape[1] > 0 else NULL
    cdef int lda = a.shape[1] if a.shape[1] > 0 else 1
    cdef int ldb = b.shape[1] if b.shape[1] > 0 else 1
    if k == 0:
        # BLAS would leave c untouched for beta=0 only on some implementations
        np.multiply(c, beta_, out=np.asarray(c))
        return
    with nogil:
        _parallel_gemm(trans_a, trans_b, m, n, k, alpha_, a_ptr, lda, b_ptr, ldb, beta_, &c[0, 0], n, n_blocks, n_threads)


def axpy(double alpha, const floating[::1] x, floating[::1] y, int n_threads=1):
    """``y += alpha x`` for flat arrays, split over up to ``n_threads`` OpenMP threads.

    A plain vectorised loop, not BLAS: every entry is rounded the same way whatever
    the split (see ``_blas.pxd``, ``_axpy``), so the result does not depend on
    ``n_threads``. Pieces under 65,536 entries a thread are not split.
    """
    cdef Py_ssize_t n = y.shape[0]
    _check_threads(n_threads)
    if x.shape[0] != n:
        raise ValueError(f"x must have length {n}, got {x.shape[0]}")
    if n > 0:
        with nogil:
            _parallel_axpy(n, <floating>alpha, &x[0], &y[0], n_threads)


def scal(double alpha, floating[::1] x, int n_threads=1):
    """``x *= alpha`` for a flat array, split over up to ``n_threads`` threads (see :func:`axpy`)."""
    _check_threads(n_threads)
    if x.shape[0] > 0:
        with nogil:
            _parallel_scal(x.shape[0], <floating>alpha, &x[0], n_threads)


def copy(const floating[::1] x, floating[::1] y):
    """``y[:] = x`` for flat arrays, through BLAS (scipy's ``s/dcopy``)."""
    cdef Py_ssize_t n = y.shape[0], start = 0
    cdef int chunk, one = 1
    if x.shape[0] != n:
        raise ValueError(f"x must have length {n}, got {x.shape[0]}")
    with nogil:
        while start < n:
            chunk = <int>(n - start if n - start < INT_MAX else INT_MAX)
            if floating is float:
                scopy(&chunk, <float*>&x[start], &one, &y[start], &one)
            else:
                dcopy(&chunk, <double*>&x[start], &one, &y[start], &one)
            start += chunk


def abs_sum(const floating[::1] x):
    """``sum |x_i|`` through BLAS (scipy's ``s/dasum``), as a float.

    Non-finite when any entry is NaN or infinite, so it doubles as a one-read
    finiteness check of a parameter vector on BLAS's threads (a finite float32
    vector whose absolute sum exceeds 3.4e38 also reads as non-finite).
    """
    cdef Py_ssize_t n = x.shape[0], start = 0
    cdef int chunk, one = 1
    cdef double total = 0
    with nogil:
        while start < n:
            chunk = <int>(n - start if n - start < INT_MAX else INT_MAX)
            if floating is float:
                total += sasum(&chunk, <float*>&x[start], &one)
            else:
                total += dasum(&chunk, <double*>&x[start], &one)
            start += chunk
    return total


def add_bias(floating[:, ::1] z, const floating[::1] b, int n_threads=1):
    """z[i, :] += b for every row."""
    if b.shape[0] != z.shape[1]:
        raise ValueError(f"b must have length {z.shape[1]}, got {b.shape[0]}")
    cdef Py_ssize_t i, j, n = z.shape[1]
    with nogil:
        for i in prange(z.shape[0], schedule="static", num_threads=n_threads):
            for j in range(n):
                z[i, j] = z[i, j] + b[j]


cdef tuple _shape(const floating[:, ::1] a):
    return (a.shape[0], a.shape[1])


cdef int _check_layer_arguments(int penalty, int kind, int n_threads, tuple shape,
                                Py_ssize_t b_length, Py_ssize_t b_expected, list arrays, object loss_length,
                                Py_ssize_t loss_expected) except -1:
    """The checks of a layer pass, before its nogil loop: codes, thread count and every array's shape.

    ``arrays`` lists ``(name, shape or None)`` of the arrays shaped like ``z``.
    """
    if penalty < 0 or penalty > 2:
        raise ValueError(f"penalty must be 0, 1 or 2, got {penalty}")
    if not 0 <= kind < N_KINDS:
        raise ValueError(f"kind must be one of the codes in KIND_CODES, got {kind}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if b_length != b_expected:
        raise ValueError(f"b must have length {b_expected}, got {b_length}")
    for name, other in arrays:
        if other is not None and other != shape:
            raise ValueError(f"{name} must have shape {shape}, got {other}")
    if loss_length is not None and loss_length != loss_expected:
        raise ValueError(f"loss must have length {loss_expected}, got {loss_length}")
    return 0


cdef bint _check_x_out(const floating[:, ::1] x, floating[:, ::1] x_out, bint with_v, double prox_c) except -1:
    """Whether a layer pass takes the x-step into ``x_out``; its arguments checked."""
    if x_out is None:
        return False
    if not with_v:
        raise ValueError("x_out needs v (the previous x-step argument)")
    if (x_out.shape[0] != x.shape[0] or x_out.shape[1] != x.shape[1]
            or (x.shape[0] * x.shape[1] > 0 and <const void*>&x_out[0, 0] != <const void*>&x[0, 0])):
        raise ValueError("x_out must be x itself (the target the pass then reads)")
    if not prox_c > 0 or not isfinite(prox_c):
        raise ValueError(f"prox_c must be a positive finite number, got {prox_c}")
    return True


def layer_pass(int penalty, int kind, double param, floating[:, ::1] z, const floating[::1] b,
               const floating[:, ::1] x, floating[:, ::1] residual, floating[::1] loss=None,
               floating[:, ::1] v=None, double a_x=0.0, double c_z=0.0, int n_threads=1, bint keep_z=True,
               double prox_c=0.0, floating[:, ::1] x_out=None):
    """One pass over the samples of a layer (see the module docstring).

    ``z`` holds ``X_prev W^T`` on entry and ``X_prev W^T + b`` on exit; ``residual``
    receives the z-gradient of the penalty, ``loss`` (when given) each sample's
    penalty and, when given, ``v`` the x-step argument ``a_x x + c_z z`` (MAC-QP:
    ``a_x x + c_z sigma(z)``). Without ``loss`` the Bregman and classical penalties
    skip their losses: an inner iteration that needs only the residuals. With
    ``keep_z=False`` the Bregman and classical penalties leave ``z`` as it came
    (without the bias; MAC-QP and softmax layers store it anyway): saves the
    stores of one array, which right after the GEMM that wrote ``z`` on several
    threads are a fifth to a third of the pass.

    With ``x_out`` (``x`` itself, writable) each sample's target is first updated
    to ``prox_{prox_c Psi}(v)`` (MAC-QP: to ``v``), ``v`` holding the previous
    x-step argument: the x-step of the previous iteration, taken while the row is
    in cache, the same numbers as ``_activations.prox`` gives.
    """
    cdef Py_ssize_t n = z.shape[1], n_samples = z.shape[0]
    cdef bint with_loss = loss is not None
    cdef bint with_v = v is not None
    _check_layer_arguments(penalty, kind, n_threads, (n_samples, n), b.shape[0], n,
                           [("x", _shape(x)), ("residual", _shape(residual)), ("v", _shape(v) if with_v else None)],
                           loss.shape[0] if with_loss else None, n_samples)
    cdef bint with_prox = _check_x_out(x, x_out, with_v, prox_c)
    if n == 0 or n_samples == 0:
        return
    # one row of per-entry losses per thread
    cdef floating* scratch = <floating*>_work_space(n_threads * n * sizeof(floating) if with_loss else 0,
                                                    "layer_pass")
    with nogil:
        _sample_rows_pass(penalty, kind, <floating>param, &z[0, 0], &b[0], &x[0, 0], &residual[0, 0],
                          &loss[0] if with_loss else NULL, &v[0, 0] if with_v else NULL, <floating>a_x,
                          <floating>c_z, keep_z, prox_c, &x_out[0, 0] if with_prox else NULL, n_samples, n,
                          n_threads, scratch)
        free(scratch)


def column_sums(const floating[:, ::1] a, floating[::1] out, double scale=1.0, bint accumulate=False):
    """``out[j] = scale * sum_i a[i, j]`` (``+=`` when ``accumulate``), rows summed in order.

    The fixed order makes the result independent of the thread count. With
    ``accumulate`` the bias step ``b -= step * grad_b`` needs no gradient buffer.
    """
    if out.shape[0] != a.shape[1]:
        raise ValueError(f"out must have length {a.shape[1]}, got {out.shape[0]}")
    cdef Py_ssize_t n = a.shape[1], n_rows = a.shape[0]
    cdef floating* sums = <floating*>_work_space(n * sizeof(floating), "column_sums")
    with nogil:
        if n > 0:
            _column_sums(&a[0, 0] if n_rows > 0 else NULL, n_rows, n, &out[0], <floating>scale, accumulate, sums)
        free(sums)


def backprop_activation(int kind, double param, const floating[:, ::1] z, floating[:, ::1] delta, int n_threads=1):
    """In place: ``delta_i <- J_sigma(z_i)^T delta_i`` for every sample (back-propagation, Algorithm 2).

    Elementwise activations multiply by ``sigma'(z)`` (one-sided 0 at kinks, a valid
    subgradient); softmax applies ``J^T d = s * (d - <s, d>)``.
    """
    if not 0 <= kind < N_KINDS:
        raise ValueError(f"kind must be one of the codes in KIND_CODES, got {kind}")
    if z.shape[0] != delta.shape[0] or z.shape[1] != delta.shape[1]:
        raise ValueError("delta must have the shape of z")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    cdef Py_ssize_t i, j, n = z.shape[1]
    cdef floating p = <floating>param
    cdef double dot
    cdef floating* s
    if kind == IDENTITY or n == 0 or z.shape[0] == 0:
        return
    # softmax: one row of sigma(z) per thread, allocated before the loop (an allocation
    # failure raises instead of leaving delta unchanged)
    cdef floating* rows = <floating*>_work_space(n_threads * n * sizeof(floating) if kind == SOFTMAX else 0,
                                                 "backprop_activation")
    with nogil:
        with parallel(num_threads=n_threads):
            s = rows + threadid() * n if kind == SOFTMAX else <floating*>NULL
            for i in prange(z.shape[0], schedule="static"):
                if kind == SOFTMAX:
                    _sigma_row(kind, p, &z[i, 0], s, n)
                    dot = 0
                    for j in range(n):
                        dot = dot + <double>s[j] * delta[i, j]
                    for j in range(n):
                        delta[i, j] = s[j] * (delta[i, j] - <floating>dot)
                else:
                    _backprop_row(kind, p, &z[i, 0], &delta[i, 0], n)
        free(rows)


def step_parameters(floating[::1] theta, const floating[::1] grad, double step,
                    const floating[::1] anchor=None, double tau=0.0, int n_threads=1):
    """In one pass: ``theta <- theta - step (grad + (theta - anchor) / tau)``.

    Without ``anchor``: ``theta <- theta - step grad``. Arrays are flat (use
    ``W.reshape(-1)`` views). The proximity term of implicit SGD (eq. 24) is thus
    fused into the parameter step instead of costing four extra passes.
    """
    cdef Py_ssize_t i, n = theta.shape[0]
    if grad.shape[0] != n or (anchor is not None and anchor.shape[0] != n):
        raise ValueError("theta, grad and anchor must have the same length")
    if anchor is not None and not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    cdef floating a = <floating>step
    cdef floating c = <floating>(step / tau) if anchor is not None else 0
    cdef floating keep = 1 - c
    cdef bint with_anchor = anchor is not None
    with nogil:
        if with_anchor:
            for i in prange(n, schedule="static", num_threads=n_threads):
                theta[i] = keep * theta[i] + c * anchor[i] - a * grad[i]
        else:
            for i in prange(n, schedule="static", num_threads=n_threads):
                theta[i] = theta[i] - a * grad[i]



cdef int _check_segments(const Py_ssize_t[::1] bounds, Py_ssize_t n_seg, Py_ssize_t n, str counted) except -1:
    """``bounds`` of ``n_seg`` segments ``[bounds[s], bounds[s + 1])`` of a vector of length ``n``:
    ``n_seg + 1`` entries (``counted``: as many as what), non-decreasing, within the vector."""
    cdef Py_ssize_t s
    if bounds.shape[0] != n_seg + 1:
        raise ValueError(f"bounds must have {n_seg + 1} entries ({counted}), got {bounds.shape[0]}")
    for s in range(n_seg):
        if not (0 <= bounds[s] <= bounds[s + 1] <= n):
            raise ValueError("bounds must be non-decreasing and within theta")
    return 0


def pull_towards(floating[::1] theta, const floating[::1] anchor, const Py_ssize_t[::1] bounds,
                 const double[::1] c, int n_threads=1):
    """In one pass: ``theta <- (1 - c_s) theta + c_s anchor`` on each segment s.

    Segment ``s`` is ``theta[bounds[s]:bounds[s + 1]]`` (one layer's ``W`` and ``b``
    in the network's flat parameter vector), so a step with per-layer sizes is still
    one parallel pass over all parameters. This is the proximity part of implicit
    SGD's parameter step (eq. 24); applied before the gradient GEMM accumulates into
    ``theta`` with ``beta = 1``, it replaces BLAS's own scaling pass over ``theta``
    for any other ``beta``.
    """
    cdef Py_ssize_t n = theta.shape[0], n_seg = c.shape[0]
    cdef Py_ssize_t s, i, lo, hi, start, stop, t, n_t
    if anchor.shape[0] != n:
        raise ValueError(f"anchor must have length {n}, got {anchor.shape[0]}")
    _check_segments(bounds, n_seg, n, "one more than c")
    _check_threads(n_threads)
    cdef floating keep, pull
    # every thread takes one contiguous share of the whole vector (not of each segment),
    # so there is one parallel region however many layers there are
    n_t = n_threads
    with nogil:
        for t in prange(n_t, schedule="static", num_threads=n_threads):
            start = n * t // n_t
            stop = n * (t + 1) // n_t
            for s in range(n_seg):
                lo = bounds[s] if bounds[s] > start else start
                hi = bounds[s + 1] if bounds[s + 1] < stop else stop
                pull = <floating>c[s]
                keep = 1 - pull
                for i in range(lo, hi):
                    theta[i] = keep * theta[i] + pull * anchor[i]


def extrapolate(floating[::1] theta, floating[::1] previous, double beta, int n_threads=1,
                floating[::1] anchor=None, const Py_ssize_t[::1] bounds=None, const double[::1] scales=None):
    """In one pass: ``theta <- theta + beta (theta - previous)`` and ``previous <- theta`` (its value before).

    The inertial step of implicit SGD with momentum: ``theta`` holds theta^k, ``previous``
    theta^{k-1}; afterwards ``theta`` is the extrapolated anchor
    ``y^k = theta^k + beta (theta^k - theta^{k-1})`` and ``previous`` holds theta^k, ready
    for the next batch. Arrays are flat (the network's parameter vector).
    With ``anchor`` the extrapolated point is written there too, in the same pass: the batch's
    copy of its start (the proximity term's anchor and the safeguard's fallback) costs no pass
    of its own. With ``bounds`` and ``scales`` the entries of segment ``s``
    (``theta[bounds[s]:bounds[s + 1]]``, e.g. one layer's weights held as ``W / s``) are read as
    ``scales[s] * theta[i]`` (rounded as :func:`scal` rounds it): weights held scaled are made
    explicit in the same pass, not in a pass of their own before it.
    """
    cdef Py_ssize_t i, n = theta.shape[0], n_seg = 0, s, lo, hi, start, stop, t
    if previous.shape[0] != n:
        raise ValueError(f"previous must have length {n}, got {previous.shape[0]}")
    if anchor is not None and anchor.shape[0] != n:
        raise ValueError(f"anchor must have length {n}, got {anchor.shape[0]}")
    if (bounds is None) != (scales is None):
        raise ValueError("bounds and scales go together")
    if scales is not None:
        n_seg = scales.shape[0]
        _check_segments(bounds, n_seg, n, "one more than scales")
        if bounds[0] != 0 or bounds[n_seg] != n:        # every entry in a segment: none left unmoved
            raise ValueError(f"bounds must have {n_seg + 1} entries from 0 to {n}")
    _check_threads(n_threads)
    cdef floating b = <floating>beta
    cdef floating current, moved, scale
    cdef bint copy = anchor is not None
    if n_seg == 0:
        with nogil:
            if copy:
                for i in prange(n, schedule="static", num_threads=n_threads):
                    current = theta[i]
                    moved = current + b * (current - previous[i])
                    theta[i] = moved
                    anchor[i] = moved
                    previous[i] = current
            else:
                for i in prange(n, schedule="static", num_threads=n_threads):
                    current = theta[i]
                    theta[i] = current + b * (current - previous[i])
                    previous[i] = current
        return
    # as pull_towards (the same walk; a helper would hide lo / hi from prange's private variables):
    # each thread one contiguous share of the vector, walked segment by segment
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            start = n * t // n_threads
            stop = n * (t + 1) // n_threads
            for s in range(n_seg):
                lo = bounds[s] if bounds[s] > start else start
                hi = bounds[s + 1] if bounds[s + 1] < stop else stop
                scale = <floating>scales[s]
                if copy:
                    for i in range(lo, hi):
                        current = scale * theta[i]
                        moved = current + b * (current - previous[i])
                        theta[i] = moved
                        anchor[i] = moved
                        previous[i] = current
                else:
                    for i in range(lo, hi):
                        current = scale * theta[i]
                        theta[i] = current + b * (current - previous[i])
                        previous[i] = current


def all_finite(const floating[::1] a, int n_threads=1):
    """Whether every entry of the flat array ``a`` is finite (one parallel pass)."""
    cdef Py_ssize_t i, n = a.shape[0]
    cdef Py_ssize_t bad = 0
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads):
            bad += not isfinite(a[i])
    return bad == 0


# _simd_level(): each module holds its own copy of _smooth.h's level
include "_simd_level.pxi"
