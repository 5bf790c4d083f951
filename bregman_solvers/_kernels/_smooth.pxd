# Declarations of _smooth.h: tanh, sigmoid and the chunked prox solve, vectorisable.

cdef extern from "_smooth.h":
    enum: BS_CHUNK
    double bs_tanh(double x, int precise) noexcept nogil
    double bs_sigmoid(double x, int precise) noexcept nogil
    void bs_prox_smooth_chunk(int sigmoid, double c, const double* v, double* x, Py_ssize_t m,
                              int double_out) noexcept nogil
    void bs_sigma_row_f(int sigmoid, const float* z, const float* x, float* out,
                        Py_ssize_t n) noexcept nogil
    void bs_sigma_row_d(int sigmoid, const double* z, const double* x, double* out,
                        Py_ssize_t n) noexcept nogil
    int bs_simd() noexcept nogil
    int bs_set_simd(int level) noexcept nogil
