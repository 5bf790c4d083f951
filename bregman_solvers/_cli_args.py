"""The command line's option types: each value checked as argparse reads it, with a message naming
what the option takes (:mod:`bregman_solvers.cli`)."""
import argparse

import numpy as np


def _number(text):
    """``text`` as a float; NaN when it is not a number (every check below then refuses it)."""
    try:
        return float(text)
    except ValueError:
        return np.nan


def _step(text):
    value = _number(text)
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _sync_every(text):
    return "epoch" if text == "epoch" else _positive(text)


def _momentum(text):
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


def _step_or_auto(text):
    value = _number(text)
    if text != "auto" and not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be 'auto' or a positive number, got {text!r}")
    return "auto" if text == "auto" else value


def _nonnegative(text):
    value = _number(text)
    if not (value >= 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _integer_at_least(text, minimum, what):
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def _positive(text):
    return _integer_at_least(text, 1, "a positive integer")


def _seed(text):
    return _integer_at_least(text, 0, "an integer >= 0")
