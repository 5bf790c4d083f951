# The loops of the lifted solvers on raw row-major arrays: BLAS products, BLAS
# level-1 updates, the two layer passes (samples as rows, features as rows), the
# bias sums and the x-step's prox. Shared by the modules that include this file:
# ``_lifted.pyx`` checks its arguments and calls one of these per Python call;
# ``_steps.pyx`` runs a whole batch's inner iterations on them. Everything here
# is nogil and trusts its input (every size > 0 unless said otherwise). Include
# ``_rows.pxi`` first.

from libc.string cimport memcpy
from scipy.linalg.cython_blas cimport dgemm, sgemm
from cython.parallel cimport threadid


cdef void _gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                const floating* a, int lda, const floating* b, int ldb, floating beta,
                floating* c, int ldc) noexcept nogil:
    """Row-major C (m x n) = alpha op(A) op(B) + beta C through column-major BLAS."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    # column-major: C^T (n x m) = alpha op(B)^T op(A)^T + beta C^T
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda, &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda, &beta, c, &ldc)


cdef enum:
    # Multiply-adds a block of a split product must get: below it, waking a thread
    # costs more than it saves (a 100 x 10 x 784 output layer is one block, a
    # 100 x 784 x 784 layer up to 29).
    MIN_MACS_PER_THREAD = 1 << 21
    # Entries a thread must get before a level-1 update (axpy, scal) is split.
    MIN_ENTRIES_PER_BLAS1_THREAD = 1 << 16
    # Blocks of a split product start at multiples of this many rows or columns (and
    # split vectors at multiples of 16 x BLOCK_ALIGN entries), so every block but the
    # last fills BLAS's register tiles and whole cache lines.
    BLOCK_ALIGN = 16


cdef void _gemm_block(bint trans_a, bint trans_b, bint split_rows, Py_ssize_t start, Py_ssize_t stop,
                      int m, int n, int k, floating alpha, const floating* a, int lda, const floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    """Rows (``split_rows``) or columns ``[start, stop)`` of the row-major product of :func:`_gemm`."""
    if split_rows:        # rows of C are rows of op(A)
        _gemm(trans_a, trans_b, <int>(stop - start), n, k, alpha, a + (start if trans_a else start * lda), lda,
              b, ldb, beta, c + start * ldc, ldc)
    else:                 # columns of C are columns of op(B)
        _gemm(trans_a, trans_b, m, <int>(stop - start), k, alpha, a, lda, b + (start * ldb if trans_b else start),
              ldb, beta, c + start, ldc)


cdef Py_ssize_t _gemm_blocks(int m, int n, int k, int n_blocks, bint* split_rows, Py_ssize_t* block) noexcept nogil:
    """How :func:`_parallel_gemm` splits C (m x n): the number of blocks (1: not split), whether
    they are rows (else columns) and their length. Depends on the shape and ``n_blocks`` alone."""
    cdef Py_ssize_t extent, macs = <Py_ssize_t>m * n * k
    cdef Py_ssize_t count = n_blocks
    split_rows[0] = m >= n
    extent = m if split_rows[0] else n
    if macs // MIN_MACS_PER_THREAD < count:
        count = macs // MIN_MACS_PER_THREAD
    if extent // BLOCK_ALIGN < count:
        count = extent // BLOCK_ALIGN
    if count <= 1:
        block[0] = extent
        return 1
    # aligned blocks of (nearly) equal size; the last one takes the remainder
    block[0] = ((extent + count - 1) // count + BLOCK_ALIGN - 1) // BLOCK_ALIGN * BLOCK_ALIGN
    return (extent + block[0] - 1) // block[0]


cdef void _parallel_gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha, const floating* a,
                         int lda, const floating* b, int ldb, floating beta, floating* c, int ldc,
                         int n_blocks, int n_threads) noexcept nogil:
    """:func:`_gemm` in up to ``n_blocks`` blocks of C, spread over up to ``n_threads`` OpenMP threads.

    Each thread calls BLAS on its own rows (or columns) of C: with BLAS limited to
    one thread (as every fit does, see ``bregman_solvers._threads``) the library's
    OpenMP pool is the only one that runs. The longer side of C is split, in
    aligned blocks, fewer for a small product (:func:`_gemm_blocks`). BLAS may round
    a block differently from the whole product (its kernels' order depends on the
    sizes), so the blocks depend on the shape and ``n_blocks`` alone, never on
    ``n_threads``: the result is the same for every thread count.
    """
    cdef bint split_rows
    cdef Py_ssize_t block, t, start, stop
    cdef Py_ssize_t count = _gemm_blocks(m, n, k, n_blocks, &split_rows, &block)
    cdef Py_ssize_t extent = m if split_rows else n
    if count == 1:
        _gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    if n_threads > count:
        n_threads = <int>count
    for t in prange(count, schedule="static", num_threads=n_threads if n_threads > 1 else 1):
        start = t * block
        stop = start + block if start + block < extent else extent
        _gemm_block(trans_a, trans_b, split_rows, start, stop, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)


cdef inline void _product(bint trans_a, bint trans_b, floating alpha, const floating* a, Py_ssize_t a_rows,
                          Py_ssize_t a_cols, const floating* b, Py_ssize_t b_rows, Py_ssize_t b_cols,
                          floating beta, floating* c, int n_blocks, int n_threads) noexcept nogil:
    """``C = alpha op(A) op(B) + beta C`` for C-contiguous ``A`` (a_rows x a_cols), ``B`` and ``C``,
    in up to ``n_blocks`` blocks over up to ``n_threads`` threads (:func:`_parallel_gemm`)."""
    cdef int m = <int>(a_cols if trans_a else a_rows)
    cdef int k = <int>(a_rows if trans_a else a_cols)
    cdef int n = <int>(b_rows if trans_b else b_cols)
    _parallel_gemm(trans_a, trans_b, m, n, k, alpha, a, <int>a_cols, b, <int>b_cols, beta, c, n, n_blocks,
                   n_threads)


cdef void _axpy(Py_ssize_t n, floating alpha, const floating* x, floating* y) noexcept nogil:
    """``y += alpha x`` in one loop that the compiler vectorises.

    Not BLAS: its kernels round the tail of a vector (past the last full SIMD block)
    differently from the body, so the pieces of a split vector would not match the
    whole; here every entry is rounded the same way wherever a piece starts. The pass
    is memory-bound: the same speed as BLAS's.
    """
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = y[i] + alpha * x[i]


cdef void _scal(Py_ssize_t n, floating alpha, floating* x) noexcept nogil:
    """``x *= alpha`` (one vectorised loop, for the reason of :func:`_axpy`)."""
    cdef Py_ssize_t i
    for i in range(n):
        x[i] = alpha * x[i]


cdef Py_ssize_t _vector_blocks(Py_ssize_t n, int n_threads, Py_ssize_t* block) noexcept nogil:
    """How many aligned pieces a level-1 update of ``n`` entries is split into (``block``: their length)."""
    cdef Py_ssize_t n_blocks = n_threads, align = 16 * BLOCK_ALIGN
    if n // MIN_ENTRIES_PER_BLAS1_THREAD < n_blocks:
        n_blocks = n // MIN_ENTRIES_PER_BLAS1_THREAD
    if n_blocks < 1:
        n_blocks = 1
    block[0] = ((n + n_blocks - 1) // n_blocks + align - 1) // align * align
    return n_blocks


cdef void _parallel_axpy(Py_ssize_t n, floating alpha, const floating* x, floating* y,
                         int n_threads) noexcept nogil:
    """:func:`_axpy` in aligned pieces over up to ``n_threads`` threads (entrywise: same result);
    ``x`` NULL: :func:`_scal` of ``y`` instead."""
    cdef Py_ssize_t block, t, start, length
    cdef Py_ssize_t n_blocks = _vector_blocks(n, n_threads, &block)
    for t in prange(n_blocks, schedule="static", num_threads=<int>n_blocks):
        start = t * block
        if start < n:
            length = block if start + block < n else n - start
            if x != NULL:
                _axpy(length, alpha, x + start, y + start)
            else:
                _scal(length, alpha, y + start)


cdef void _parallel_scal(Py_ssize_t n, floating alpha, floating* x, int n_threads) noexcept nogil:
    """:func:`_scal` in aligned pieces over up to ``n_threads`` threads."""
    _parallel_axpy(n, alpha, NULL, x, n_threads)


cdef inline void _x_step_row(int penalty, int kind, floating p, double c, const floating* v, floating* x,
                             Py_ssize_t n) noexcept nogil:
    """One row's x-step: ``x = prox_{c Psi}(v)``; MAC-QP, whose x is unconstrained: ``x = v``."""
    if penalty == 2:
        memcpy(x, v, n * sizeof(floating))
    else:
        _prox_row(kind, p, c, v, x, n)


