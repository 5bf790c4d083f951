# A lifted layer's pass over the rows (samples) of a batch: bias, residual, loss and
# the x-step argument (``_rows.pxd``), the pending x-step's prox, the bias sums. Shared
# by ``_lifted.pyx`` (one call per Python call, arguments checked there) and
# ``_steps.pyx`` (a batch's inner iterations). nogil, trusting its input.

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.string cimport memcpy

from ._rows cimport IDENTITY, _layer_row, _prox_row, _qp_row, _sigma_row


cdef inline void _x_step_row(int penalty, int kind, floating p, double c, const floating* v, floating* x,
                             Py_ssize_t n) noexcept nogil:
    """One row's x-step: ``x = prox_{c Psi}(v)``; MAC-QP, whose x is unconstrained: ``x = v``."""
    if penalty == 2:
        memcpy(x, v, n * sizeof(floating))
    else:
        _prox_row(kind, p, c, v, x, n)


cdef inline void _x_step_rows(int penalty, int kind, floating p, double c, const floating* v, floating* x,
                       Py_ssize_t n_rows, Py_ssize_t n, int n_threads) noexcept nogil:
    """:func:`_x_step_row` for every row, rows split over ``n_threads``."""
    cdef Py_ssize_t i
    for i in prange(n_rows, schedule="static", num_threads=n_threads):
        _x_step_row(penalty, kind, p, c, v + i * n, x + i * n, n)


cdef inline double _sample_pass_row(int penalty, int kind, floating p, floating* z_row, const floating* b,
                                    const floating* x_row, floating* residual_row, floating* v_row, floating a_x,
                                    floating c_z, bint keep_z, double prox_c, floating* x_out_row, floating* work,
                                    Py_ssize_t n, bint forward=False) noexcept nogil:
    """One sample's row of :func:`_sample_rows_pass` (``v_row``, ``x_out_row``, ``work`` may be NULL).

    ``forward``: the target row is first set to the forward pass's ``sigma(z + b)`` (into
    ``x_out_row``, the target itself), in place of the pending x-step."""
    cdef Py_ssize_t j
    if forward:
        for j in range(n):
            x_out_row[j] = z_row[j] + b[j]
        _sigma_row(kind, p, x_out_row, x_out_row, n)
    elif x_out_row != NULL:
        _x_step_row(penalty, kind, p, prox_c, v_row, x_out_row, n)
    if penalty == 2:
        for j in range(n):
            z_row[j] = z_row[j] + b[j]
        return _qp_row(kind, p, x_row, z_row, residual_row, v_row, a_x, c_z, work, n)
    return _layer_row(IDENTITY if penalty == 1 else kind, p, x_row, z_row, b, residual_row, v_row, a_x, c_z,
                      work, keep_z, n)


cdef inline void _sample_rows_pass(int penalty, int kind, floating p, floating* z, const floating* b, const floating* x,
                            floating* residual, floating* loss, floating* v, floating a_x, floating c_z,
                            bint keep_z, double prox_c, floating* x_out, Py_ssize_t n_samples, Py_ssize_t n,
                            int n_threads, floating* scratch, bint forward=False) noexcept nogil:
    """The loop of ``layer_pass``: arrays ``(n_samples, n)``; ``loss``, ``v``, ``x_out`` may be NULL
    (``forward``: see :func:`_sample_pass_row`, with ``x_out`` the target).

    With ``loss``, ``scratch`` holds ``n`` entries per thread for a row's per-entry losses.
    """
    cdef Py_ssize_t i
    cdef bint with_loss = loss != NULL
    cdef floating* work
    cdef double row_loss
    with parallel(num_threads=n_threads):
        # the work row holds a row's per-entry losses; NULL (no loss wanted) skips them
        work = scratch + threadid() * n if with_loss else <floating*>NULL
        for i in prange(n_samples, schedule="static"):
            row_loss = _sample_pass_row(penalty, kind, p, z + i * n, b, x + i * n, residual + i * n,
                                        v + i * n if v != NULL else <floating*>NULL, a_x, c_z, keep_z, prox_c,
                                        x_out + i * n if x_out != NULL else <floating*>NULL, work, n, forward)
            if with_loss:
                loss[i] = <floating>row_loss


cdef inline void _column_sums(const floating* a, Py_ssize_t n_rows, Py_ssize_t n, floating* out, floating scale,
                       bint accumulate, floating* sums) noexcept nogil:
    """``out (+)= scale * sum_i a[i, :]``, rows summed in order into ``sums`` (n entries)."""
    _column_sums_strided(a, n_rows, n, n, out, scale, accumulate, sums)


cdef inline void _column_sums_strided(const floating* a, Py_ssize_t n_rows, Py_ssize_t n, Py_ssize_t lda, floating* out,
                               floating scale, bint accumulate, floating* sums) noexcept nogil:
    """:func:`_column_sums` of the first ``n`` columns of rows ``lda`` apart (a block of columns:
    each column is summed in the same order, so blocks give the whole's sums)."""
    cdef Py_ssize_t i, j
    for j in range(n):
        sums[j] = 0
    for i in range(n_rows):
        for j in range(n):
            sums[j] = sums[j] + a[i * lda + j]
    if accumulate:
        for j in range(n):
            out[j] = out[j] + scale * sums[j]
    else:
        for j in range(n):
            out[j] = scale * sums[j]
