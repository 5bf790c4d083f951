"""The public low-level kernels: explicit outputs, cheap checks, same numbers as the Activation API."""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from bregman_solvers import get_activation, kernels
from conftest import ALL_ACTIVATIONS, DTYPES
from test_activation_kernels import make_activation, make_inputs


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_agree_with_activation_methods(name, dtype, rng):
    act, p = make_activation(name)
    x, z = make_inputs(name, (17, 9), dtype, rng)
    n = z.shape[0]
    out2, out1, grad, loss = np.empty_like(z), np.empty(n, dtype), np.empty_like(z), np.empty(n, dtype)
    kernels.sigma(name, z, out2, param=p)
    assert_array_equal(out2, act(z))
    kernels.sigma(act, z, out2)
    assert_array_equal(out2, act(z))
    kernels.phi(name, x, out1, param=p)
    assert_array_equal(out1, act.phi(x))
    kernels.phi_conj(name, z, out1, param=p)
    assert_array_equal(out1, act.phi_conj(z))
    kernels.prox(name, z, 0.3, out2, param=p)
    assert_array_equal(out2, act.prox(z, 0.3))
    kernels.bregman_loss(name, x, z, out1, param=p)
    assert_array_equal(out1, act.bregman_loss(x, z))
    kernels.bregman_grad(name, x, z, out2, param=p)
    assert_array_equal(out2, act.bregman_grad(x, z))
    kernels.bregman_loss_grad(name, x, z, grad, loss, param=p, n_threads=1)
    assert_array_equal(grad, out2)
    np.testing.assert_allclose(loss, out1, rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_kind_codes_cover_all_activations():
    assert sorted(kernels.KIND_CODES) == sorted(ALL_ACTIVATIONS)
    assert sorted(kernels.KIND_CODES.values()) == list(range(len(ALL_ACTIVATIONS)))


def test_kernel_input_checks_name_the_argument():
    z = np.zeros((3, 4))
    with pytest.raises(TypeError, match="out must have the dtype of the inputs"):
        kernels.sigma("relu", z, np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="z must be C-contiguous"):
        kernels.sigma("relu", np.zeros((4, 3)).T, np.empty((3, 4)))
    with pytest.raises(ValueError, match="out must have the shape of z"):
        kernels.sigma("relu", z, np.empty((3, 5)))
    with pytest.raises(ValueError, match="loss_out must have the shape of x rows"):
        kernels.bregman_loss_grad("relu", z, z, np.empty_like(z), np.empty(2))
    with pytest.raises(ValueError, match="z must have the shape of x"):
        kernels.bregman_loss("relu", z, np.zeros((3, 5)), np.empty(3))
    with pytest.raises(TypeError, match="x must have dtype float32 or float64"):
        kernels.phi("relu", np.zeros((3, 4), np.int64), np.empty(3))
    with pytest.raises(TypeError, match="z must be a numpy.ndarray"):
        kernels.sigma("relu", [[1.0]], np.empty((1, 1)))
    with pytest.raises(ValueError, match="x must be 2-D"):
        kernels.phi("relu", np.zeros(3), np.empty(3))
    with pytest.raises(ValueError, match="unknown activation"):
        kernels.sigma("gelu", z, np.empty_like(z))
    with pytest.raises(TypeError, match="kind must be an activation name"):
        kernels.sigma(3, z, np.empty_like(z))
    with pytest.raises(ValueError, match="a must lie in"):
        kernels.sigma("leaky_relu", z, np.empty_like(z), param=2.0)
    with pytest.raises(ValueError, match="c must be a positive finite number"):
        kernels.prox("relu", z, -1.0, np.empty_like(z))
    ro = np.empty_like(z)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        kernels.sigma("relu", z, ro)


def test_raw_cython_kernels_refuse_bad_kind_and_threads():
    from bregman_solvers._kernels import _activations as raw

    z = np.zeros((2, 2))
    with pytest.raises(ValueError, match="kind must be one of"):
        raw.sigma(99, 0.0, z, np.empty_like(z), 1)
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        raw.sigma(0, 0.0, z, np.empty_like(z), 0)


def test_large_batch_matches_in_both_thread_counts(rng):
    act = get_activation("relu")
    z = rng.standard_normal((10000, 784)).astype(np.float32)
    x = np.abs(rng.standard_normal(z.shape)).astype(np.float32)
    g1, l1, g2, l2 = np.empty_like(z), np.empty(10000, np.float32), np.empty_like(z), np.empty(10000, np.float32)
    kernels.bregman_loss_grad(act, x, z, g1, l1, n_threads=1)
    kernels.bregman_loss_grad(act, x, z, g2, l2, n_threads=2)
    assert_array_equal(g1, g2)
    assert_array_equal(l1, l2)
