"""The table of proximal activations: one row each, the single source of what exists.

The build (``setup.py``) renders ``_rows.pxd.tp`` with this table into ``_rows.pxd``:
the activation codes, the compile-time tags and every dispatch from a code to the
activation's loops. :mod:`bregman_solvers.activations` reads the Python side (names,
parameters, their ranges). An entrywise activation's formulas are the functions
``<name>_sigma``, ``_dsigma``, ``_loss``, ``_outside``, ``_phi``, ``_phi_conj`` and
``_prox`` of ``_formulas.pxd``; so adding one is a row here plus those seven
functions (docs/architecture.rst, "Adding an activation").

This file is read by the build without importing the package, so it imports
nothing but the standard library.
"""
from collections import namedtuple

#: One activation. ``param``: the name of its real parameter (None: none), with
#: ``default`` and the interval it must lie in: ``(low, high)``, each end open or
#: closed by ``low_open``/``high_open``, ``high`` None for no upper bound.
#: ``entrywise``: sigma acts entry by entry (every activation but softmax), so its
#: row loops are generated from the formulas. ``sigma``: the map, for messages and docs.
#: ``linear``: where sigma is the identity up to a shift (slope 1), for the
#: linear-activation rate of the paper's Table 2: one of ``LINEAR_REGIONS``.
ActivationRow = namedtuple("ActivationRow",
                           "name param default low low_open high high_open entrywise sigma linear")

#: The regions ``linear`` may name (``p`` the parameter).
LINEAR_REGIONS = ("everywhere", "z > 0", "z > p", "|z| > p", "|z| < 1", "nowhere")


def _row(name, sigma, linear, param=None, default=0.0, low=0.0, low_open=False, high=None, high_open=False,
         entrywise=True):
    assert linear in LINEAR_REGIONS, linear
    return ActivationRow(name, param, default, low, low_open, high, high_open, entrywise, sigma, linear)


#: The activations, in the order of their integer codes (the position in this tuple).
ACTIVATIONS = (
    _row("identity", "z", "everywhere"),
    _row("relu", "max(z, 0)", "z > 0"),
    _row("leaky_relu", "z if z >= 0 else a z", "z > 0", param="a", default=0.01, low_open=True, high=1.0),
    _row("soft_threshold", "sign(z) max(|z| - alpha, 0)", "|z| > p", param="alpha", default=0.1),
    _row("nonneg_soft_threshold", "max(z - alpha, 0)", "z > p", param="alpha", default=0.1),
    _row("hard_tanh", "clip(z, -1, 1)", "|z| < 1"),
    _row("tanh", "tanh(z)", "nowhere"),
    _row("sigmoid", "1 / (1 + exp(-z))", "nowhere"),
    _row("softmax", "softmax(z) per sample", "nowhere", entrywise=False),
    _row("elu", "z if z >= 0 else alpha (exp(z) - 1)", "z > 0", param="alpha", default=1.0, low_open=True,
         high=1.0),
)

#: name -> integer code of the kernels.
KIND_CODES = {row.name: code for code, row in enumerate(ACTIVATIONS)}
