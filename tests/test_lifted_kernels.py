"""The fused kernels of the lifted solvers (``_kernels._lifted``) against NumPy oracles.

The solver-level tests exercise these kernels through the network; here each one is
checked on its own: float32 and float64, shapes with one sample or one feature,
every activation in the layer pass, and the argument checks that keep the
``nogil`` code in bounds.
"""
import numpy as np
import pytest

from bregman_solvers._kernels import _lifted
from bregman_solvers.activations import get_activation

import oracles
from conftest import ALL_ACTIVATIONS, DTYPES, tolerance

SHAPES = [(1, 1), (1, 7), (7, 1), (33, 17), (100, 784)]
ENTRYWISE = [name for name in ALL_ACTIVATIONS if name != "softmax"]


def _data(shape, dtype, rng, name="relu"):
    z = rng.standard_normal(shape).astype(dtype)
    x = oracles.project_domain(name, rng.standard_normal(shape)).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    return z, x, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (1, 5, 3), (6, 1, 4), (17, 9, 1), (40, 33, 21)])
def test_gemm_matches_numpy(dtype, trans_a, trans_b, m, n, k, rng):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    expected = 0.5 * (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b) + 2.0 * c
    _lifted.gemm(trans_a, trans_b, 0.5, a, b, 2.0, c)
    np.testing.assert_allclose(c, expected, rtol=tolerance(dtype) * 10, atol=tolerance(dtype) * 10 * k)


