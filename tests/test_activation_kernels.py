"""Every activation kernel against its NumPy oracle, over shapes, dtypes and layouts."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import oracles
from bregman_solvers import get_activation, kernels
from conftest import ALL_ACTIVATIONS, DTYPES, assert_close, tolerance

SHAPES = [(1, 1), (1, 7), (7, 1), (33, 17), (1000, 784)]
LAYOUTS = ["C", "F", "strided"]


def make_activation(name):
    p = oracles.PARAMS.get(name)
    return get_activation(name, **({} if p is None else {"a" if name == "leaky_relu" else "alpha": p})), p


def make_inputs(name, shape, dtype, rng, layout="C"):
    """z with entries of a few units (kinks and saturation covered) and x in the domain of Phi."""
    full = (shape[0], 2 * shape[1]) if layout == "strided" else shape
    z = 3 * rng.standard_normal(full)
    x = oracles.project_domain(name, 2 * rng.standard_normal(full))
    if name == "softmax" and layout == "strided":
        x[:, ::2] = oracles.project_domain(name, x[:, ::2])
    z, x = z.astype(dtype), x.astype(dtype)
    if layout == "F":
        z, x = np.asfortranarray(z), np.asfortranarray(x)
    elif layout == "strided":
        z, x = z[:, ::2], x[:, ::2]
    return x, z


def loss_scale(x, z):
    """Natural size of Phi(x) + Phi*(z) per sample: the loss's absolute rounding scale."""
    x, z = np.asarray(x, np.float64), np.asarray(z, np.float64)
    return 1 + 0.5 * (x * x + z * z).sum(axis=-1) + np.abs(x * z).sum(axis=-1)


def cases():
    for name in ALL_ACTIVATIONS:
        for shape in SHAPES:
            for dtype in DTYPES:
                yield pytest.param(name, shape, dtype, id=f"{name}-{shape[0]}x{shape[1]}-{np.dtype(dtype).name}")


@pytest.mark.parametrize("name,shape,dtype", list(cases()))
def test_kernels_match_oracles(name, shape, dtype, rng):
    act, p = make_activation(name)
    x, z = make_inputs(name, shape, dtype, rng)
    tol = tolerance(dtype)

    s = act(z)
    assert s.dtype == dtype and s.shape == shape
    assert_allclose(s, oracles.sigma(name, z, p), rtol=tol, atol=tol)

    scale = loss_scale(x, z)
    assert_close(act.phi(x), oracles.phi(name, x, p), rtol=tol, atol=tol * scale)
    assert_close(act.phi_conj(z), oracles.phi_conj(name, z, p), rtol=tol, atol=tol * scale)

    loss = act.bregman_loss(x, z)
    assert loss.dtype == dtype and loss.shape == (shape[0],)
    assert_close(loss, oracles.bregman_loss(name, x, z, p), rtol=tol, atol=tol * scale)

    grad = act.bregman_grad(x, z)
    assert_allclose(grad, oracles.bregman_grad(name, x, z, p), rtol=tol, atol=tol)

    fused_loss, fused_grad = act.bregman_loss_grad(x, z)
    assert_array_equal(fused_grad, grad)
    assert_close(fused_loss, loss, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [1e-3, 0.3, 1.0, 2.5, 50.0])
