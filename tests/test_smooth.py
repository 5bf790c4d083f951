"""The vectorised tanh and sigmoid of ``_kernels/_smooth.h``: sigma and the prox, against references.

float32 results must be within one float32 ulp of the double-precision value rounded (the
sigma of libm's double ``tanh``/``exp``, the prox of the float64 bisection oracle). float64
results are compared with long-double references (an 80-bit ``np.longdouble``; skipped where
it has no more precision than double): sigma within 3 ulps (libm's own tanh is within 1.2
on these inputs), the prox within a few ulps where the root is well conditioned and to a
relative 1e-12 everywhere (the scalar Newton solve it replaces is no closer: see
docs/performance.rst, "Smooth activations").
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from bregman_solvers import kernels

import oracles

NAMES = ["tanh", "sigmoid"]
LONG = np.longdouble
HAS_LONG = np.finfo(LONG).nmant > np.finfo(np.float64).nmant
needs_long_double = pytest.mark.skipif(not HAS_LONG, reason="np.longdouble is no wider than double here")


def ulp_distance(a, b):
    """How many representable numbers of a's dtype lie between a and b (both finite)."""
    bits = np.int32 if a.dtype == np.float32 else np.int64
    ai = a.view(bits).astype(np.int64)
    bi = b.astype(a.dtype).view(bits).astype(np.int64)
    # sign-magnitude to an ordered integer line
    ai = np.where(ai < 0, np.iinfo(bits).min - ai, ai)
    bi = np.where(bi < 0, np.iinfo(bits).min - bi, bi)
    return np.abs(ai - bi)


def ulp_error(x, ref):
    """|x - ref| in units of the float64 spacing at ref (ref in long double)."""
    return np.abs((x.astype(LONG) - ref) / np.spacing(np.abs(ref).astype(np.float64)).astype(LONG))


def sample(rng, n):
    """Arguments over every regime: tiny, the polynomial's ranges, saturation, over- and underflow."""
    scales = [1e-30, 1e-8, 1e-3, 0.1, 0.5, 2.0, 10.0, 60.0, 400.0]
    z = np.concatenate([rng.standard_normal(n) * s for s in scales])
    edges = [0.0, 0.17, 0.3466, 0.55, 9.0, 20.0, 44.0, 87.0, 88.7, 103.0, 104.0, 700.0, 708.0, 745.0, 746.0, 800.0]
    return np.concatenate([z, edges, np.negative(edges)])


def sigma_of(name, z):
    out = np.empty((1, z.size), z.dtype)
    kernels.sigma(name, z[None], out)
    return out[0]


def prox_of(name, v, c, n_threads=1):
    out = np.empty((1, v.size), v.dtype)
    kernels.prox(name, v[None], c, out, n_threads=n_threads)
    return out[0]


@pytest.mark.parametrize("name", NAMES)
def test_float32_sigma_is_within_one_ulp_of_the_double_value(name, rng):
    z = sample(rng, 20000).astype(np.float32)
    z = z[np.isfinite(z)]
    exact = np.tanh(z.astype(np.float64)) if name == "tanh" else expit(z.astype(np.float64))
    assert ulp_distance(sigma_of(name, z), exact.astype(np.float32)).max() <= 1


@needs_long_double
@pytest.mark.parametrize("name", NAMES)
def test_float64_sigma_is_within_three_ulps(name, rng):
    z = sample(rng, 20000)
    zl = z.astype(LONG)
    ref = np.tanh(zl) if name == "tanh" else 1 / (1 + np.exp(-zl))
    out = sigma_of(name, z)
    normal = np.abs(ref) >= np.finfo(np.float64).tiny        # subnormal results: absolute error only
    assert ulp_error(out[normal], ref[normal]).max() <= 3
    assert np.all(np.abs(out[~normal].astype(LONG) - ref[~normal]) <= 4 * np.finfo(np.float64).smallest_subnormal)


@pytest.mark.parametrize("name", NAMES)
def test_sigma_limits_and_symmetry(name):
    z = np.array([0.0, -0.0, 1e-300, 30.0, -30.0, 1e5, -1e5])
    s = sigma_of(name, z)
    if name == "tanh":
        assert s.tolist()[:3] == [0.0, 0.0, 1e-300] and s[3] == 1.0 and s[4] == -1.0
        assert s[5] == 1.0 and s[6] == -1.0
    else:
        assert s[0] == 0.5 and s[1] == 0.5 and s[5] == 1.0 and s[6] == 0.0
    w = np.random.default_rng(5).standard_normal(1000) * 5
    if name == "tanh":
        np.testing.assert_array_equal(sigma_of(name, -w), -sigma_of(name, w))
    else:
        np.testing.assert_allclose(sigma_of(name, -w), 1 - sigma_of(name, w), rtol=0, atol=2e-16)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("c", [1e-6, 1e-3, 0.05, 1 / 3, 0.9, 1.0, 1.5, 10.0, 1e3])
def test_float32_prox_is_within_one_ulp_of_the_double_prox(name, c, rng):
    v = np.concatenate([rng.standard_normal(3000) * s for s in (1e-6, 0.3, 3.0, 30.0)]).astype(np.float32)
    exact = oracles.prox(name, v.astype(np.float64), c).astype(np.float32)
    assert ulp_distance(prox_of(name, v, c), exact).max() <= 1


