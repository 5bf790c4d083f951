"""The PyTorch side of :mod:`bregman_solvers.interop`: modules for the library's layers, and the reading
of a ``torch.nn.Sequential`` into operators.

Imported only by :func:`~bregman_solvers.interop.to_torch` and
:func:`~bregman_solvers.interop.from_torch`, after they have checked that PyTorch is installed
(it is an optional extra, never a dependency). The library's data are samples first with each
image's entries flat in NHWC order; PyTorch's convolutions read NCHW images. The modules written
here take and return the library's flat rows, so that a converted network is called exactly like
:meth:`~bregman_solvers.LiftedNetwork.forward`.
"""
import numpy as np
import torch
from torch import nn

from .activations import get_activation
from .convolution import AvgPooled, Conv2d
from .operators import Dense
from .residual import Residual

__all__ = ["ShiftedReLU", "FlatConv2d", "FlatAvgPool2d", "ResidualSum", "LiftedModule", "module_of",
           "activation_module", "read_sequential", "read_lifted_module"]


class ShiftedReLU(nn.Module):
    """``max(x - alpha, 0)``: the library's ``nonneg_soft_threshold`` (no PyTorch module has it)."""

    def __init__(self, alpha):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x):
        return torch.relu(x - self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class FlatConv2d(nn.Module):
    """A ``torch.nn.Conv2d`` between the library's flat NHWC rows: rows -> NCHW -> conv -> rows."""

    def __init__(self, conv, in_shape):
        super().__init__()
        self.conv, self.in_shape = conv, tuple(int(s) for s in in_shape)

    def forward(self, rows):
        image = rows.reshape(-1, *self.in_shape).permute(0, 3, 1, 2)
        return self.conv(image).permute(0, 2, 3, 1).reshape(rows.shape[0], -1)

    def extra_repr(self):
        return f"in_shape={self.in_shape} (H, W, C)"


class FlatAvgPool2d(nn.Module):
    """A ``torch.nn.AvgPool2d`` (window = stride) on flat NHWC rows."""

    def __init__(self, size, in_shape):
        super().__init__()
        self.pool, self.in_shape = nn.AvgPool2d(size), tuple(int(s) for s in in_shape)

    def forward(self, rows):
        image = rows.reshape(-1, *self.in_shape).permute(0, 3, 1, 2)
        return self.pool(image).permute(0, 2, 3, 1).reshape(rows.shape[0], -1)


class ResidualSum(nn.Module):
    """``z = B(x_{l-1}) + S(x_{l-2})``: a residual block's pre-activation (the bias is ``B``'s)."""

    def __init__(self, main, skip):
        super().__init__()
        self.main, self.skip = main, skip

    def forward(self, previous, skipped):
        return self.main(previous) + self.skip(skipped)


class LiftedModule(nn.Module):
    """A network whose layers read more than the previous layer (residual blocks): layer ``l`` reads
    the outputs ``sources[l]`` layers back and applies its activation.

    Attributes
    ----------
    layers, activations : torch.nn.ModuleList
    sources : list of tuple of int
        As each operator's ``sources`` (1: the previous layer's output, 2: the one before).
    """

    def __init__(self, layers, activations, sources, configs):
        super().__init__()
        self.layers, self.activations = nn.ModuleList(layers), nn.ModuleList(activations)
        self.sources = [tuple(int(s) for s in src) for src in sources]
        #: the library's operator configs, for :func:`~bregman_solvers.interop.from_torch`
        self.configs = list(configs)

    def forward(self, x):
        outputs = [x]
        for layer, activation, sources in zip(self.layers, self.activations, self.sources):
            z = layer(*(outputs[-s] for s in sources))
            outputs.append(activation(z))
        return outputs[-1]


# ------------------------------------------------------------------------------- library -> torch
def activation_module(act):
    """The PyTorch module computing the library activation ``act`` (an Activation)."""
    alpha = float(next(iter(act.params.values()))) if act.params else None
    modules = {
        "identity": lambda: nn.Identity(), "relu": lambda: nn.ReLU(), "tanh": lambda: nn.Tanh(),
        "sigmoid": lambda: nn.Sigmoid(), "softmax": lambda: nn.Softmax(dim=1),
        "leaky_relu": lambda: nn.LeakyReLU(alpha), "elu": lambda: nn.ELU(alpha),
        "soft_threshold": lambda: nn.Softshrink(alpha), "nonneg_soft_threshold": lambda: ShiftedReLU(alpha),
        "hard_tanh": lambda: nn.Hardtanh(-1.0, 1.0),
    }
    if act.name not in modules:
        raise ValueError(f"activation {act.name!r} has no PyTorch module here")
    return modules[act.name]()


def _tensor(array, dtype):
    return nn.Parameter(torch.from_numpy(np.array(array, dtype=dtype)))


def module_of(op, weights, bias, dtype, where):
    """The module computing ``A(inputs; weights) + bias`` for the operator ``op`` (``bias`` None:
    no bias, a residual block's skip)."""
    with_bias = bias is not None
    if type(op) is Dense:
        linear = nn.Linear(op.n_in, op.n_out, bias=with_bias)
        linear.weight = _tensor(weights.reshape(op.weight_shape), dtype)
        if with_bias:
            linear.bias = _tensor(bias, dtype)
        return linear
    if type(op) is Conv2d:
        conv = nn.Conv2d(op.in_shape[2], op.channels, op.kernel_size, stride=op.stride, padding=op.padding,
                         bias=with_bias)
        # the kernel (C_out, k_h, k_w, C_in) as PyTorch's (C_out, C_in, k_h, k_w)
        conv.weight = _tensor(weights.reshape(op.weight_shape).transpose(0, 3, 1, 2), dtype)
        if with_bias:
            conv.bias = _tensor(bias, dtype)
        return FlatConv2d(conv, op.in_shape)
    if type(op) is AvgPooled:
        return nn.Sequential(FlatAvgPool2d(op.size, op.in_shape),
                             module_of(op.operator, weights, bias, dtype, where))
    if type(op) is Residual:
        main, skip = op._split(weights)
        shortcut = nn.Identity() if skip is None else module_of(op.projection, skip, None, dtype, where)
        return ResidualSum(module_of(op.operator, main, bias, dtype, where), shortcut)
    raise ValueError(f"{where} ({op!r}): to_torch writes Dense, Conv2d, AvgPooled and Residual layers, not "
                     f"{type(op).__name__}")


# ------------------------------------------------------------------------------- torch -> library
def parameters_of(op, module, dtype):
    """``(weights, bias)`` of ``module`` as written by :func:`module_of` for ``op`` (its inverse)."""
    if type(op) is Dense:
        return _numpy(module.weight, dtype), _bias(module, op, dtype)
    if type(op) is Conv2d:
        return _numpy(module.conv.weight, dtype).transpose(0, 2, 3, 1), _bias(module.conv, op, dtype)
    if type(op) is AvgPooled:
        return parameters_of(op.operator, module[1], dtype)
    if type(op) is Residual:
        main, bias = parameters_of(op.operator, module.main, dtype)
        if op.projection is None:
            return main, bias
        skip, _ = parameters_of(op.projection, module.skip, dtype)
        return np.concatenate([main.reshape(-1), skip.reshape(-1)]), bias
    raise ValueError(f"{op!r} has no PyTorch module here")


def _bias(module, op, dtype):
    return np.zeros(op.bias_shape, dtype) if module.bias is None else _numpy(module.bias, dtype)


def read_lifted_module(module, dtype):
    """``(layers, weights, biases, activations)`` of a :class:`LiftedModule` written by to_torch."""
    from .operators import operator_from_config

    layers = [operator_from_config(config) for config in module.configs]
    pairs = [parameters_of(op, layer, dtype) for op, layer in zip(layers, module.layers)]
    activations = []
    for l, act in enumerate(module.activations):
        found = _activation_of(act, f"layer {l + 1}'s activation ({type(act).__name__})", False)
        if found is None:
            raise ValueError(f"layer {l + 1}'s activation {act!r} has no counterpart here")
        activations.append(found)
    return layers, [w for w, _ in pairs], [b for _, b in pairs], activations


_ACTIVATIONS = {
    nn.Identity: lambda m: get_activation("identity"), nn.ReLU: lambda m: get_activation("relu"),
    nn.Tanh: lambda m: get_activation("tanh"), nn.Sigmoid: lambda m: get_activation("sigmoid"),
    nn.LeakyReLU: lambda m: get_activation("leaky_relu", a=m.negative_slope),
    nn.ELU: lambda m: get_activation("elu", alpha=m.alpha),
    nn.Softshrink: lambda m: get_activation("soft_threshold", alpha=m.lambd),
    ShiftedReLU: lambda m: get_activation("nonneg_soft_threshold", alpha=m.alpha),
}


def _activation_of(module, where, image):
    if type(module) is nn.Hardtanh:
        if (module.min_val, module.max_val) != (-1.0, 1.0):
            raise ValueError(f"{where}: Hardtanh({module.min_val}, {module.max_val}) has no counterpart here "
                             f"(hard_tanh clips to [-1, 1])")
        return get_activation("hard_tanh")
    if type(module) is nn.Softmax:
        if image or module.dim not in (1, -1):
            raise ValueError(f"{where}: Softmax(dim={module.dim}) has no counterpart here (softmax over the features "
                             f"of flat rows: dim=1)")
        return get_activation("softmax")
    if type(module) in _ACTIVATIONS:
        return _ACTIVATIONS[type(module)](module)
    return None


def _flat(sequential):
    """The leaves of nested ``nn.Sequential``s, in order, with their names."""
    for name, module in sequential.named_children():
        if type(module) is nn.Sequential:
            yield from ((f"{name}.{inner}", m) for inner, m in _flat(module))
        else:
            yield name, module


def _numpy(tensor, dtype):
    return tensor.detach().cpu().numpy().astype(dtype)


class _Reader:
    """Reads a Sequential's modules in order, tracking the shape of what flows through: an image
    (H, W, C) or flat rows, and for flat rows read from an NCHW image by ``nn.Flatten`` the
    permutation that puts a following ``nn.Linear``'s columns in the library's NHWC order."""

    def __init__(self, input_shape, dtype):
        self.dtype = dtype
        self.image = None if input_shape is None else (input_shape[1], input_shape[2], input_shape[0])
        self.size = None if input_shape is None else int(np.prod(input_shape))
        self.column_order = None        # flat rows in NCHW order: the NHWC index of each column
        self.pool = None                # (size, in_shape) of an average pool waiting for its operator
        self.layers, self.weights, self.biases, self.activations = [], [], [], []
        self.open = False               # an operator whose activation is still to come

    def close(self, act):
        self.activations.append(act)
        self.open = False

    def operator(self, op, weights, bias):
        if self.open:
            self.close(get_activation("identity"))      # a layer without an activation module: identity
        if self.pool is not None:
            size, in_shape = self.pool
            op, self.pool = AvgPooled(op, size, in_shape=in_shape), None
        self.layers.append(op)
        self.weights.append(weights)
        self.biases.append(np.zeros(op.bias_shape, self.dtype) if bias is None else bias)
        self.open = True

    def linear(self, m, where):
        if self.image is not None:
            raise ValueError(f"{where}: Linear reads flat rows; put an nn.Flatten before it")
        if self.size is not None and m.in_features != self.size:
            raise ValueError(f"{where}: Linear expects {m.in_features} features, the layer before gives {self.size}")
        weight = _numpy(m.weight, self.dtype)
        if self.column_order is not None:
            # the library flattens images in NHWC order: move each column to its NHWC place
            reordered = np.empty_like(weight)
            reordered[:, self.column_order] = weight
            weight, self.column_order = reordered, None
        bias = None if m.bias is None else _numpy(m.bias, self.dtype)
        self.operator(Dense(m.in_features, m.out_features), weight, bias)
        self.size = m.out_features

    def conv(self, m, where):
        if self.image is None:
            raise ValueError(f"{where}: Conv2d reads images: pass input_shape=(C, H, W) (or the images are "
                             f"flattened before it)")
        channels = self.image[2]
        stride, padding = set(m.stride), m.padding
        if (m.groups != 1 or set(m.dilation) != {1} or len(stride) != 1 or isinstance(padding, str)
                or len(set(padding)) != 1 or m.padding_mode != "zeros" or m.in_channels != channels):
            raise ValueError(f"{where}: {m} has no counterpart here (Conv2d takes one stride, one zero padding "
                             f"on every side, no groups or dilation, and {channels} input channels)")
        # a pending pooling: self.image is the pooled image, which the convolution reads
        op = Conv2d(self.image, m.out_channels, tuple(m.kernel_size), stride=stride.pop(), padding=padding[0])
        weight = _numpy(m.weight, self.dtype).transpose(0, 2, 3, 1)        # (C_out, k_h, k_w, C_in)
        bias = None if m.bias is None else _numpy(m.bias, self.dtype)
        self.operator(op, weight, bias)
        self.image, self.size = tuple(op.out_shape), op.out_size

    def on_rows(self, in_shape, read, module, where):
        """A module of :func:`module_of` (flat NHWC rows in and out) around an image module."""
        if self.image is not None:
            raise ValueError(f"{where} reads flat rows; the module before gives images")
        if self.size is not None and self.size != int(np.prod(in_shape)):
            raise ValueError(f"{where} reads images {in_shape} (H, W, C), the layer before gives {self.size} "
                             f"features")
        self.image = tuple(in_shape)
        read(module, where)
        self.image = None       # flat rows again, in NHWC order: no reordering for a Linear

    def avg_pool(self, m, where):
        size = m.kernel_size if isinstance(m.kernel_size, int) else None
        if isinstance(m.kernel_size, tuple) and len(set(m.kernel_size)) == 1:
            size = m.kernel_size[0]
        stride = size if m.stride in (None, size, (size, size)) else None
        if size is None or stride is None or m.padding not in (0, (0, 0)) or m.ceil_mode:
            raise ValueError(f"{where}: {m} has no counterpart here (a square window equal to its stride, no "
                             f"padding, ceil_mode=False)")
        if self.image is None:
            raise ValueError(f"{where}: AvgPool2d reads images: pass input_shape=(C, H, W)")
        if self.pool is not None:
            raise ValueError(f"{where}: two poolings in a row (fold them into one window)")
        if self.open:
            raise ValueError(f"{where}: a pooling directly after a layer's product, before its activation, has "
                             f"no counterpart here (pooling is folded into the operator of the layer that reads "
                             f"the pooled image)")
        height, width, channels = self.image
        self.pool = (size, self.image)
        self.image = (height // size, width // size, channels)
        self.size = int(np.prod(self.image))

    def flatten(self, m, where):
        if self.image is None:
            return      # already flat rows
        if (m.start_dim, m.end_dim) not in ((1, -1), (1, 3)):
            raise ValueError(f"{where}: Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}): only the "
                             f"flattening of whole images (start_dim=1) has a counterpart here")
        height, width, channels = self.image
        # NCHW flat column (c, h, w) holds the NHWC entry (h, w, c)
        nhwc = np.arange(height * width * channels).reshape(height, width, channels)
        self.column_order = nhwc.transpose(2, 0, 1).reshape(-1)
        self.image = None

    def activation(self, act, where):
        if not self.open:
            raise ValueError(f"{where}: an activation must follow a Linear or Conv2d (each lifted layer is a "
                             f"product, then one activation)")
        self.close(act)


def read_sequential(sequential, input_shape, dtype):
    """``(layers, weights, biases, activations)`` of a ``torch.nn.Sequential`` (see
    :func:`~bregman_solvers.interop.from_torch`)."""
    reader = _Reader(input_shape, dtype)
    for name, module in _flat(sequential):
        where = f"module {name} ({type(module).__name__})"
        act = _activation_of(module, where, reader.image is not None)
        if act is not None:
            reader.activation(act, where)
        elif type(module) is nn.Linear:
            reader.linear(module, where)
        elif type(module) is FlatConv2d:
            reader.on_rows(module.in_shape, reader.conv, module.conv, where)
        elif type(module) is FlatAvgPool2d:
            reader.on_rows(module.in_shape, reader.avg_pool, module.pool, where)
        elif type(module) is nn.Conv2d:
            reader.conv(module, where)
        elif type(module) is nn.AvgPool2d:
            reader.avg_pool(module, where)
        elif type(module) is nn.Flatten:
            reader.flatten(module, where)
        else:
            raise ValueError(f"{where} has no counterpart here (from_torch reads Linear, Conv2d, AvgPool2d, "
                             f"Flatten and the activations ReLU, LeakyReLU, ELU, Softshrink, Hardtanh, Tanh, "
                             f"Sigmoid, Softmax and Identity)")
    if reader.pool is not None:
        raise ValueError("the Sequential ends with a pooling: pooling is folded into the operator of the layer "
                         "that reads the pooled image, and none follows")
    if not reader.layers:
        raise ValueError("the Sequential has no Linear or Conv2d layer")
    if reader.open:
        reader.close(get_activation("identity"))
    if reader.image is not None:
        raise ValueError("the Sequential ends with an image: flatten it (nn.Flatten) before its end")
    return reader.layers, reader.weights, reader.biases, reader.activations