def test_prox_matches_oracle(name, dtype, c, rng):
    act, p = make_activation(name)
    v = (4 * rng.standard_normal((9, 13))).astype(dtype)
    out = act.prox(v, c)
    assert out.dtype == dtype
    tol = tolerance(dtype)
    # a few ulps of the solution: the oracle bisects to the last bit
    assert_allclose(out, oracles.prox(name, v, c, p), rtol=4 * tol, atol=4 * tol)
    if c == 1.0:
        assert_allclose(out, act(v), rtol=4 * tol, atol=4 * tol)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@pytest.mark.parametrize("layout", ["F", "strided"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs(name, layout, dtype, rng):
    act, p = make_activation(name)
    x, z = make_inputs(name, (11, 6), dtype, rng, layout=layout)
    assert not z.flags.c_contiguous
    tol = tolerance(dtype)
    assert_allclose(act(z), oracles.sigma(name, z, p), rtol=tol, atol=tol)
    assert_close(act.bregman_loss(x, z), oracles.bregman_loss(name, x, z, p), rtol=tol, atol=tol * loss_scale(x, z))
    assert_allclose(act.prox(z, 0.7), oracles.prox(name, z, 0.7, p), rtol=4 * tol, atol=4 * tol)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_one_dimensional_input_is_one_sample(name, rng):
    act, _ = make_activation(name)
    x, z = make_inputs(name, (1, 5), np.float64, rng)
    s = act(z[0])
    assert s.shape == (5,)
    assert_array_equal(s, act(z)[0])
    loss = act.bregman_loss(x[0], z[0])
    assert np.ndim(loss) == 0 and loss == act.bregman_loss(x, z)[0]
    assert np.ndim(act.phi(x[0])) == 0
    assert np.ndim(act.phi_conj(z[0])) == 0
    assert act.prox(z[0], 0.5).shape == (5,)
    loss1, grad1 = act.bregman_loss_grad(x[0], z[0])
    assert np.ndim(loss1) == 0 and grad1.shape == (5,)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_out_arguments_and_in_place(name, dtype, rng):
    act, _ = make_activation(name)
    x, z = make_inputs(name, (8, 5), dtype, rng)
    expected = act(z)
    out = np.empty_like(z)
    assert act(z, out=out) is out
    assert_array_equal(out, expected)
    zc = z.copy()
    assert act(zc, out=zc) is zc  # in place
    assert_array_equal(zc, expected)
    vc = z.copy()
    act.prox(vc, 0.4, out=vc)
    assert_array_equal(vc, act.prox(z, 0.4))
    g = np.empty_like(z)
    assert act.bregman_grad(x, z, out=g) is g
    loss, g2 = act.bregman_loss_grad(x, z, grad_out=np.empty_like(z))
    assert_array_equal(g2, g)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_inputs_are_never_modified(name, dtype, rng):
    act, _ = make_activation(name)
    x, z = make_inputs(name, (6, 4), dtype, rng)
    x.flags.writeable = False
    z.flags.writeable = False  # read-only input must work and stay as it is
    x0, z0 = x.copy(), z.copy()
    act(z), act.phi(x), act.phi_conj(z), act.prox(z, 0.3)
    act.bregman_loss(x, z), act.bregman_grad(x, z), act.bregman_loss_grad(x, z)
    assert_array_equal(x, x0)
    assert_array_equal(z, z0)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_results_identical_for_one_and_two_threads(name, dtype, rng):
    act, _ = make_activation(name)
    x, z = make_inputs(name, (257, 31), dtype, rng)
    one = [act(z, n_threads=1), act.prox(z, 0.6, n_threads=1), *act.bregman_loss_grad(x, z, n_threads=1),
           act.phi(x, n_threads=1), act.phi_conj(z, n_threads=1)]
    two = [act(z, n_threads=2), act.prox(z, 0.6, n_threads=2), *act.bregman_loss_grad(x, z, n_threads=2),
           act.phi(x, n_threads=2), act.phi_conj(z, n_threads=2)]
    for a, b in zip(one, two):
        assert_array_equal(a, b)


def test_mixed_precision_inputs_promote_like_numpy(rng):
    act = get_activation("relu")
    x = np.abs(rng.standard_normal((3, 4))).astype(np.float32)
    z = rng.standard_normal((3, 4))
    assert act.bregman_loss(x, z).dtype == np.float64
    assert act.bregman_loss(x, z.astype(np.float32)).dtype == np.float32
    assert act(z.astype(np.float16)).dtype == np.float32


BOUNDED_DOMAIN = {"relu": -0.5, "nonneg_soft_threshold": -0.5, "hard_tanh": 1.5, "tanh": -1.5, "sigmoid": 1.25}


@pytest.mark.parametrize("name", [*BOUNDED_DOMAIN, "softmax"])
def test_outside_domain_gives_infinite_phi_and_loss(name):
    act, _ = make_activation(name)
    x = np.array([[0.5, 0.6]]) if name == "softmax" else np.array([[0.1, BOUNDED_DOMAIN[name]]])
    z = np.zeros_like(x)
    assert act.phi(x)[0] == np.inf
    assert act.bregman_loss(x, z)[0] == np.inf
    assert act.bregman_loss_grad(x, z)[0][0] == np.inf
    # the gradient sigma(z) - x is still defined and finite
    assert np.isfinite(act.bregman_grad(x, z)).all()


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
@pytest.mark.parametrize("c", [0.001, 0.05, 2.0])
@pytest.mark.parametrize("scale", [0.1, 3.0, 30.0])
def test_float32_smooth_prox_is_within_one_ulp_of_the_double_prox(name, c, scale):
    """The float32 Newton solve stops at a looser tolerance (NEWTON_TOL_FLOAT): still within one
    float32 ulp of the double prox rounded, and almost always equal to it (a tolerance of 1e-6
    would be 893 ulps off for sigmoid)."""
    v = (np.random.default_rng(3).standard_normal((200, 500)) * scale).astype(np.float32)
    out32, out64 = np.empty_like(v), np.empty(v.shape)
    kernels.prox(name, v, c, out32, n_threads=2)
    kernels.prox(name, v.astype(np.float64), c, out64, n_threads=2)
    rounded = out64.astype(np.float32)
    ulps = np.abs(out32.view(np.int32).astype(np.int64) - rounded.view(np.int32).astype(np.int64))
    assert ulps.max() <= 1
    assert np.count_nonzero(ulps) <= v.size // 100