def long_double_prox(name, v, c):
    """Bisection in long double on (1 - c) s(y) + c y = v, then x = s(y)."""
    link = np.tanh if name == "tanh" else (lambda y: 1 / (1 + np.exp(-y)))
    v, c = v.astype(LONG), LONG(c)
    hi = np.abs(v) / c + abs(1 - c) / c + 1
    lo = -hi
    with np.errstate(over="ignore"):
        for _ in range(300):
            mid = (lo + hi) / 2
            above = (1 - c) * link(mid) + c * mid - v > 0
            hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
        return link((lo + hi) / 2)


@needs_long_double
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("c", [1e-3, 0.05, 1 / 3, 0.9, 1.5, 10.0])
def test_float64_prox_against_long_double(name, c, rng):
    v = rng.standard_normal(4000) * 3
    ref = long_double_prox(name, v, c)
    out = prox_of(name, v, c)
    ok = ref > np.finfo(np.float64).tiny * 1e3 if name == "sigmoid" else np.abs(ref) > 1e-300
    rel = np.abs((out.astype(LONG) - ref) / ref)[ok]
    assert rel.max() <= 1e-12
    # where the root is well conditioned: tanh with c <= 1, sigmoid away from exp's amplification
    if (name == "tanh" and c <= 1) or (name == "sigmoid" and c >= 0.9):
        assert ulp_error(out, ref).max() <= 8


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 63, 64, 65, 129, 784])
def test_prox_rows_across_chunk_boundaries_in_place(name, dtype, n, rng):
    v = (rng.standard_normal((3, n)) * 4).astype(dtype)
    expected = oracles.prox(name, v.astype(np.float64), 0.3)
    out = np.empty_like(v)
    kernels.prox(name, v, 0.3, out)
    tol = 4e-7 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    inplace = v.copy()
    kernels.prox(name, inplace, 0.3, inplace, n_threads=2)
    np.testing.assert_array_equal(inplace, out)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [1e-12, 1e-9, 1e9])
def test_prox_extreme_steps_fall_back_to_the_scalar_solver(name, dtype, c, rng):
    """Steps so small or large that the vectorised Newton's bracket or start is useless: the
    scalar safeguarded solve takes these entries, and the rows still match the oracle."""
    v = (rng.standard_normal(300) * 3).astype(dtype)
    out = prox_of(name, v, c)
    expected = oracles.prox(name, v.astype(np.float64), c)
    tol = 4e-7 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(NAMES), st.floats(1e-4, 50.0),
       st.lists(st.floats(-60.0, 60.0, allow_nan=False), min_size=1, max_size=150))
def test_prox_is_monotone_and_one_lipschitz(name, c, values):
    """prox of a convex function is firmly non-expansive: monotone and 1-Lipschitz in v."""
    v = np.sort(np.array(values, dtype=np.float64))
    x = prox_of(name, v, c)
    assert np.all(np.diff(x) >= -1e-15)
    assert np.all(np.diff(x) <= np.diff(v) + 1e-12)


# -- the AVX2 copies (kernels.simd_level) ------------------------------------------------------
@pytest.fixture
def avx2():
    """Runs the test with the AVX2 copies available, and gives the level back after it."""
    before = kernels.simd_level()
    if kernels.simd_level("avx2") != "avx2":
        kernels.simd_level(before)
        pytest.skip("this CPU has no AVX2: only the baseline loops run")
    yield
    kernels.simd_level(before)


def both_levels(compute):
    """compute() under the baseline and under AVX2 (restored by the avx2 fixture)."""
    kernels.simd_level("baseline")
    assert kernels.simd_level() == "baseline"
    baseline = compute()
    kernels.simd_level("avx2")
    assert kernels.simd_level() == "avx2"
    return baseline, compute()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avx2_sigma_and_prox_equal_the_baseline_bit_for_bit(avx2, name, dtype, rng):
    """Compiled without FMA, the AVX2 copies round exactly as the baseline does, in every regime
    (the sample's extremes), for steps that settle in the vectorised Newton and for steps that
    fall back to the scalar solve, and for rows that end inside a chunk."""
    z = sample(rng, 500).astype(dtype)
    z = z[np.isfinite(z)]
    for n in (1, 63, 65, z.size):
        row = z[:n]
        baseline, avx = both_levels(lambda: sigma_of(name, row))
        np.testing.assert_array_equal(baseline, avx)
        for c in (1e-9, 0.05, 1 / 3, 0.9, 4.0, 1e9):
            baseline, avx = both_levels(lambda: prox_of(name, row, c))
            np.testing.assert_array_equal(baseline, avx)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avx2_training_equals_the_baseline_bit_for_bit(avx2, name, dtype):
    """The fused layer passes (sigma minus x inside the inner iterations) and the proxes of a
    whole implicit-SGD fit: the same parameters and auxiliary variables at both levels."""
    import bregman_solvers as bs

    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 7)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 60)]

    def fit():
        net = bs.LiftedNetwork([7, 9, 5, 3], [name, name, "identity"], dtype=dtype, random_state=0)
        result = bs.ImplicitSGD(epochs=2, batch_size=20, random_state=0, n_threads=2).fit(net, X, Y)
        return net.parameter_vector.copy(), result.state.hidden[0].copy()

    (theta0, aux0), (theta1, aux1) = both_levels(fit)
    np.testing.assert_array_equal(theta0, theta1)
    np.testing.assert_array_equal(aux0, aux1)


@pytest.mark.parametrize("level", ["sse", 2, -1, 1.0, True])
def test_simd_level_rejects_unknown_levels(level):
    before = kernels.simd_level()
    with pytest.raises(ValueError, match="level"):
        kernels.simd_level(level)
    assert kernels.simd_level() == before
