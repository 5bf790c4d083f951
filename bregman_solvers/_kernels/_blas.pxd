# BLAS products and level-1 updates on raw row-major arrays, with the split of a
# large product into blocks of C that OpenMP threads hand to single-threaded BLAS
# (the library's one thread pool during a fit: ``bregman_solvers._threads``). nogil,
# and trusting its input (every size > 0 unless said otherwise).

from cython cimport floating
from cython.parallel cimport prange
from scipy.linalg.cython_blas cimport dgemm, sgemm



cdef inline void _gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
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


cdef inline void _gemm_block(bint trans_a, bint trans_b, bint split_rows, Py_ssize_t start, Py_ssize_t stop,
                      int m, int n, int k, floating alpha, const floating* a, int lda, const floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    """Rows (``split_rows``) or columns ``[start, stop)`` of the row-major product of :func:`_gemm`."""
    if split_rows:        # rows of C are rows of op(A)
        _gemm(trans_a, trans_b, <int>(stop - start), n, k, alpha, a + (start if trans_a else start * lda), lda,
              b, ldb, beta, c + start * ldc, ldc)
    else:                 # columns of C are columns of op(B)
        _gemm(trans_a, trans_b, m, <int>(stop - start), k, alpha, a, lda, b + (start * ldb if trans_b else start),
              ldb, beta, c + start, ldc)


cdef inline Py_ssize_t _gemm_blocks(int m, int n, int k, int n_blocks, bint* split_rows, Py_ssize_t* block) noexcept nogil:
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


cdef inline void _parallel_gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha, const floating* a,
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


cdef inline void _axpy(Py_ssize_t n, floating alpha, const floating* x, floating* y) noexcept nogil:
    """``y += alpha x`` in one loop that the compiler vectorises.

    Not BLAS: its kernels round the tail of a vector (past the last full SIMD block)
    differently from the body, so the pieces of a split vector would not match the
    whole; here every entry is rounded the same way wherever a piece starts. The pass
    is memory-bound: the same speed as BLAS's.
    """
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = y[i] + alpha * x[i]


cdef inline void _scal(Py_ssize_t n, floating alpha, floating* x) noexcept nogil:
    """``x *= alpha`` (one vectorised loop, for the reason of :func:`_axpy`)."""
    cdef Py_ssize_t i
    for i in range(n):
        x[i] = alpha * x[i]


cdef inline Py_ssize_t _vector_blocks(Py_ssize_t n, int n_threads, Py_ssize_t* block) noexcept nogil:
    """How many aligned pieces a level-1 update of ``n`` entries is split into (``block``: their length)."""
    cdef Py_ssize_t n_blocks = n_threads, align = 16 * BLOCK_ALIGN
    if n // MIN_ENTRIES_PER_BLAS1_THREAD < n_blocks:
        n_blocks = n // MIN_ENTRIES_PER_BLAS1_THREAD
    if n_blocks < 1:
        n_blocks = 1
    block[0] = ((n + n_blocks - 1) // n_blocks + align - 1) // align * align
    return n_blocks


cdef inline void _parallel_axpy(Py_ssize_t n, floating alpha, const floating* x, floating* y,
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


cdef inline void _parallel_scal(Py_ssize_t n, floating alpha, floating* x, int n_threads) noexcept nogil:
    """:func:`_scal` in aligned pieces over up to ``n_threads`` threads."""
    _parallel_axpy(n, alpha, NULL, x, n_threads)
