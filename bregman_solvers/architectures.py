"""Named architectures: the layers of a LeNet-5-like CNN and of a small residual network.

:func:`architecture` turns a name into a list of operators for an image shape and a number of
outputs; :meth:`bregman_solvers.LiftedNetwork.from_architecture` builds the network (relu
hidden layers by default). Every architecture here is a lifted network: each listed layer has
its own auxiliary variable, and average pooling is folded into the layer that reads it.

``"mlp"``
    Dense layers of the given widths (default: one hidden layer of 100), on the flat image.
``"lenet5"``
    LeCun et al.'s LeNet-5 on 28x28 inputs as Fenchel lifted networks train it: conv 6@5x5
    (padding 2), average pooling 2, conv 16@5x5, average pooling 2, dense 120, 84, outputs.
    Hidden auxiliary variables per 28x28 sample: 4,704 + 1,600 + 120 + 84 = 6,508 entries.
``"resnet"``
    A small ResNet v1: a stem conv 16@3x3 with stride 2 (28x28 -> 14x14), ``blocks`` basic
    blocks (default 1) of two 3x3 convolutions with 16 channels and an identity skip into the
    second one's pre-activation (its convolution starting at zero), average pooling 2 folded
    into a dense head. Hidden auxiliary variables per 28x28 sample: (1 + 2 blocks) x 3,136
    entries. With Euclidean parameter steps three blocks diverge and one block collapses to a
    constant output after a few epochs; in the input metric (``theta_metric="auto"``, the
    default) both train (docs/layers.rst, "What was measured").
"""
import numpy as np

from .convolution import AvgPooled, Conv2d
from .operators import Dense, _positive_int, _shape
from .residual import Residual

__all__ = ["ARCHITECTURES", "architecture"]

#: The names :func:`architecture` knows.
ARCHITECTURES = ("mlp", "lenet5", "resnet")


def _mlp(image, n_outputs, hidden=(100,)):
    widths = [int(np.prod(image)), *hidden, n_outputs]
    return [Dense(a, b) for a, b in zip(widths[:-1], widths[1:])]


def _lenet5(image, n_outputs):
    conv1 = Conv2d(image, 6, 5, padding=2)
    conv2 = AvgPooled(Conv2d(_pooled(conv1.out_shape), 16, 5), 2)
    head = AvgPooled(Dense(int(np.prod(_pooled(conv2.out_shape))), 120), 2, in_shape=conv2.out_shape)
    return [conv1, conv2, head, Dense(120, 84), Dense(84, n_outputs)]


def _resnet(image, n_outputs, channels=16, blocks=1):
    stem = Conv2d(image, channels, 3, stride=2, padding=1)
    layers = [stem]
    shape = stem.out_shape
    for _ in range(blocks):
        layers += [Conv2d(shape, channels, 3, padding=1),
                   Residual(Conv2d(shape, channels, 3, padding=1), zero_init=True)]
    layers.append(AvgPooled(Dense(int(np.prod(_pooled(shape))), n_outputs), 2, in_shape=shape))
    return layers


def _pooled(shape, size=2):
    return (shape[0] // size, shape[1] // size, shape[2])


_BUILDERS = {"mlp": _mlp, "lenet5": _lenet5, "resnet": _resnet}
#: The options each architecture takes (:func:`architecture`'s ``**options``).
OPTIONS = {"mlp": ("hidden",), "lenet5": (), "resnet": ("channels", "blocks")}


def architecture(name, in_shape, n_outputs, **options):
    """The operators of a named architecture.

    Parameters
    ----------
    name : {"mlp", "lenet5", "resnet"}
    in_shape : int or (int, int, int)
        The input: ``(H, W, C)`` of NHWC images (an int or a flat shape for ``"mlp"`` only).
    n_outputs : int
        Width of the output layer (the classes).
    **options
        ``"mlp"``: ``hidden`` (widths of the hidden layers); ``"resnet"``: ``channels`` (16)
        and ``blocks`` (1).

    Returns
    -------
    list of Operator
    """
    if name not in _BUILDERS:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {name!r}")
    image = _shape(in_shape, "in_shape", f"architecture {name!r}")
    n_outputs = _positive_int(n_outputs, "n_outputs", f"architecture {name!r}")
    if name != "mlp" and len(image) != 3:
        raise ValueError(f"architecture {name!r} needs image inputs, in_shape=(height, width, channels); "
                         f"got {image}")
    if name == "lenet5" and min(image[:2]) < 12:
        raise ValueError(f"architecture 'lenet5' needs images of at least 12x12 pixels, got {image}")
    if name == "resnet" and min(image[:2]) < 4:
        raise ValueError(f"architecture 'resnet' needs images of at least 4x4 pixels, got {image}")
    unknown = sorted(set(options) - set(OPTIONS[name]))
    if unknown:
        raise TypeError(f"architecture {name!r} takes the options {OPTIONS[name]}, got {unknown}")
    return _BUILDERS[name](image, n_outputs, **options)
