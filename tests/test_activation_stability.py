"""No NaN and no overflow for any finite input: huge |z|, x on the domain's boundary, huge logits."""
import numpy as np
import pytest

import oracles
from conftest import ALL_ACTIVATIONS, DTYPES
from test_activation_kernels import make_activation

HUGE = [1e3, 1e6, 1e30]


def extreme_z(dtype):
    big = np.finfo(dtype).max / 4
    vals = np.array([-big, -1e30, -1e6, -1e3, -50.0, -1.0, 0.0, 1.0, 50.0, 1e3, 1e6, 1e30, big], dtype=np.float64)
    return vals.astype(dtype)[None, :]


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_pre_activations_stay_finite(name, dtype):
    act, _ = make_activation(name)
    z = extreme_z(dtype)
    s = act(z)
    assert np.isfinite(s).all()
    x = s.copy()  # consistent state: the loss must be exactly 0 (no inf - inf)
    loss = act.bregman_loss(x, z)
    assert np.isfinite(loss).all()
    grad = act.bregman_grad(x, z)
    assert np.isfinite(grad).all()
    if name in ("tanh", "sigmoid", "softmax", "hard_tanh"):
        # Phi* grows like |z| here: it must not overflow (the others grow like z^2,
        # whose true value at these z is beyond the dtype's range)
        assert np.isfinite(act.phi_conj(z)).all()
    else:
        moderate = z[np.abs(z) <= 1e6][None, :]
        assert np.isfinite(act.phi_conj(moderate)).all()
    for c in (1e-6, 1.0, 1e6):
        assert np.isfinite(act.prox(z, c)).all()


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "hard_tanh", "relu", "nonneg_soft_threshold"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_x_on_the_boundary_of_the_domain(name, dtype):
    act, p = make_activation(name)
    lo, hi = {"tanh": (-1, 1), "sigmoid": (0, 1), "hard_tanh": (-1, 1)}.get(name, (0, 5))
    x = np.array([[lo, hi, lo, hi]], dtype=dtype)
    z = np.array([[-1e3, 1e3, 2.0, -2.0]], dtype=dtype)
    loss = act.bregman_loss(x, z)
    assert np.isfinite(loss).all()
    expected = oracles.bregman_loss(name, x, z, p)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert np.isfinite(act.phi(x)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("big", HUGE)
def test_softmax_with_huge_logits(dtype, big):
    act = make_activation("softmax")[0]
    z = np.array([[big, 0.0, -big], [big, big, big], [-big, -big, 0.0]], dtype=dtype)
    s = act(z)
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s.sum(axis=1), 1, rtol=1e-6)
    onehot = np.eye(3, dtype=dtype)
    loss = act.bregman_loss(onehot, z)
    assert np.isfinite(loss).all()
    # the cross-entropy of the first row is 0 (its target is the huge logit), of the others as expected
    assert loss[0] == pytest.approx(0.0, abs=1e-6)
    assert loss[1] == pytest.approx(np.log(3), rel=1e-5)
    assert np.isfinite(act.phi_conj(z)).all()
    assert np.isfinite(act.prox(z, 0.5)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_smooth_losses_are_accurate_far_from_the_origin(dtype):
    """B(x, z) = KL for tanh and sigmoid: accurate where Phi + Phi* - <x, z> would cancel."""
    for name in ("tanh", "sigmoid"):
        act, p = make_activation(name)
        z = np.array([[40.0, -40.0, 300.0]], dtype=dtype)
        x = act(z)
        loss = act.bregman_loss(x, z)[0]
        assert 0 <= loss < 1e-6
