"""The examples in the public modules' docstrings run and print what they show."""
import doctest

import pytest

import bregman_solvers.activations
import bregman_solvers.kernels


@pytest.mark.parametrize("module", [bregman_solvers.activations, bregman_solvers.kernels])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