cdef void _x_step_rows(int penalty, int kind, floating p, double c, const floating* v, floating* x,
                       Py_ssize_t n_rows, Py_ssize_t n, int n_threads) noexcept nogil:
    """:func:`_x_step_row` for every row, rows split over ``n_threads``."""
    cdef Py_ssize_t i
    for i in prange(n_rows, schedule="static", num_threads=n_threads):
        _x_step_row(penalty, kind, p, c, v + i * n, x + i * n, n)


cdef inline double _sample_pass_row(int penalty, int kind, floating p, floating* z_row, const floating* b,
                                    const floating* x_row, floating* residual_row, floating* v_row, floating a_x,
                                    floating c_z, bint keep_z, double prox_c, floating* x_out_row, floating* work,
                                    Py_ssize_t n) noexcept nogil:
    """One sample's row of :func:`_sample_rows_pass` (``v_row``, ``x_out_row``, ``work`` may be NULL)."""
    cdef Py_ssize_t j
    if x_out_row != NULL:
        _x_step_row(penalty, kind, p, prox_c, v_row, x_out_row, n)
    if penalty == 2:
        for j in range(n):
            z_row[j] = z_row[j] + b[j]
        return _qp_row(kind, p, x_row, z_row, residual_row, v_row, a_x, c_z, work, n)
    return _layer_row(IDENTITY if penalty == 1 else kind, p, x_row, z_row, b, residual_row, v_row, a_x, c_z,
                      work, keep_z, n)


