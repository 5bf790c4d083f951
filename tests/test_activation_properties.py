"""Property tests of MATH.md's properties 1-6 for every activation, and prox optimality.

Each property is checked on hypothesis-drawn arrays (float64): z anywhere in
[-30, 30], x anywhere in the domain of Phi (boundary included, via rounding of the
projection). Tolerances scale with the size of the quantities compared.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import oracles
from conftest import ALL_ACTIVATIONS
from test_activation_kernels import make_activation

finite = st.floats(-30, 30, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def batch(draw, count):
    """``count`` arrays of one drawn shape (n_samples in 1..4, n_features in 1..6)."""
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 6)))
    return [draw(arrays(np.float64, shape, elements=finite)) for _ in range(count)]


def domain_point(name, raw):
    return oracles.project_domain(name, raw)


def scale(*arrays_):
    return 1.0 + sum(np.abs(a).sum(axis=-1) ** 2 for a in arrays_)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@given(data=batch(2))
def test_property_1_loss_bounds_and_zero_at_consistency(name, data):
    act, _ = make_activation(name)
    raw, z = data
    x = domain_point(name, raw)
    s = act(z)
    loss = act.bregman_loss(x, z)
    half_sq = 0.5 * ((x - s) ** 2).sum(axis=-1)
    tol = 1e-11 * scale(x, z)
    assert np.all(loss >= half_sq - tol), (loss, half_sq)
    assert np.all(half_sq >= 0)
    assert np.all(np.abs(act.bregman_loss(s, z)) <= tol)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@given(data=batch(2))
def test_property_2_gradient_is_sigma_minus_x(name, data):
    act, _ = make_activation(name)
    raw, z = data
    x = domain_point(name, raw)
    grad = act.bregman_grad(x, z)
    h = 1e-6
    fd = np.empty_like(z)
    for j in range(z.shape[1]):
        step = np.zeros_like(z)
        step[:, j] = h
        fd[:, j] = (act.bregman_loss(x, z + step) - act.bregman_loss(x, z - step)) / (2 * h)
    np.testing.assert_allclose(fd, grad, rtol=1e-5, atol=1e-5 * (1 + np.abs(z).max()) ** 2 * z.shape[1])


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@given(data=batch(3))
def test_property_3_subdifferential_in_x(name, data):
    """B(w, z) >= B(x, z) + <x + g - z, w - x> for g in dPsi(x); x = sigma(v) gives g = v - x."""
    act, _ = make_activation(name)
    v, z, raw = data
    x = act(v)
    w = domain_point(name, raw)
    lhs = act.bregman_loss(w, z)
    rhs = act.bregman_loss(x, z) + ((v - z) * (w - x)).sum(axis=-1)
    assert np.all(lhs >= rhs - 1e-10 * scale(v, z, w))


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@given(data=batch(4), t=st.floats(0, 1))
def test_property_4_biconvexity_along_segments(name, data, t):
    act, _ = make_activation(name)
    raw0, raw1, z0, z1 = data
    x0, x1 = domain_point(name, raw0), domain_point(name, raw1)
    xt = (1 - t) * x0 + t * x1
    tol = 1e-10 * scale(x0, x1, z0, z1)
    in_x = (1 - t) * act.bregman_loss(x0, z0) + t * act.bregman_loss(x1, z0)
    assert np.all(act.bregman_loss(xt, z0) <= in_x + tol)
    zt = (1 - t) * z0 + t * z1
    in_z = (1 - t) * act.bregman_loss(x0, z0) + t * act.bregman_loss(x0, z1)
    assert np.all(act.bregman_loss(x0, zt) <= in_z + tol)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@given(data=batch(2))
def test_property_5_firm_nonexpansiveness(name, data):
    act, _ = make_activation(name)
    a, b = data
    da, dz = act(a) - act(b), a - b
    lhs = (da * dz).sum(axis=-1)
    assert np.all(lhs >= (da * da).sum(axis=-1) - 1e-12 * scale(a, b))


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@given(data=batch(2))
def test_property_6_moreau_identity(name, data):
    """prox_Psi(z) + prox_Psi*(z) = z.

    Where Psi* has a closed form the identity is checked directly. For all
    activations it is checked in its equivalent form q = z - sigma(z) in dPsi(sigma(z))
    (q = prox_Psi*(z) iff z - q in dPsi*(q) iff q in dPsi(z - q)), through the
    subgradient inequality Psi(w) >= Psi(s) + <q, w - s> at domain points w.
    """
    act, p = make_activation(name)
    z, raw = data
    s = act(z)
    conj = oracles.prox_conj(name, z, p)
    if conj is not None:
        np.testing.assert_allclose(s + conj, z, rtol=1e-13, atol=1e-13)
    q = z - s
    w = domain_point(name, raw)
    lhs = oracles.psi(name, w, p)
    rhs = oracles.psi(name, s, p) + (q * (w - s)).sum(axis=-1)
    assert np.all(lhs >= rhs - 1e-10 * scale(z, w))
    # and sigma = grad Phi* (the gradient form of the same identity)
    h = 1e-6
    for j in range(z.shape[1]):
        step = np.zeros_like(z)
        step[:, j] = h
        fd = (act.phi_conj(z + step) - act.phi_conj(z - step)) / (2 * h)
        np.testing.assert_allclose(fd, s[:, j], rtol=1e-5, atol=1e-5 * (1 + np.abs(z).max()))


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@given(data=batch(2), c=st.floats(1e-3, 1e3))
def test_prox_is_optimal(name, data, c):
    """u = prox_{c Psi}(v) minimises 0.5|u - v|^2 + c Psi(u) against any domain point."""
    act, p = make_activation(name)
    v, raw = data
    u = act.prox(v, c)

    def objective(point):
        return 0.5 * ((point - v) ** 2).sum(axis=-1) + c * oracles.psi(name, point, p).astype(float)

    at_u = objective(u)
    assert np.all(np.isfinite(at_u))
    tol = 1e-9 * (scale(v) + c)
    for w in (domain_point(name, raw), domain_point(name, u + 1e-3 * np.tanh(raw))):
        assert np.all(at_u <= objective(w) + tol)
