import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# CI runs on 2 cores within a time budget: fewer hypothesis examples there.
settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

ALL_ACTIVATIONS = [
    "identity",
    "relu",
    "leaky_relu",
    "soft_threshold",
    "nonneg_soft_threshold",
    "hard_tanh",
    "tanh",
    "sigmoid",
    "softmax",
    "elu",
]
DTYPES = [np.float32, np.float64]


def tolerance(dtype):
    """Relative tolerance of a kernel against its oracle (the issue's 1e-12 / 1e-5)."""
    return 1e-12 if np.dtype(dtype) == np.float64 else 1e-5


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def assert_close(actual, desired, rtol, atol):
    """assert_allclose with an array-valued atol (per-sample scales); inf must match inf."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, (actual.shape, desired.shape)
    both_inf = np.isinf(actual) & np.isinf(desired) & (np.sign(actual) == np.sign(desired))
    err = np.where(both_inf, 0.0, np.abs(actual - desired))
    bound = atol + rtol * np.abs(np.where(both_inf, 0.0, desired))
    bad = ~(err <= bound)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        raise AssertionError(
            f"{bad.sum()} of {bad.size} entries differ; first at flat index {i}: "
            f"actual {actual.ravel()[i]!r}, desired {desired.ravel()[i]!r}, error {err.ravel()[i]:.3g} "
            f"> bound {np.broadcast_to(bound, bad.shape).ravel()[i]:.3g}"
        )
