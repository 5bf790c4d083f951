/* Thin C helpers for the Cython kernels.
 *
 * 1. OpenMP wrappers so that the kernels compile with and without OpenMP.
 * 2. Row sums with a *scoped* permission to reassociate: `omp simd reduction`
 *    lets the compiler vectorise these sums (and only these), instead of a
 *    global -fassociative-math, which would also be free to reorder the
 *    cancellation-free formulas of the Bregman losses. The summation order is
 *    fixed by the compiled code, so results do not depend on the thread count.
 *    Partial sums accumulate in double for both input types.
 */
#ifndef BREGMAN_SOLVERS_OPENMP_HELPERS_H
#define BREGMAN_SOLVERS_OPENMP_HELPERS_H
#ifdef _OPENMP
#include <omp.h>
static int bs_openmp_enabled(void) { return 1; }
static int bs_omp_get_max_threads(void) { return omp_get_max_threads(); }
#else
static int bs_openmp_enabled(void) { return 0; }
static int bs_omp_get_max_threads(void) { return 1; }
#endif

static double bs_sum_float(const float *a, Py_ssize_t n)
{
    double acc = 0.0;
    Py_ssize_t i;
#pragma omp simd reduction(+:acc)
    for (i = 0; i < n; i++) acc += (double)a[i];
    return acc;
}

static double bs_sum_double(const double *a, Py_ssize_t n)
{
    double acc = 0.0;
    Py_ssize_t i;
#pragma omp simd reduction(+:acc)
    for (i = 0; i < n; i++) acc += a[i];
    return acc;
}
/* Row maxima (n >= 1), vectorised the same scoped way. NaN handling is
 * unspecified, as for any max reduction; the kernels' inputs are finite. */
static float bs_max_float(const float *a, Py_ssize_t n)
{
    float m = a[0];
    Py_ssize_t i;
#pragma omp simd reduction(max:m)
    for (i = 1; i < n; i++) m = a[i] > m ? a[i] : m;
    return m;
}

static double bs_max_double(const double *a, Py_ssize_t n)
{
    double m = a[0];
    Py_ssize_t i;
#pragma omp simd reduction(max:m)
    for (i = 1; i < n; i++) m = a[i] > m ? a[i] : m;
    return m;
}
#endif
