# cython: language_level=3
"""Proximal-activation kernels: sigma, Phi, Phi*, prox of c*Psi, Bregman loss and gradient.

Layout and conventions (see ``MATH.md`` and ``docs/activations.rst``):

* arrays are C-contiguous ``(n_samples, n_features)`` with samples as rows; every
  kernel runs one OpenMP ``prange`` over rows and treats a row as one sample;
* ``floating`` is float32 or float64; reductions over a row (Phi, Phi*, the loss)
  accumulate in double, so a float32 loss has float32 rounding only at the end;
* the activation is selected by an integer ``kind`` (``KIND_CODES``) with one real
  parameter ``param`` (``a`` of leaky_relu, ``alpha`` of the soft thresholds,
  ignored elsewhere). The ``kind`` switch happens once per row, so each inner
  loop is a tight loop the compiler can vectorise;
* kernels check only what could make them read or write out of bounds (shapes);
  dtype and contiguity are enforced by the typed memoryviews. Finiteness, domains
  and parameter values are validated by :mod:`bregman_solvers.activations`.

The Bregman loss ``B(x, z) = Phi(x) + Phi*(z) - <x, z>`` (eq. 12) is never evaluated
by that difference, which cancels catastrophically for large ``|z|``. Writing
``s = sigma(z)``, ``B = 0.5 |x - s|^2 + [Psi(x) - Psi(s) - <z - s, x - s>]`` where the
bracket is a sum of non-negative terms for the piecewise-linear activations, and
``B`` is a Bernoulli KL divergence for tanh and sigmoid and a categorical KL for
softmax.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport isfinite
from libc.stdlib cimport free

from ._math cimport _work_space
from ._rows cimport (N_KINDS, SOFTMAX, _grad_row, _loss_grad_row, _phi_conj_row, _phi_row, _prox_row,
                     _sigma_row)

from .activation_table import KIND_CODES


# ----------------------------------------------------------------------------
# Python entry points: one prange over samples each.
# ----------------------------------------------------------------------------
cdef inline _check_kind(int kind):
    if not 0 <= kind < N_KINDS:
        raise ValueError(f"kind must be one of the codes in KIND_CODES, got {kind}")


cdef inline _check_threads(int n_threads):
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1 at the kernel level, got {n_threads}")


cdef inline _check_rows(name_a, tuple shape_a, name_b, tuple shape_b):
    if shape_a != shape_b:
        raise ValueError(f"{name_b} must have the shape of {name_a} {shape_a}, got {shape_b}")


def sigma(int kind, double param, const floating[:, ::1] z, floating[:, ::1] out, int n_threads=1):
    """out = sigma(z), row by row (``out`` may be ``z`` itself for the in-place form)."""
    _check_kind(kind)
    _check_threads(n_threads)
    _check_rows("z", (z.shape[0], z.shape[1]), "out", (out.shape[0], out.shape[1]))
    cdef Py_ssize_t i, n = z.shape[1]
    cdef floating p = <floating>param
    with nogil:
        for i in prange(z.shape[0], schedule="static", num_threads=n_threads):
            _sigma_row(kind, p, &z[i, 0], &out[i, 0], n)


def phi(int kind, double param, const floating[:, ::1] x, floating[::1] out, int n_threads=1):
    """out[i] = Phi(x_i) (+inf outside the domain)."""
    _check_kind(kind)
    _check_threads(n_threads)
    _check_rows("x rows", (x.shape[0],), "out", (out.shape[0],))
    cdef Py_ssize_t i, n = x.shape[1]
    cdef floating p = <floating>param
    cdef double* rows = <double*>_work_space(n_threads * n * sizeof(double), "phi")
    cdef double* work
    with nogil:
        with parallel(num_threads=n_threads):
            work = rows + threadid() * n
            for i in prange(x.shape[0], schedule="static"):
                out[i] = <floating>_phi_row(kind, p, &x[i, 0], work, n)
        free(rows)


def phi_conj(int kind, double param, const floating[:, ::1] z, floating[::1] out, int n_threads=1):
    """out[i] = Phi*(z_i)."""
    _check_kind(kind)
    _check_threads(n_threads)
    _check_rows("z rows", (z.shape[0],), "out", (out.shape[0],))
    cdef Py_ssize_t i, n = z.shape[1]
    cdef floating p = <floating>param
    cdef double* rows = <double*>_work_space(n_threads * n * sizeof(double), "phi_conj")
    cdef double* work
    with nogil:
        with parallel(num_threads=n_threads):
            work = rows + threadid() * n
            for i in prange(z.shape[0], schedule="static"):
                out[i] = <floating>_phi_conj_row(kind, p, &z[i, 0], work, n)
        free(rows)


def prox(int kind, double param, double c, const floating[:, ::1] v, floating[:, ::1] out, int n_threads=1):
    """out = prox_{c Psi}(v), row by row (``out`` may be ``v``)."""
    _check_kind(kind)
    _check_threads(n_threads)
    _check_rows("v", (v.shape[0], v.shape[1]), "out", (out.shape[0], out.shape[1]))
    if not c > 0 or not isfinite(c):
        raise ValueError(f"c must be a positive finite number, got {c}")
    cdef Py_ssize_t i, n = v.shape[1]
    cdef floating p = <floating>param
    if kind == SOFTMAX and v.shape[0] > 0 and n > 0 and <const void*>&v[0, 0] == <const void*>&out[0, 0]:
        # the softmax prox keeps warm starts in out while it still reads v
        v = v.copy()
    with nogil:
        for i in prange(v.shape[0], schedule="static", num_threads=n_threads):
            _prox_row(kind, p, c, &v[i, 0], &out[i, 0], n)


def bregman_loss(int kind, double param, const floating[:, ::1] x, const floating[:, ::1] z,
                 floating[::1] out, int n_threads=1):
    """out[i] = B(x_i, z_i) (eq. 12), +inf where x_i is outside the domain of Phi."""
    _check_kind(kind)
    _check_threads(n_threads)
    _check_rows("x", (x.shape[0], x.shape[1]), "z", (z.shape[0], z.shape[1]))
    _check_rows("x rows", (x.shape[0],), "out", (out.shape[0],))
    cdef Py_ssize_t i, n = x.shape[1]
    cdef floating p = <floating>param
    # one row of per-entry losses per thread, allocated before the loop
    cdef floating* rows = <floating*>_work_space(n_threads * n * sizeof(floating), "bregman_loss")
    cdef floating* work
    with nogil:
        with parallel(num_threads=n_threads):
            work = rows + threadid() * n
            for i in prange(x.shape[0], schedule="static"):
                out[i] = <floating>_loss_grad_row(kind, p, &x[i, 0], &z[i, 0], <floating*>NULL, work, n)
        free(rows)


def bregman_grad(int kind, double param, const floating[:, ::1] x, const floating[:, ::1] z,
                 floating[:, ::1] out, int n_threads=1):
    """out = grad_z B(x, z) = sigma(z) - x (Lemma 8)."""
    _check_kind(kind)
    _check_threads(n_threads)
    _check_rows("x", (x.shape[0], x.shape[1]), "z", (z.shape[0], z.shape[1]))
    _check_rows("x", (x.shape[0], x.shape[1]), "out", (out.shape[0], out.shape[1]))
    cdef Py_ssize_t i, n = x.shape[1]
    cdef floating p = <floating>param
    with nogil:
        for i in prange(x.shape[0], schedule="static", num_threads=n_threads):
            _grad_row(kind, p, &x[i, 0], &z[i, 0], &out[i, 0], n)


def bregman_loss_grad(int kind, double param, const floating[:, ::1] x, const floating[:, ::1] z,
                      floating[:, ::1] grad_out, floating[::1] loss_out, int n_threads=1):
    """One pass: loss_out[i] = B(x_i, z_i) and grad_out = sigma(z) - x."""
    _check_kind(kind)
    _check_threads(n_threads)
    _check_rows("x", (x.shape[0], x.shape[1]), "z", (z.shape[0], z.shape[1]))
    _check_rows("x", (x.shape[0], x.shape[1]), "grad_out", (grad_out.shape[0], grad_out.shape[1]))
    _check_rows("x rows", (x.shape[0],), "loss_out", (loss_out.shape[0],))
    cdef Py_ssize_t i, n = x.shape[1]
    cdef floating p = <floating>param
    cdef floating* rows = <floating*>_work_space(n_threads * n * sizeof(floating), "bregman_loss_grad")
    cdef floating* work
    with nogil:
        with parallel(num_threads=n_threads):
            work = rows + threadid() * n
            for i in prange(x.shape[0], schedule="static"):
                loss_out[i] = <floating>_loss_grad_row(kind, p, &x[i, 0], &z[i, 0], &grad_out[i, 0], work, n)
        free(rows)


# _simd_level(): each module holds its own copy of _smooth.h's level
include "_simd_level.pxi"