cdef void _sample_rows_pass(int penalty, int kind, floating p, floating* z, const floating* b, const floating* x,
                            floating* residual, floating* loss, floating* v, floating a_x, floating c_z,
                            bint keep_z, double prox_c, floating* x_out, Py_ssize_t n_samples, Py_ssize_t n,
                            int n_threads, floating* scratch) noexcept nogil:
    """The loop of ``layer_pass``: arrays ``(n_samples, n)``; ``loss``, ``v``, ``x_out`` may be NULL.

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
                                        x_out + i * n if x_out != NULL else <floating*>NULL, work, n)
            if with_loss:
                loss[i] = <floating>row_loss


cdef inline double _feature_pass_row(int penalty, int kind, floating p, floating* z_row, floating bias,
                                     const floating* x_row, floating* residual_row, floating* v_row, floating a_x,
                                     floating c_z, bint keep_z, double prox_c, floating* x_out_row,
                                     floating* bias_row, floating* work, Py_ssize_t n_samples) noexcept nogil:
    """One feature's row of :func:`_feature_rows_pass`: its bias repeated into ``bias_row``
    (``n_samples`` entries), so the row kernels of the samples layout serve unchanged."""
    cdef Py_ssize_t i
    for i in range(n_samples):
        bias_row[i] = bias
    return _sample_pass_row(penalty, kind, p, z_row, bias_row, x_row, residual_row, v_row, a_x, c_z, keep_z,
                            prox_c, x_out_row, work, n_samples)


cdef void _feature_rows_pass(int penalty, int kind, floating p, floating* z, const floating* b, const floating* x,
                             floating* residual, double* loss, floating* v, floating a_x, floating c_z,
                             bint keep_z, double prox_c, floating* x_out, Py_ssize_t n_rows, Py_ssize_t n_samples,
                             int n_threads, floating* scratch) noexcept nogil:
    """The loop of ``layer_pass_features``: arrays ``(n_rows, n_samples)``, entrywise kinds only.

    ``scratch`` holds ``2 n_samples`` entries per thread: a row's bias repeated, then its
    per-entry losses.
    """
    cdef Py_ssize_t j
    cdef bint with_loss = loss != NULL
    cdef floating* bias_row
    cdef floating* work
    cdef double row_loss
    with parallel(num_threads=n_threads):
        bias_row = scratch + threadid() * 2 * n_samples
        work = bias_row + n_samples if with_loss else <floating*>NULL
        for j in prange(n_rows, schedule="static"):
            row_loss = _feature_pass_row(penalty, kind, p, z + j * n_samples, b[j], x + j * n_samples,
                                         residual + j * n_samples,
                                         v + j * n_samples if v != NULL else <floating*>NULL, a_x, c_z, keep_z,
                                         prox_c, x_out + j * n_samples if x_out != NULL else <floating*>NULL,
                                         bias_row, work, n_samples)
            if with_loss:
                loss[j] = row_loss


cdef void _column_sums(const floating* a, Py_ssize_t n_rows, Py_ssize_t n, floating* out, floating scale,
                       bint accumulate, floating* sums) noexcept nogil:
    """``out (+)= scale * sum_i a[i, :]``, rows summed in order into ``sums`` (n entries)."""
    _column_sums_strided(a, n_rows, n, n, out, scale, accumulate, sums)


cdef void _column_sums_strided(const floating* a, Py_ssize_t n_rows, Py_ssize_t n, Py_ssize_t lda, floating* out,
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


cdef void _row_sums(const floating* a, Py_ssize_t n_rows, Py_ssize_t n, floating* out, floating scale,
                    bint accumulate) noexcept nogil:
    """``out[j] (+)= scale * sum_i a[j, i]``, each row in eight interleaved partial sums."""
    cdef Py_ssize_t i, j, r, n_blocks = n // 8
    cdef floating total
    cdef floating lanes[8]
    cdef const floating* row
    for j in range(n_rows):
        row = a + j * n
        for r in range(8):
            lanes[r] = 0
        for i in range(n_blocks):
            for r in range(8):
                lanes[r] = lanes[r] + row[8 * i + r]
        total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
        for i in range(8 * n_blocks, n):
            total = total + row[i]
        if accumulate:
            out[j] = out[j] + scale * total
        else:
            out[j] = scale * total
