"""Bad input gets a clear ValueError or TypeError that names the argument; nothing crashes."""
import numpy as np
import pytest

from bregman_solvers import get_activation
from bregman_solvers.activations import available
from conftest import ALL_ACTIVATIONS


def test_available_lists_every_activation():
    assert available() == ALL_ACTIVATIONS


@pytest.mark.parametrize(
    "name,params,match",
    [
        ("leaky_relu", {"a": 0.0}, "a must lie in"),
        ("leaky_relu", {"a": 1.5}, "a must lie in"),
        ("leaky_relu", {"a": -0.1}, "a must be a finite number"),
        ("soft_threshold", {"alpha": -1.0}, "alpha must be a finite number >= 0"),
        ("nonneg_soft_threshold", {"alpha": np.nan}, "alpha must be a finite number"),
        ("relu", {"alpha": 1.0}, "takes no parameters"),
        ("soft_threshold", {"a": 0.5}, "takes only 'alpha'"),
        ("swish", {}, "unknown activation 'swish'"),
    ],
)
def test_invalid_activation_parameters(name, params, match):
    with pytest.raises(ValueError, match=match):
        get_activation(name, **params)


def test_parameter_of_wrong_type():
    with pytest.raises(TypeError, match="alpha must be a real number"):
        get_activation("soft_threshold", alpha="0.1")


GOOD = np.ones((2, 3))


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@pytest.mark.parametrize(
    "bad,error,match",
    [
        (np.ones((2, 3, 4)), ValueError, "z must be 2-D"),
        (np.float64(1.0), ValueError, "z must be 2-D"),
        (np.ones((0, 3)), ValueError, "z is empty"),
        (np.ones((3, 0)), ValueError, "z is empty"),
        (np.ones((2, 3), dtype=np.int64), TypeError, "z must have a floating dtype"),
        (np.ones((2, 3), dtype=bool), TypeError, "z must have a floating dtype"),
        (np.ones((2, 3), dtype=np.complex128), TypeError, "z must have a floating dtype"),
        (np.array([[object()]]), TypeError, "z must have a floating dtype"),
        (np.array([[1.0, np.nan]]), ValueError, "z must be finite; it has 1 NaN"),
        (np.array([[1.0, np.inf]]), ValueError, "z must be finite; it has 0 NaN and 1 infinite"),
        ([[1.0, 2.0], [3.0]], TypeError, "z must be an array-like"),
    ],
)
def test_bad_z(name, bad, error, match):
    act = get_activation(name)
    with pytest.raises(error, match=match):
        act(bad)
    with pytest.raises(error, match=match):
        act.phi_conj(bad)
    with pytest.raises(error, match=match.replace("z ", "z ")):
        act.bregman_loss(GOOD if name != "softmax" else np.full((2, 3), 1 / 3), bad)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_bad_x_and_v_name_the_argument(name):
    act = get_activation(name)
    with pytest.raises(ValueError, match="x must be finite"):
        act.bregman_loss(np.array([[np.nan, 0.0]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="x must be finite"):
        act.phi(np.array([[np.nan, 0.0]]))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        act.bregman_grad(np.zeros((1, 2), dtype=np.int32), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="v must be finite"):
        act.prox(np.array([[np.inf]]), 1.0)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_mismatched_shapes(name):
    act = get_activation(name)
    with pytest.raises(ValueError, match=r"x and z must have the same shape, got x \(2, 3\) and z \(2, 4\)"):
        act.bregman_loss(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="x and z must have the same shape"):
        act.bregman_loss_grad(np.zeros((3, 3)), np.zeros((2, 3)))


@pytest.mark.parametrize("c", [0.0, -1.0, np.inf, np.nan])
def test_invalid_prox_scale(c):
    with pytest.raises(ValueError, match="c must be a finite number > 0"):
        get_activation("tanh").prox(np.zeros((1, 2)), c)
    with pytest.raises(TypeError, match="c must be a real number"):
        get_activation("tanh").prox(np.zeros((1, 2)), "1")


def test_bad_out_arrays():
    act = get_activation("relu")
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3\)"):
        act(z, out=np.empty((3, 2)))
    with pytest.raises(TypeError, match="out must have dtype float64"):
        act(z, out=np.empty((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        act(z, out=np.empty((3, 2)).T)
    ro = np.empty((2, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        act(z, out=ro)
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        act(z, out=[[0.0] * 3] * 2)
    with pytest.raises(ValueError, match="grad_out must have shape"):
        act.bregman_loss_grad(z, z, grad_out=np.empty((2, 2)))


@pytest.mark.parametrize("n_threads,error", [(0, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)])
def test_invalid_n_threads(n_threads, error):
    with pytest.raises(error, match="n_threads"):
        get_activation("relu")(np.zeros((2, 2)), n_threads=n_threads)


def test_negative_n_threads_counts_from_all_cores():
    z = np.arange(6.0).reshape(2, 3) - 3
    np.testing.assert_array_equal(get_activation("relu")(z, n_threads=-1), np.maximum(z, 0))


def test_activation_objects_compare_hash_pickle_and_repr():
    import pickle

    a = get_activation("soft_threshold", alpha=0.25)
    assert a == get_activation("soft_threshold", alpha=0.25)
    assert a != get_activation("soft_threshold", alpha=0.5)
    assert hash(a) == hash(get_activation("soft_threshold", alpha=0.25))
    assert pickle.loads(pickle.dumps(a)) == a
    assert repr(a) == "get_activation('soft_threshold', alpha=0.25)"
    assert get_activation(a) is a
    assert a.params == {"alpha": 0.25} and get_activation("relu").params == {}
    assert not get_activation("softmax").separable and a.separable
    with pytest.raises(ValueError, match="parameters cannot be given"):
        get_activation(a, alpha=1.0)