def test_gemm_refuses_mismatched_shapes():
    a, b = np.zeros((3, 4)), np.zeros((5, 2))
    with pytest.raises(ValueError, match="inner dimensions"):
        _lifted.gemm(False, False, 1.0, a, b, 0.0, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="c must have shape"):
        _lifted.gemm(False, True, 1.0, np.zeros((3, 2)), b, 0.0, np.zeros((3, 4)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_bregman_layer_pass_matches_oracle(name, shape, dtype, rng):
    """Penalty 0: z + b, residual sigma(z) - x, per-sample B(x, z), v = a_x x + c_z z; one pass."""
    act = get_activation(name, **({"alpha": 0.3} if "threshold" in name else {}))
    p = act.param
    z0, x, b = _data(shape, dtype, rng, name)
    zb = z0.astype(np.float64) + b
    for with_loss in (True, False):
        z = z0.copy()
        residual, v = np.empty_like(z), np.empty_like(z)
        loss = np.full(shape[0], -1.0, dtype) if with_loss else None
        _lifted.layer_pass(0, act.kind, p, z, b, x, residual, loss, v, 0.7, 0.2, 2)
        tol = tolerance(dtype)
        np.testing.assert_allclose(z, zb, rtol=tol, atol=tol)
        zk = z.astype(np.float64)            # the kernel's own (rounded) z + b
        np.testing.assert_allclose(residual, oracles.bregman_grad(name, x, zk, p), rtol=tol * 10, atol=tol * 10)
        np.testing.assert_allclose(v, 0.7 * x.astype(np.float64) + 0.2 * zk, rtol=tol, atol=tol)
        if with_loss:
            expected = oracles.bregman_loss(name, x, zk, p)
            np.testing.assert_allclose(loss, expected, rtol=tol * 100, atol=tol * 100 * shape[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_classical_and_mac_qp_layer_passes_match_oracles(dtype, rng):
    act = get_activation("relu")
    z0, x, b = _data((9, 13), dtype, rng)
    tol = tolerance(dtype)
    # penalty 1: 0.5 |x - z|^2 with residual z - x
    z, r, loss = z0.copy(), np.empty_like(z0), np.empty(9, dtype)
    _lifted.layer_pass(1, act.kind, 0.0, z, b, x, r, loss)
    zb = z.astype(np.float64)
    np.testing.assert_allclose(r, zb - x, rtol=tol, atol=tol)
    np.testing.assert_allclose(loss, 0.5 * ((x - zb) ** 2).sum(axis=1), rtol=tol * 10)
    # penalty 2 (MAC-QP): 0.5 |x - sigma(z)|^2, residual sigma'(z) (sigma(z) - x), v uses sigma(z)
    z, r, loss, v = z0.copy(), np.empty_like(z0), np.empty(9, dtype), np.empty_like(z0)
    _lifted.layer_pass(2, act.kind, 0.0, z, b, x, r, loss, v, 0.5, 0.25)
    s = np.maximum(z.astype(np.float64), 0)
    np.testing.assert_allclose(r, (z > 0) * (s - x), rtol=tol, atol=tol)
    np.testing.assert_allclose(loss, 0.5 * ((x - s) ** 2).sum(axis=1), rtol=tol * 10)
    np.testing.assert_allclose(v, 0.5 * x + 0.25 * s, rtol=tol, atol=tol)


def _dsigma(name, z, p):
    """sigma'(z) in closed form, 0 at the kinks (the kernels' one-sided choice)."""
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, p)
    if name == "soft_threshold":
        return (np.abs(z) > p).astype(np.float64)
    if name == "nonneg_soft_threshold":
        return (z > p).astype(np.float64)
    if name == "hard_tanh":
        return (np.abs(z) < 1).astype(np.float64)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "sigmoid":
        s = oracles.sigma("sigmoid", z)
        return s * (1 - s)
    if name == "elu":
        return np.where(z > 0, 1.0, p * np.exp(np.minimum(z, 0)))
    return np.ones_like(z)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_mac_qp_layer_pass_of_every_activation_matches_oracles(dtype, shape, rng):
    """MAC-QP (penalty 2): loss 0.5 |x - sigma(z)|^2, residual sigma'(z) (sigma(z) - x), v from sigma(z);
    every variant of the row loop (with and without loss and v)."""
    tol = tolerance(dtype)
    for name in ENTRYWISE:
        act = get_activation(name, **({"alpha": 0.3} if "threshold" in name else {}))
        z0, x, b = _data(shape, dtype, rng, name)
        for with_loss, with_v in ((True, True), (False, True), (True, False), (False, False)):
            z, r, v = z0.copy(), np.empty_like(z0), np.full_like(z0, -7)
            loss = np.empty(shape[0], dtype) if with_loss else None
            _lifted.layer_pass(2, act.kind, act.param, z, b, x, r, loss, v if with_v else None, 0.5, 0.25, 2)
            zb = z0.astype(np.float64) + b.astype(np.float64)
            np.testing.assert_allclose(z, zb, rtol=tol, atol=tol)             # MAC-QP keeps z + b
            s = oracles.sigma(name, z.astype(np.float64), act.param)
            np.testing.assert_allclose(r, _dsigma(name, z.astype(np.float64), act.param) * (s - x),
                                       rtol=tol * 10, atol=tol * 10, err_msg=name)
            if with_loss:
                np.testing.assert_allclose(loss, 0.5 * ((x - s) ** 2).sum(axis=1), rtol=tol * 10,
                                           atol=tol * 10 * shape[1], err_msg=name)
            if with_v:
                np.testing.assert_allclose(v, 0.5 * x + 0.25 * s, rtol=tol * 10, atol=tol * 10, err_msg=name)
            else:
                assert np.all(v == -7)


def test_layer_pass_refuses_bad_arguments():
    z, x, r = np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((3, 4))
    b, loss = np.zeros(4), np.zeros(3)
    with pytest.raises(ValueError, match="penalty"):
        _lifted.layer_pass(3, 1, 0.0, z, b, x, r, loss)
    with pytest.raises(ValueError, match="kind"):
        _lifted.layer_pass(0, 99, 0.0, z, b, x, r, loss)
    with pytest.raises(ValueError, match="b must have length 4"):
        _lifted.layer_pass(0, 1, 0.0, z, np.zeros(3), x, r, loss)
    with pytest.raises(ValueError, match="x must have shape"):
        _lifted.layer_pass(0, 1, 0.0, z, b, np.zeros((2, 4)), r, loss)
    with pytest.raises(ValueError, match="loss must have length 3"):
        _lifted.layer_pass(0, 1, 0.0, z, b, x, r, np.zeros(2))
    with pytest.raises(ValueError, match="v must have shape"):
        _lifted.layer_pass(0, 1, 0.0, z, b, x, r, loss, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="n_threads"):
        _lifted.layer_pass(0, 1, 0.0, z, b, x, r, loss, n_threads=0)
    with pytest.raises(ValueError):                       # non-contiguous: the buffer protocol refuses
        _lifted.layer_pass(0, 1, 0.0, np.zeros((3, 8))[:, ::2], b, x, r, loss)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_pass_without_keep_z_leaves_z_and_computes_the_same(dtype, rng):
    layer_pass = _lifted.layer_pass
    act = get_activation("tanh")
    z0, x, b = _data((9, 9), dtype, rng, "tanh")
    results = []
    for keep_z in (True, False):
        z, r, v, loss = z0.copy(), np.empty_like(z0), np.empty_like(z0), np.empty(9, dtype)
        layer_pass(0, act.kind, act.param, z, b, x, r, loss, v, 0.5, 0.5, 1, keep_z)
        results.append((z, r, v, loss))
    assert not np.array_equal(results[0][0], z0)          # kept: z + b
    np.testing.assert_array_equal(results[1][0], z0)      # not kept: z as it came
    for kept, not_kept in zip(results[0][1:], results[1][1:]):
        np.testing.assert_array_equal(kept, not_kept)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("penalty", [0, 1, 2])
def test_layer_pass_takes_the_pending_x_step_as_prox_then_pass(penalty, dtype, rng):
    """x_out: x <- prox_{c Psi}(v) (MAC-QP: v) row by row, then the pass: the same numbers as the two calls."""
    from bregman_solvers._kernels import _activations

    kernel = _lifted.layer_pass
    names = ALL_ACTIVATIONS
    shape = (13, 7)
    for name in names:
        act = get_activation(name, **({"alpha": 0.3} if "threshold" in name else {}))
        z0 = rng.standard_normal(shape).astype(dtype)
        b = rng.standard_normal(shape[1]).astype(dtype)
        v0 = rng.standard_normal(shape).astype(dtype)
        x0 = np.full(shape, 1.0 / shape[1], dtype)          # in every domain (softmax's simplex included)
        loss_dtype = dtype
        outputs = []
        for fused in (False, True):
            x, z, r, v, loss = x0.copy(), z0.copy(), np.empty_like(z0), v0.copy(), np.empty(shape[0], loss_dtype)
            if fused:
                kernel(penalty, act.kind, act.param, z, b, x, r, loss, v, 0.3, 0.7, 2, False, 0.4, x)
            else:
                if penalty == 2:
                    np.copyto(x, v0)
                else:
                    _activations.prox(act.kind, act.param, 0.4, v, x, 1)
                kernel(penalty, act.kind, act.param, z, b, x, r, loss, v, 0.3, 0.7, 1, False)
            outputs.append((x, z, r, v, loss))
        assert not np.array_equal(outputs[1][0], x0)
        for a, c in zip(*outputs):
            np.testing.assert_array_equal(a, c)


def test_pending_x_step_arguments_are_checked():
    kernel = _lifted.layer_pass
    z, x, r, v = np.zeros((4, 3)), np.zeros((4, 3)), np.zeros((4, 3)), np.zeros((4, 3))
    b = np.zeros(3)
    with pytest.raises(ValueError, match="x_out needs v"):
        kernel(0, 1, 0.0, z, b, x, r, None, None, 0.5, 0.5, 1, True, 0.1, x)
    with pytest.raises(ValueError, match="x_out must be x itself"):
        kernel(0, 1, 0.0, z, b, x, r, None, v, 0.5, 0.5, 1, True, 0.1, x.copy())
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="prox_c must be a positive finite number"):
            kernel(0, 1, 0.0, z, b, x, r, None, v, 0.5, 0.5, 1, True, bad, x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES + [(3, 8), (5, 16), (784, 100)])
def test_column_sums_and_accumulate(shape, dtype, rng):
    """``out (+)= scale * a.sum(axis=0)``, rows summed in order."""
    sums, axis = _lifted.column_sums, 0
    a = rng.standard_normal(shape).astype(dtype)
    out = rng.standard_normal(shape[1 - axis]).astype(dtype)
    start = out.copy()
    tol = tolerance(dtype) * 10
    sums(a, out, -0.5, True)
    np.testing.assert_allclose(out, start - 0.5 * a.astype(np.float64).sum(axis=axis), rtol=tol,
                               atol=tol * shape[axis])
    sums(a, out, 2.0)
    np.testing.assert_allclose(out, 2.0 * a.astype(np.float64).sum(axis=axis), rtol=tol, atol=tol * shape[axis])
    with pytest.raises(ValueError, match="out must have length"):
        sums(a, np.zeros(shape[1 - axis] + 1, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", [1, 2, 5])
def test_pull_towards_segments(dtype, n_threads, rng):
    """theta <- (1 - c_s) theta + c_s anchor per segment, in one pass for any thread count."""
    bounds = np.array([0, 1, 1, 40, 1000, 1003], dtype=np.intp)   # includes an empty segment
    c = np.array([0.5, 0.9, 0.1, 0.0, 1.0])
    theta = rng.standard_normal(1003).astype(dtype)
    anchor = rng.standard_normal(1003).astype(dtype)
    weights = np.repeat(c, np.diff(bounds))
    expected = (1 - weights) * theta.astype(np.float64) + weights * anchor
    _lifted.pull_towards(theta, anchor, bounds, c, n_threads)
    np.testing.assert_allclose(theta, expected, rtol=tolerance(dtype), atol=tolerance(dtype))


def test_pull_towards_refuses_bad_segments():
    theta, anchor = np.zeros(10), np.zeros(10)
    with pytest.raises(ValueError, match="anchor must have length 10"):
        _lifted.pull_towards(theta, np.zeros(9), np.array([0, 10], dtype=np.intp), np.array([0.1]))
    with pytest.raises(ValueError, match="bounds must have 2 entries"):
        _lifted.pull_towards(theta, anchor, np.array([0, 5, 10], dtype=np.intp), np.array([0.1]))
    with pytest.raises(ValueError, match="non-decreasing"):
        _lifted.pull_towards(theta, anchor, np.array([0, 11], dtype=np.intp), np.array([0.1]))
    with pytest.raises(ValueError, match="non-decreasing"):
        _lifted.pull_towards(theta, anchor, np.array([0, 6, 4], dtype=np.intp), np.array([0.1, 0.2]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 17, 300_001])
@pytest.mark.parametrize("n_threads", [1, 2, 5])
def test_extrapolate_is_the_inertial_step(dtype, n, n_threads, rng):
    """theta <- theta + beta (theta - previous), previous <- the old theta, for any length and thread count."""
    theta = rng.standard_normal(n).astype(dtype)
    previous = rng.standard_normal(n).astype(dtype)
    old = theta.copy()
    expected = theta.astype(np.float64) + 0.8 * (theta.astype(np.float64) - previous)
    _lifted.extrapolate(theta, previous, 0.8, n_threads)
    np.testing.assert_allclose(theta, expected, rtol=tolerance(dtype), atol=tolerance(dtype))
    np.testing.assert_array_equal(previous, old)
    # a second call with nothing moved in between extrapolates by beta times the last move
    moved = theta.astype(np.float64) - old
    _lifted.extrapolate(theta, previous, 0.5, n_threads)
    np.testing.assert_allclose(theta, old + 1.5 * moved, rtol=10 * tolerance(dtype), atol=10 * tolerance(dtype))
    # with an anchor the extrapolated point is written there too, bit for bit, in the same pass
    plain_theta, plain_previous = theta.copy(), previous.copy()
    _lifted.extrapolate(plain_theta, plain_previous, 0.3, n_threads)
    anchor = np.full(n, np.nan, dtype=dtype)
    _lifted.extrapolate(theta, previous, 0.3, n_threads, anchor)
    np.testing.assert_array_equal(theta, plain_theta)
    np.testing.assert_array_equal(anchor, plain_theta)
    np.testing.assert_array_equal(previous, plain_previous)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 17, 300_001])
@pytest.mark.parametrize("n_threads", [1, 2, 5])
@pytest.mark.parametrize("with_anchor", [False, True])
def test_extrapolate_of_segments_held_scaled_equals_scal_then_extrapolate(dtype, n, n_threads, with_anchor, rng):
    """With bounds and scales each segment is read as scales[s] * theta: the same bits as making it
    explicit with ``scal`` first and extrapolating after (segments of any length, empty ones too)."""
    theta = rng.standard_normal(n).astype(dtype)
    previous = rng.standard_normal(n).astype(dtype)
    held, before = theta.astype(np.float64), previous.astype(np.float64)
    cuts = np.sort(rng.integers(0, n + 1, 4))
    bounds = np.concatenate([[0], cuts, [cuts[-1]], [n]]).astype(np.intp)     # an empty segment among them
    scales = rng.uniform(0.3, 1.7, bounds.size - 1)
    plain_theta, plain_previous = theta.copy(), previous.copy()
    for s in range(scales.size):
        _lifted.scal(scales[s], plain_theta[bounds[s]:bounds[s + 1]])
    plain_anchor = np.empty_like(theta) if with_anchor else None
    _lifted.extrapolate(plain_theta, plain_previous, 0.7, n_threads, plain_anchor)
    anchor = np.full(n, np.nan, dtype=dtype) if with_anchor else None
    _lifted.extrapolate(theta, previous, 0.7, n_threads, anchor, bounds, scales)
    np.testing.assert_array_equal(theta, plain_theta)
    np.testing.assert_array_equal(previous, plain_previous)
    if with_anchor:
        np.testing.assert_array_equal(anchor, plain_anchor)
    # the NumPy oracle: each entry's segment scale, then the inertial step
    explicit = held * scales[np.searchsorted(bounds, np.arange(n), side="right") - 1]
    np.testing.assert_allclose(previous, explicit, rtol=tolerance(dtype), atol=tolerance(dtype))
    np.testing.assert_allclose(theta, explicit + 0.7 * (explicit - before), rtol=10 * tolerance(dtype),
                               atol=10 * tolerance(dtype))


def test_extrapolate_refuses_bad_arguments():
    with pytest.raises(ValueError, match="previous must have length 4"):
        _lifted.extrapolate(np.zeros(4), np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        _lifted.extrapolate(np.zeros(4), np.zeros(4), 0.5, 0)
    with pytest.raises(ValueError, match="dtype mismatch"):
        _lifted.extrapolate(np.zeros(4), np.zeros(4, np.float32), 0.5)
    with pytest.raises(ValueError, match="anchor must have length 4"):
        _lifted.extrapolate(np.zeros(4), np.zeros(4), 0.5, 1, np.zeros(5))
    with pytest.raises(ValueError, match="dtype mismatch"):
        _lifted.extrapolate(np.zeros(4), np.zeros(4), 0.5, 1, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="bounds and scales go together"):
        _lifted.extrapolate(np.zeros(4), np.zeros(4), 0.5, 1, None, np.array([0, 4], dtype=np.intp))
    with pytest.raises(ValueError, match="bounds must have 2 entries from 0 to 4"):
        _lifted.extrapolate(np.zeros(4), np.zeros(4), 0.5, 1, None, np.array([0, 3], dtype=np.intp), np.ones(1))
    with pytest.raises(ValueError, match="non-decreasing"):
        _lifted.extrapolate(np.zeros(4), np.zeros(4), 0.5, 1, None, np.array([0, 3, 2, 4], dtype=np.intp),
                            np.ones(3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 17, 300_001])
def test_blas_vector_kernels_and_finiteness_checks(dtype, n, rng):
    """axpy, scal, copy, abs_sum (BLAS level 1) and all_finite (OpenMP) against NumPy."""
    tol = tolerance(dtype)
    x = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    expected = y + 0.25 * x.astype(np.float64)
    _lifted.axpy(0.25, x, y)
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
    _lifted.scal(-3.0, y)
    np.testing.assert_allclose(y, -3.0 * expected, rtol=tol, atol=tol)
    _lifted.copy(x, y)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_allclose(_lifted.abs_sum(x), np.abs(x.astype(np.float64)).sum(), rtol=tol * 10)
    assert _lifted.all_finite(x, 2)
    if n:
        for bad in (np.nan, np.inf, -np.inf):
            x[n // 2] = bad
            assert not _lifted.all_finite(x, 2) and not _lifted.all_finite(x, 1)
            assert not np.isfinite(_lifted.abs_sum(x))
    with pytest.raises(ValueError, match="x must have length"):
        _lifted.axpy(1.0, np.zeros(n + 1, dtype), y)
    with pytest.raises(ValueError, match="x must have length"):
        _lifted.copy(np.zeros(n + 1, dtype), y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_step_parameters_and_add_bias(dtype, rng):
    tol = tolerance(dtype)
    theta, grad, anchor = (rng.standard_normal(50).astype(dtype) for _ in range(3))
    expected = theta - 0.1 * (grad + (theta.astype(np.float64) - anchor) / 2.0)
    _lifted.step_parameters(theta, grad, 0.1, anchor, 2.0, 2)
    np.testing.assert_allclose(theta, expected, rtol=tol, atol=tol)
    with pytest.raises(ValueError, match="tau must be positive"):
        _lifted.step_parameters(theta, grad, 0.1, anchor, 0.0)
    z = rng.standard_normal((7, 5)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    expected = z + b
    _lifted.add_bias(z, b, 2)
    np.testing.assert_allclose(z, expected, rtol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh", "sigmoid", "softmax", "identity"])
def test_backprop_activation_is_the_jacobian_transpose(name, dtype, rng):
    act = get_activation(name)
    z = rng.standard_normal((6, 4)).astype(dtype)
    d = rng.standard_normal((6, 4)).astype(dtype)
    expected = np.empty((6, 4))
    h = 1e-6
    for i in range(6):                      # central differences of sigma, row by row (softmax couples a row)
        jac = np.empty((4, 4))
        for j in range(4):
            e = np.zeros(4)
            e[j] = h
            jac[:, j] = (oracles.sigma(name, z[i] + e, act.param) - oracles.sigma(name, z[i] - e, act.param)) / (2 * h)
        expected[i] = jac.T @ d[i]
    out = d.copy()
    _lifted.backprop_activation(act.kind, act.param, z, out, 2)
    np.testing.assert_allclose(out, expected, rtol=1e-4 if dtype == np.float32 else 1e-6, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES + [(0, 5), (4, 0)])
def test_backprop_activation_of_every_elementwise_kind_matches_closed_form(shape, dtype, rng):
    """``delta * sigma'(z)`` for every elementwise kind (one vectorised loop per kind), any shape."""
    tol = tolerance(dtype)
    for name in ENTRYWISE:
        act = get_activation(name, **({"alpha": 0.3} if "threshold" in name else {}))
        z = rng.standard_normal(shape).astype(dtype)
        d = rng.standard_normal(shape).astype(dtype)
        out = d.copy()
        _lifted.backprop_activation(act.kind, act.param, z, out, 2)
        expected = d * _dsigma(name, z.astype(np.float64), act.param)
        np.testing.assert_allclose(out, expected, rtol=tol * 10, atol=tol * 10, err_msg=name)
