/* Thin wrappers so that Cython code compiles with and without OpenMP. */
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
#endif
