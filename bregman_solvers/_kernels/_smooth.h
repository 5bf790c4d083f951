/* tanh and sigmoid, and the proxes of their penalties, in code the compiler vectorises.
 *
 * libm's tanh and exp are calls a loop cannot vectorise, and the proxes of tanh and
 * sigmoid are a Newton solve per entry (MATH.md, the prox table). Here everything is
 * straight-line arithmetic:
 *
 * 1. One exponential core: e^{-a} and e^{-a} - 1 for a >= 0. Cody-Waite reduction
 *    a = k ln 2 - s with |s| <= ln(2) / 2, e^s - 1 by its Taylor polynomial (no
 *    constant term, so e^{-a} - 1 keeps its relative accuracy for small a), and
 *    2^{-k} built from its bits (split in two factors, so results that underflow
 *    into the subnormals are rounded gradually). Double: 13 terms (a few 1e-18
 *    relative), or 9 (1e-12, for results rounded to float32). Float: 6 terms.
 * 2. tanh and sigmoid from it without cancellation: with E = e^{-2|x|} - 1,
 *    tanh|x| = -E / (2 + E); sigmoid from e = e^{-|x|}.
 * 3. The proxes of a chunk of a row (MATH.md: (1 - c) x + c Phi'(x) = v). Both are
 *    a tanh(u) + b u = r for u (tanh: u = y = artanh x, a = 1 - c, b = c, r = v;
 *    sigmoid: u = y / 2 = logit(x) / 2, a = (1 - c) / 2, b = 2 c, r = v - (1 - c) / 2),
 *    an increasing function of u whose root lies in [(r - |a|) / b, (r + |a|) / b].
 *    Newton starts at u0 = r / (a + b), on the side of the root from which it
 *    converges monotonically (for r > 0 the function is concave on u > 0 when
 *    a > 0 and u0 lies left of the root, convex when a < 0 and u0 lies right of it;
 *    r < 0 mirrors this). Steps in float arithmetic (four lanes) until every entry
 *    of the chunk has settled to 1e-3, then one Newton step in double (two for
 *    double results) from which x follows to first order. An entry whose last
 *    double step was not small enough is returned as NaN, and the caller solves it
 *    with the safeguarded scalar Newton of _newton.pxd.
 *
 * No branches depend on the data inside the loops (selects only), no reassociation
 * is asked for: the results are the same at every vector width.
 */
#ifndef BREGMAN_SOLVERS_SMOOTH_H
#define BREGMAN_SOLVERS_SMOOTH_H
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BS_CHUNK 64

/* always inlined: each caller's constant flags leave its loops without branches (gcc does not
 * vectorise them otherwise), and the AVX2 copies below get their own copy of every helper */
#if defined(__GNUC__)
#define BS_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define BS_ALWAYS_INLINE static inline
#endif

/* ln 2 split so that k * LN2_HI is exact for the k used here (its low bits are zero) */
#define BS_LN2_HI 6.93147180369123816490e-01
#define BS_LN2_LO 1.90821492927058770002e-10
#define BS_INV_LN2 1.44269504088896338700e+00
#define BS_SHIFT 6755399441055744.0         /* 1.5 * 2^52: adding it rounds to an integer */
#define BS_LN2_HI_F 0.693145751953125f
#define BS_LN2_LO_F 1.428606765330187045e-06f
#define BS_SHIFT_F 12582912.0f              /* 1.5 * 2^23 */

