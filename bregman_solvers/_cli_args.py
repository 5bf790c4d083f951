"""The command line's option types: each value checked as argparse reads it, with a message naming
what the option takes (:mod:`bregman_solvers.cli`)."""
import argparse

import numpy as np


def add_network_options(p):
    """``classify``'s network and LBN's parameter-step metric."""
    p.add_argument("--arch", choices=["mlp", "lenet5", "resnet"], default="mlp",
                   help="the network: dense layers of --hidden, the LeNet-5-like CNN or the small residual "
                   "network (bregman_solvers.architectures); the convolutional ones take tau_x 0.1")
    p.add_argument("--hidden", type=_positive, nargs="+", default=[784, 784, 784], metavar="WIDTH",
                   help="hidden widths of the dense network (--arch mlp), one positive integer per hidden layer")
    p.add_argument("--blocks", type=_positive, default=None,
                   help="basic blocks of --arch resnet (default: 1; the issue's deeper network has 3)")
    p.add_argument("--output", choices=["identity", "softmax"], default="identity",
                   help="the output layer of every model: identity with the mean squared error to the one-hot "
                   "labels (the paper's, Section 6.1) or softmax with its Bregman loss, the cross-entropy "
                   "(the estimators' default)")
    p.add_argument("--penalty-growth", type=_growth, default=None, metavar="RATE[:MAX]",
                   help="penalty continuation of the lifted models: in epoch e (from 0) the hidden layers' "
                   "penalty weights are 1 + RATE e, held at MAX where given; 'auto': 1:4 for lenet5 and resnet, "
                   "0 for mlp (default: auto; 0, constant weights as in the paper, with --preset paper)")
    p.add_argument("--classical", action="store_true", help="also train the classical lifted network (eq. 7)")
    p.add_argument("--theta-metric", choices=["auto", "euclidean", "input"], default=None,
                   help="metric of the lifted models' parameter step: euclidean, or input (per layer a Gauss-Newton "
                   "step in the metric of its input, which trains the convolutions faster; docs/layers.rst); "
                   "default: auto (input for lenet5 and resnet, euclidean for mlp), euclidean with --preset paper")


def _growth(text):
    """``--penalty-growth``'s ``auto``, ``RATE`` or ``RATE:MAX``: RATE >= 0 and MAX >= 1 finite (as text)."""
    if text == "auto":
        return text
    parts = text.split(":")
    values = [_number(part) for part in parts]
    if len(parts) > 2 or not all(np.isfinite(v) for v in values) or values[0] < 0 or \
            (len(values) == 2 and values[1] < 1):
        raise argparse.ArgumentTypeError(f"must be 'auto', RATE (a number >= 0) or RATE:MAX (MAX >= 1), got {text!r}")
    return text


def penalty_growth(args):
    """``--penalty-growth`` as ImplicitSGD's ``penalty_growth``: ``"auto"`` (unset: the library's
    preset; 0 with the paper's), the rate, or a :class:`~bregman_solvers.schedules.Ramp` ``1 + RATE e``
    held at MAX."""
    from .schedules import Ramp

    text = args.penalty_growth or ("0" if args.preset == "paper" else "auto")
    if text == "auto":
        return text
    rate, *cap = (float(part) for part in text.split(":"))
    return Ramp(1.0, rate, cap[0]) if cap else rate


def architecture_options(args):
    """The options of ``--arch``'s architecture (:data:`bregman_solvers.architectures.OPTIONS`):
    ``--hidden`` for mlp, ``--blocks`` (where given) for resnet."""
    if args.arch == "mlp":
        return {"hidden": args.hidden}
    return {} if args.blocks is None else {"blocks": args.blocks}


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


def _cosine(text):
    """Whether ``text`` is ``cosine:START:END`` with ``0 < END <= START`` finite (see :func:`cosine_steps`)."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "cosine":
        return False
    start, end = _number(parts[1]), _number(parts[2])
    return bool(np.isfinite(start) and 0 < end <= start)


def cosine_steps(text, epochs):
    """A step option's ``cosine:START:END``: :class:`~bregman_solvers.schedules.Cosine` from START in the
    first epoch to END in the last of ``epochs``."""
    from .schedules import Cosine

    _, start, end = text.split(":")
    return Cosine(float(start), max(epochs - 1, 1), float(end))


def _step_or_rule(*rules, cosine=False):
    """The type of a step option: a positive number, one of the step rules named ``rules`` or, with
    ``cosine``, a cosine annealing ``cosine:START:END`` over the run's epochs."""
    def step(text):
        if text in rules or (cosine and _cosine(text)):
            return text
        try:
            return _step(text)
        except argparse.ArgumentTypeError:
            names = " or ".join(repr(r) for r in rules) + (" or 'cosine:START:END'" if cosine else "")
            raise argparse.ArgumentTypeError(f"must be {names} or a positive number, got {text!r}") from None
    return step


_step_or_auto = _step_or_rule("auto", "lipschitz", cosine=True)
_step_or_auto_tau = _step_or_rule("auto")


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


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults in the help, once: not where the help already says its default, nor for
    flags and options without one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False or action.default == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """An error is one line (``prog: error: ...``) and a hint, not the usage before it; exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n  (see {self.prog} --help)\n")