/* 2^{-k} for 0 <= k <= 1022 (float: 126), from its exponent bits */
BS_ALWAYS_INLINE double bs_pow2_neg(uint64_t k)
{
    uint64_t bits = (1023 - k) << 52;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

BS_ALWAYS_INLINE float bs_pow2_negf(int32_t k)
{
    uint32_t bits = (uint32_t)(127 - k) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* e^s - 1 for |s| <= ln(2) / 2: Taylor to s^13 (error below 5e-18 relative) or to s^9 (2e-12),
 * summed as s + s^2 q so that the last rounding is that of s plus a term below |s| / 5 */
BS_ALWAYS_INLINE double bs_expm1_poly(double s, const int precise)
{
    double q;
    if (precise) {
        q = 1.0 / 6227020800.0;
        q = 1.0 / 479001600.0 + s * q;
        q = 1.0 / 39916800.0 + s * q;
        q = 1.0 / 3628800.0 + s * q;
        q = 1.0 / 362880.0 + s * q;
    } else {
        q = 1.0 / 362880.0;
    }
    q = 1.0 / 40320.0 + s * q;
    q = 1.0 / 5040.0 + s * q;
    q = 1.0 / 720.0 + s * q;
    q = 1.0 / 120.0 + s * q;
    q = 1.0 / 24.0 + s * q;
    q = 1.0 / 6.0 + s * q;
    q = 0.5 + s * q;
    return s + (s * s) * q;
}

/* e^{-a} - 1 for a >= 0 (a above 746 is taken as 746: e^{-a} rounds to 0 there); *e = e^{-a} */
BS_ALWAYS_INLINE double bs_expm1_neg(double a, double *e, const int precise)
{
    double shifted, kd, s, p, scale;
    uint64_t k, half;          /* unsigned: SSE2 has a logical but no arithmetic 64-bit shift */
    a = a < 746.0 ? a : 746.0;
    shifted = a * BS_INV_LN2 + BS_SHIFT;
    kd = shifted - BS_SHIFT;                      /* round(a / ln 2) */
    memcpy(&k, &shifted, sizeof k);
    k -= 0x4338000000000000ULL;                    /* the same integer, from the bits */
    s = (kd * BS_LN2_HI - a) + kd * BS_LN2_LO;    /* k ln 2 - a, |s| <= ln(2) / 2 */
    p = bs_expm1_poly(s, precise);
    half = k >> 1;
    scale = bs_pow2_neg(half) * bs_pow2_neg(k - half);   /* 2^{-k}, exact down to 2^{-1074} */
    *e = scale + scale * p;
    return scale * p + (scale - 1.0);            /* k = 0: p itself */
}

/* float arithmetic (the Newton iterations' approximate stage): about 2 float ulps, a <= 87 */
BS_ALWAYS_INLINE float bs_expm1_negf(float a)
{
    float shifted, kf, s, p;
    int32_t k;
    float scale;
    a = a < 87.0f ? a : 87.0f;
    shifted = a * 1.44269504f + BS_SHIFT_F;
    kf = shifted - BS_SHIFT_F;
    memcpy(&k, &shifted, sizeof k);
    k -= 0x4B400000;
    s = (kf * BS_LN2_HI_F - a) + kf * BS_LN2_LO_F;
    p = 1.0f / 720.0f;
    p = 1.0f / 120.0f + s * p;
    p = 1.0f / 24.0f + s * p;
    p = 1.0f / 6.0f + s * p;
    p = 0.5f + s * p;
    p = s + (s * s) * p;
    scale = bs_pow2_negf(k);
    return scale * p + (scale - 1.0f);
}

/* num / (2 + E) for -1 <= E <= 0; with precise, the rounding of 2 + E is compensated (its
 * error E - (q - 2) is exact, |E| <= 2), which float32 results do not need */
BS_ALWAYS_INLINE double bs_over_two_plus(double num, double E, const int precise)
{
    double q = 2.0 + E, ratio = num / q;
    if (precise)
        ratio -= ratio * ((E - (q - 2.0)) / q);
    return ratio;
}

/* tanh(x): -E / (2 + E) with E = e^{-2|x|} - 1, the sign of x */
BS_ALWAYS_INLINE double bs_tanh(double x, const int precise)
{
    double e, E = bs_expm1_neg(2.0 * fabs(x), &e, precise);
    return copysign(bs_over_two_plus(-E, E, precise), x);
}

/* sigmoid(x): 1 / (1 + e) for x >= 0, e / (1 + e) below, e = e^{-|x|} */
BS_ALWAYS_INLINE double bs_sigmoid(double x, const int precise)
{
    double e, E = bs_expm1_neg(fabs(x), &e, precise);
    return bs_over_two_plus(x >= 0 ? 1.0 : e, E, precise);
}

/* bs_prox_smooth_chunk (at the end), for constant flags */
BS_ALWAYS_INLINE void bs_prox_smooth_chunk_body(const int sigmoid, double c, const double *v, double *x,
                                                Py_ssize_t m, const int double_out)
{
    const double a = sigmoid ? 0.5 * (1.0 - c) : 1.0 - c;
    const double b = sigmoid ? 2.0 * c : c;
    const double shift = sigmoid ? 0.5 * (1.0 - c) : 0.0;
    const double aa = fabs(a), inv_b = 1.0 / b, inv_ab = 1.0 / (a + b);
    const float af = (float)a, bf = (float)b;
    const double settled = double_out ? 1e-9 : 1e-5;
    float u[BS_CHUNK], r[BS_CHUNK], lo[BS_CHUNK], hi[BS_CHUNK];
    int moved[BS_CHUNK];
    double ud[BS_CHUNK];
    Py_ssize_t j;
    int it, steps;

    for (j = 0; j < m; j++) {
        /* the bracket only has to hold the root up to float rounding: products, not divisions */
        double rj = v[j] - shift, l = (rj - aa) * inv_b, h = (rj + aa) * inv_b, u0 = rj * inv_ab;
        u0 = u0 < l ? l : (u0 > h ? h : u0);
        r[j] = (float)rj;
        lo[j] = (float)l;
        hi[j] = (float)h;
        u[j] = (float)u0;
    }
    /* float stage: Newton until every step is below 1e-3 of its iterate (at most 12) */
    for (it = 0; it < 12; it++) {
        int unsettled = 0;
        for (j = 0; j < m; j++) {
            /* with E = e^{-2|u|} - 1, q = 2 + E: tanh u = -E / q and 1 - tanh^2 u = 4 (1 + E) / q^2,
               so the Newton step h / h' is one division */
            float uj = u[j], E = bs_expm1_negf(2.0f * fabsf(uj)), q = 2.0f + E;
            float tq = copysignf(-E, uj), rest = bf * uj - r[j];      /* tq = q tanh u */
            float un = uj - q * (af * tq + rest * q) / (4.0f * af * (1.0f + E) + bf * q * q);
            un = un < lo[j] ? lo[j] : (un > hi[j] ? hi[j] : un);
            moved[j] = fabsf(un - uj) > 1e-3f * fabsf(un);
            u[j] = un;
        }
        for (j = 0; j < m; j++)         /* an OR over the chunk: a separate loop, so both vectorise */
            unsettled |= moved[j];
        if (!unsettled)
            break;
    }
    /* double stage, in y = Phi'(x) itself (sigmoid: y = 2 u), where the equation
       (1 - c) s(y) + c y = v has no constant to cancel: Newton steps with the accurate core,
       and x to first order from the last. With e = e^{-k|y|} (k = 2 for tanh, 1 for
       sigmoid), q = 1 + e: s = n / q with n = q tanh y = sign(y) (1 - e), or n = 1 (y >= 0)
       or e (sigmoid), and s' = g / q^2 with g = 4 e or e. With H = q h (h the residual) and
       D = q^2 h', the step is dy = q H / D and x = s(y - dy) = (n D - g H) / (q D): one
       division per entry */
    for (j = 0; j < m; j++)
        ud[j] = sigmoid ? 2.0 * (double)u[j] : (double)u[j];
    for (steps = double_out ? 2 : 1; steps > 0; steps--) {
        for (j = 0; j < m; j++) {
            double y = ud[j], e, E = bs_expm1_neg((sigmoid ? 1.0 : 2.0) * fabs(y), &e, double_out), q = 2.0 + E;
            double n = sigmoid ? (y >= 0 ? 1.0 : e) : copysign(-E, y), g = sigmoid ? e : 4.0 * e;
            double H = (1.0 - c) * n + (c * y - v[j]) * q, D = (1.0 - c) * g + c * q * q;
            double xj = (n * D - g * H) / (q * D);
            xj = sigmoid ? (xj < 0.0 ? 0.0 : (xj > 1.0 ? 1.0 : xj)) : (xj < -1.0 ? -1.0 : (xj > 1.0 ? 1.0 : xj));
            ud[j] = y - q * H / D;
            /* settled: the last step |q H / D| within settled |y| */
            x[j] = fabs(q * H) <= settled * fabs(y) * fabs(D) ? xj : NAN;
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Run-time dispatch to AVX2 copies of the row loops.
 *
 * The library is compiled for the baseline instruction set (x86-64: SSE2, four float or two
 * double lanes), but most machines have AVX2 (eight and four, and the integer and select
 * instructions the exponential core uses): the same source compiled for it runs the prox
 * 2.7x and sigma 2.5x faster (one thread). The copies are made without FMA, so the compiler
 * cannot contract a * b + c and every result is the baseline's bit for bit, on every machine
 * (tests/test_smooth.py compares the two). bs_simd_level: -1 until the first call asks the
 * CPU (and the OS, which libgcc checks for the AVX registers' state); the tests force 0.
 * ---------------------------------------------------------------------------------------- */
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define BS_HAVE_AVX2_COPIES 1
#define BS_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define BS_HAVE_AVX2_COPIES 0
#define BS_TARGET_AVX2
#endif

#if defined(__GNUC__) || defined(__clang__)
#define BS_LOAD(p) __atomic_load_n(p, __ATOMIC_RELAXED)
#define BS_STORE(p, v) __atomic_store_n(p, v, __ATOMIC_RELAXED)
#else
#define BS_LOAD(p) (*(volatile int *)(p))
#define BS_STORE(p, v) (*(volatile int *)(p) = (v))
#endif

static int bs_simd_level = -1;

/* the level in use: 1 when the AVX2 copies run, 0 for the baseline (asked once; a race of
 * two first callers stores the same value) */
static inline int bs_simd(void)
{
    int level = BS_LOAD(&bs_simd_level);
    if (level < 0) {
#if BS_HAVE_AVX2_COPIES
        __builtin_cpu_init();
        level = __builtin_cpu_supports("avx2") ? 1 : 0;
#else
        level = 0;
#endif
        BS_STORE(&bs_simd_level, level);
    }
    return level;
}

/* request a level (0 baseline, 1 AVX2); returns the level in use, which is 0 where the CPU
 * lacks AVX2 whatever was asked */
static inline int bs_set_simd(int level)
{
    int available;
    BS_STORE(&bs_simd_level, -1);
    available = bs_simd();
    level = level < available ? level : available;
    BS_STORE(&bs_simd_level, level < 0 ? 0 : level);
    return bs_simd();
}

/* sigma of a row for tanh (sigmoid = 0) or sigmoid, minus x unless x is NULL: out may be z.
 * A chunk at a time through a local buffer, so that no loop needs an alias check. Rounded
 * as the scalar code rounds: sigma to the result's type first, then the difference. */
#define BS_SIGMA_ROW_BODY(T, PRECISE)                                                       \
    {                                                                                       \
        T s[BS_CHUNK];                                                                      \
        Py_ssize_t start, j, m;                                                             \
        for (start = 0; start < n; start += m) {                                            \
            m = n - start < BS_CHUNK ? n - start : BS_CHUNK;                                \
            for (j = 0; j < m; j++)                                                         \
                s[j] = (T)(sigmoid ? bs_sigmoid(z[start + j], PRECISE)                     \
                                   : bs_tanh(z[start + j], PRECISE));                       \
            if (x != NULL)                                                                  \
                for (j = 0; j < m; j++)                                                     \
                    out[start + j] = s[j] - x[start + j];                                   \
            else                                                                            \
                for (j = 0; j < m; j++)                                                     \
                    out[start + j] = s[j];                                                  \
        }                                                                                   \
    }

BS_ALWAYS_INLINE void bs_sigma_row_f_body(const int sigmoid, const float *z, const float *x,
                                          float *out, Py_ssize_t n)
BS_SIGMA_ROW_BODY(float, 0)

BS_ALWAYS_INLINE void bs_sigma_row_d_body(const int sigmoid, const double *z, const double *x,
                                          double *out, Py_ssize_t n)
BS_SIGMA_ROW_BODY(double, 1)

/* one function per (flags, instruction set): the flags are constants inside each, so its
 * loops carry no branches */
#define BS_DEFINE_COPIES(SUFFIX, TARGET)                                                    \
    static TARGET void bs_prox_tanh_f##SUFFIX(double c, const double *v, double *x, Py_ssize_t m)       \
    { bs_prox_smooth_chunk_body(0, c, v, x, m, 0); }                                        \
    static TARGET void bs_prox_tanh_d##SUFFIX(double c, const double *v, double *x, Py_ssize_t m)       \
    { bs_prox_smooth_chunk_body(0, c, v, x, m, 1); }                                        \
    static TARGET void bs_prox_sigmoid_f##SUFFIX(double c, const double *v, double *x, Py_ssize_t m)    \
    { bs_prox_smooth_chunk_body(1, c, v, x, m, 0); }                                        \
    static TARGET void bs_prox_sigmoid_d##SUFFIX(double c, const double *v, double *x, Py_ssize_t m)    \
    { bs_prox_smooth_chunk_body(1, c, v, x, m, 1); }                                        \
    static TARGET void bs_tanh_row_f##SUFFIX(const float *z, const float *x, float *out, Py_ssize_t n)  \
    { bs_sigma_row_f_body(0, z, x, out, n); }                                               \
    static TARGET void bs_tanh_row_d##SUFFIX(const double *z, const double *x, double *out, Py_ssize_t n) \
    { bs_sigma_row_d_body(0, z, x, out, n); }                                               \
    static TARGET void bs_sigmoid_row_f##SUFFIX(const float *z, const float *x, float *out, Py_ssize_t n) \
    { bs_sigma_row_f_body(1, z, x, out, n); }                                               \
    static TARGET void bs_sigmoid_row_d##SUFFIX(const double *z, const double *x, double *out, Py_ssize_t n) \
    { bs_sigma_row_d_body(1, z, x, out, n); }

BS_DEFINE_COPIES(_base, )
#if BS_HAVE_AVX2_COPIES
BS_DEFINE_COPIES(_avx2, BS_TARGET_AVX2)
#define BS_PICK(NAME) (bs_simd() ? NAME##_avx2 : NAME##_base)
#else
#define BS_PICK(NAME) NAME##_base
#endif

/* The prox of c Psi (tanh: sigmoid = 0; sigmoid: sigmoid = 1) of m <= BS_CHUNK entries v,
 * into x; entries left unsettled are NaN (see the header). double_out: results kept in
 * double (two double steps, settled to 1e-9), else rounded to float32 (one, 1e-6). */
static inline void bs_prox_smooth_chunk(int sigmoid, double c, const double *v, double *x,
                                        Py_ssize_t m, int double_out)
{
    if (sigmoid)
        (double_out ? BS_PICK(bs_prox_sigmoid_d) : BS_PICK(bs_prox_sigmoid_f))(c, v, x, m);
    else
        (double_out ? BS_PICK(bs_prox_tanh_d) : BS_PICK(bs_prox_tanh_f))(c, v, x, m);
}

/* out = sigma(z) - x (x NULL: sigma(z)) of a row, tanh or sigmoid; out may be z */
static inline void bs_sigma_row_f(int sigmoid, const float *z, const float *x, float *out, Py_ssize_t n)
{
    (sigmoid ? BS_PICK(bs_sigmoid_row_f) : BS_PICK(bs_tanh_row_f))(z, x, out, n);
}

static inline void bs_sigma_row_d(int sigmoid, const double *z, const double *x, double *out, Py_ssize_t n)
{
    (sigmoid ? BS_PICK(bs_sigmoid_row_d) : BS_PICK(bs_tanh_row_d))(z, x, out, n);
}

#endif
