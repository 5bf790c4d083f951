"""Take a trained network elsewhere, and bring one in: ONNX export and scikit-learn warm starts.

* :func:`to_onnx`: a :class:`~bregman_solvers.LiftedNetwork` or a fitted estimator as an ONNX model
  (the optional extra ``bregman_solvers[onnx]``): per dense layer one ``Gemm``, each activation as
  standard ONNX operators, a classifier's predicted labels (``ArgMax``, then its ``classes_``) beside
  its scores; a dynamic batch dimension.
* :func:`to_torch`: the same forward pass as a ``torch.nn.Sequential`` (a small module where residual
  blocks read two layers back), with the same weights (the optional extra ``bregman_solvers[torch]``).
* :func:`from_sklearn` and :func:`from_torch`: a fitted ``MLPClassifier`` / ``MLPRegressor`` or a
  ``torch.nn.Sequential`` (dense or convolutional) as a :class:`~bregman_solvers.LiftedNetwork` with
  the same parameters, to continue with lifted training (the estimators' ``fit(..., init=network)``).

A trained lifted network predicts with its forward pass (eq. 1): the auxiliary variables are a
device of training, so the exported graph is the plain feed-forward network.
"""
import numpy as np

from .activations import get_activation
from .network import LiftedNetwork
from .operators import Dense

__all__ = ["to_onnx", "to_torch", "from_sklearn", "from_torch", "ONNX_OPSET"]

#: The default opset (``Clip`` with inputs, ``Softmax`` along an axis, ``Shrink``: opset 13 has all)
ONNX_OPSET = 17


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("to_onnx needs the onnx package: pip install 'bregman_solvers[onnx]'") from None
    return onnx


def _import_torch():
    """The PyTorch side of this module (:mod:`bregman_solvers._torch`): an ImportError naming the extra
    without PyTorch."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ImportError("to_torch and from_torch need PyTorch: pip install 'bregman_solvers[torch]'") from None
    from . import _torch

    return _torch


def _network_of(model):
    """The network of ``model`` and what the graph outputs: ``(network, classes or None, kind)``."""
    if isinstance(model, LiftedNetwork):
        return model, None, "network"
    network = getattr(model, "network_", None)
    if not isinstance(network, LiftedNetwork):
        raise TypeError(f"model must be a LiftedNetwork or a fitted estimator of bregman_solvers, got "
                        f"{type(model).__name__}" + (" (not fitted)" if hasattr(model, "get_params") else ""))
    classes = getattr(model, "classes_", None)
    return network, classes, "classifier" if classes is not None else "network"


def _activation_nodes(helper, act, x, y, dtype, prefix, initializers):
    """The ONNX nodes computing ``y = act(x)``.

    ONNX's attributes are float32: in float32 the parametrised activations are its operators
    (``LeakyRelu``, ``Elu``, ``Shrink``); in float64 they are composed from operators whose
    parameter is a float64 tensor, so that the graph computes what the network computes.
    """
    name, p = act.name, act.params
    alpha = float(next(iter(p.values()))) if p else None
    single = dtype == np.float32

    def constant(suffix, value):
        initializers.append((f"{prefix}_{suffix}", np.array(value, dtype)))
        return f"{prefix}_{suffix}"

    if name == "identity":
        return [helper.make_node("Identity", [x], [y])]
    if name == "relu":
        return [helper.make_node("Relu", [x], [y])]
    if name == "leaky_relu":
        if single:
            return [helper.make_node("LeakyRelu", [x], [y], alpha=alpha)]
        return [helper.make_node("PRelu", [x, constant("slope", alpha)], [y])]
    if name == "elu":
        if single:
            return [helper.make_node("Elu", [x], [y], alpha=alpha)]
        # relu(x) + alpha (exp(min(x, 0)) - 1)
        t = [f"{prefix}_{k}" for k in ("pos", "neg", "exp", "m1", "scaled")]
        return [helper.make_node("Relu", [x], [t[0]]),
                helper.make_node("Min", [x, constant("zero", 0)], [t[1]]),
                helper.make_node("Exp", [t[1]], [t[2]]),
                helper.make_node("Sub", [t[2], constant("one", 1)], [t[3]]),
                helper.make_node("Mul", [t[3], constant("alpha", alpha)], [t[4]]),
                helper.make_node("Add", [t[0], t[4]], [y])]
    if name == "soft_threshold":
        if single:
            # Shrink: x - bias above lambd, x + bias below -lambd, 0 between
            return [helper.make_node("Shrink", [x], [y], lambd=alpha, bias=alpha)]
        # sign(x) relu(|x| - alpha)
        t = [f"{prefix}_{k}" for k in ("abs", "shifted", "magnitude", "sign")]
        return [helper.make_node("Abs", [x], [t[0]]),
                helper.make_node("Sub", [t[0], constant("alpha", alpha)], [t[1]]),
                helper.make_node("Relu", [t[1]], [t[2]]),
                helper.make_node("Sign", [x], [t[3]]),
                helper.make_node("Mul", [t[3], t[2]], [y])]
    if name == "nonneg_soft_threshold":
        initializers.append((f"{prefix}_alpha", np.array(alpha, dtype)))
        return [helper.make_node("Sub", [x, f"{prefix}_alpha"], [f"{prefix}_shifted"]),
                helper.make_node("Relu", [f"{prefix}_shifted"], [y])]
    if name == "hard_tanh":
        initializers += [(f"{prefix}_low", np.array(-1, dtype)), (f"{prefix}_high", np.array(1, dtype))]
        return [helper.make_node("Clip", [x, f"{prefix}_low", f"{prefix}_high"], [y])]
    if name == "tanh":
        return [helper.make_node("Tanh", [x], [y])]
    if name == "sigmoid":
        return [helper.make_node("Sigmoid", [x], [y])]
    if name == "softmax":
        return [helper.make_node("Softmax", [x], [y], axis=1)]
    raise ValueError(f"activation {name!r} has no ONNX form here")


def _check_exportable(op, l):
    from .convolution import AvgPooled, Conv2d
    from .residual import Residual

    """Refuse, naming layer ``l``, an operator :func:`_linear_nodes` cannot write."""
    parts = {AvgPooled: lambda: [op.operator], Residual: lambda: [op.operator, op.projection]}
    if type(op) in (Dense, Conv2d):
        return
    if type(op) in parts:
        for part in parts[type(op)]():
            if part is not None:
                _check_exportable(part, l)
        return
    raise ValueError(f"layer {l} ({op!r}): to_onnx writes Dense, Conv2d, AvgPooled and Residual layers, not "
                     f"{type(op).__name__}")


def _image(helper, x, shape, name, nodes, initializers):
    """Flat NHWC rows ``x`` as an NCHW batch (Reshape, Transpose)."""
    initializers.append((f"{name}_shape", np.array([-1, *shape], np.int64)))
    nodes += [helper.make_node("Reshape", [x, f"{name}_shape"], [f"{name}_nhwc"]),
              helper.make_node("Transpose", [f"{name}_nhwc"], [f"{name}_nchw"], perm=[0, 3, 1, 2])]
    return f"{name}_nchw"


def _rows(helper, x, size, name, nodes, initializers):
    """An NCHW batch ``x`` as flat NHWC rows of ``size`` entries (Transpose, Reshape)."""
    initializers.append((f"{name}_rows", np.array([-1, size], np.int64)))
    nodes += [helper.make_node("Transpose", [x], [f"{name}_back"], perm=[0, 2, 3, 1]),
              helper.make_node("Reshape", [f"{name}_back", f"{name}_rows"], [name])]
    return name


def _linear_nodes(helper, op, inputs, weights, name, nodes, initializers):
    """The ONNX nodes of ``A(inputs; weights)`` (no bias) for an operator; returns the output's name.

    The library's images are flat NHWC rows, ONNX's convolutions and pools NCHW: each is wrapped in
    a Reshape/Transpose pair (a runtime's optimiser folds consecutive ones)."""
    from .convolution import AvgPooled, Conv2d
    from .residual import Residual

    if type(op) is Dense:
        initializers.append((f"{name}_W", weights.reshape(op.weight_shape)))
        nodes.append(helper.make_node("Gemm", [inputs[0], f"{name}_W"], [name], transB=1))
        return name
    if type(op) is Conv2d:
        image = _image(helper, inputs[0], op.in_shape, f"{name}_in", nodes, initializers)
        # the kernel (C_out, k_h, k_w, C_in) as ONNX's (C_out, C_in, k_h, k_w)
        kernel = weights.reshape(op.weight_shape).transpose(0, 3, 1, 2)
        initializers.append((f"{name}_W", np.ascontiguousarray(kernel)))
        p = op.padding
        nodes.append(helper.make_node("Conv", [image, f"{name}_W"], [f"{name}_conv"],
                                      kernel_shape=list(op.kernel_size), strides=[op.stride, op.stride],
                                      pads=[p, p, p, p]))
        return _rows(helper, f"{name}_conv", op.out_size, name, nodes, initializers)
    if type(op) is AvgPooled:
        image = _image(helper, inputs[0], op.in_shape, f"{name}_in", nodes, initializers)
        nodes.append(helper.make_node("AveragePool", [image], [f"{name}_pool"], kernel_shape=[op.size, op.size],
                                      strides=[op.size, op.size]))
        pooled = _rows(helper, f"{name}_pool", op.operator.in_size, f"{name}_pooled", nodes, initializers)
        return _linear_nodes(helper, op.operator, [pooled], weights, f"{name}_inner", nodes, initializers)
    if type(op) is Residual:
        main, skip = op._split(weights)
        path = _linear_nodes(helper, op.operator, inputs[:1], main, f"{name}_main", nodes, initializers)
        shortcut = inputs[1] if skip is None else _linear_nodes(helper, op.projection, inputs[1:], skip,
                                                                f"{name}_skip", nodes, initializers)
        nodes.append(helper.make_node("Add", [path, shortcut], [name]))
        return name
    raise ValueError(f"{op!r} has no ONNX form here")


def to_onnx(model, path=None, opset=ONNX_OPSET, input_name="input", input_mean=None):
    """The forward pass of ``model`` as an ONNX model (checked with ``onnx.checker``).

    Parameters
    ----------
    model : LiftedNetwork or fitted estimator
        A network of :class:`~bregman_solvers.operators.Dense`, :class:`~bregman_solvers.Conv2d`,
        :class:`~bregman_solvers.AvgPooled` and :class:`~bregman_solvers.Residual` layers (a dense
        layer is a ``Gemm``; a convolution a ``Conv`` and a pooled one an ``AveragePool``, each
        between a Reshape/Transpose to NCHW and back to the library's flat NHWC rows; a residual
        block an ``Add``), or a fitted :class:`~bregman_solvers.estimators.LiftedBregmanClassifier`,
        :class:`~bregman_solvers.estimators.SparseAutoencoder`,
        :class:`~bregman_solvers.estimators.DenoisingAutoencoder` or
        :class:`~bregman_solvers.estimators.LiftedEnergyOutlierDetector` (its autoencoder).
    path : str or path-like, optional
        Also write the model there.
    opset : int, default :data:`ONNX_OPSET`
        At least 13.
    input_name : str, default "input"
    input_mean : array-like of shape (n_features,), optional
        Subtracted from the input first, in the graph: the centring the network was trained with
        (the command line's, :func:`~bregman_solvers.datasets.preprocess`), so that the exported
        model takes the data as they come (e.g. pixels scaled to [0, 1]).

    Returns
    -------
    onnx.ModelProto
        Input ``input_name``: (batch, n_features) in the network's dtype, the batch dimension
        dynamic. Outputs: ``output``, the network's output (a classifier's scores, an
        autoencoder's reconstruction); for a classifier also ``label``, ``classes_[argmax]`` of
        the scores (as its ``predict``).
    """
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or opset < 13:
        raise ValueError(f"opset must be an integer >= 13, got {opset!r}")
    if not isinstance(input_name, str) or not input_name:
        raise ValueError(f"input_name must be a non-empty string, got {input_name!r}")
    network, classes, kind = _network_of(model)
    for l, op in enumerate(network.layers, start=1):
        _check_exportable(op, l)
    dtype = network.dtype
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    nodes, initializers = [], []
    xs = [input_name]
    if input_mean is not None:
        mean = np.asarray(input_mean, dtype=dtype)
        if mean.shape != (network.widths[0],) or not np.all(np.isfinite(mean)):
            raise ValueError(f"input_mean must be {network.widths[0]} finite numbers (one per feature), got "
                             f"shape {mean.shape}")
        initializers.append(("input_mean", mean))
        nodes.append(helper.make_node("Sub", [input_name, "input_mean"], ["centred"]))
        xs = ["centred"]
    for l, (op, w, act) in enumerate(zip(network.layers, network.weights, network.activations)):
        z = f"z{l}"
        inputs = [xs[l + 1 - source] for source in op.sources]
        if type(op) is Dense:
            initializers += [(f"W{l}", np.asarray(w)), (f"b{l}", np.asarray(network.biases[l]))]
            nodes.append(helper.make_node("Gemm", [inputs[0], f"W{l}", f"b{l}"], [z], transB=1))  # x W^T + b
        else:
            product = _linear_nodes(helper, op, inputs, np.asarray(w), f"layer{l}", nodes, initializers)
            initializers.append((f"b{l}", np.asarray(network.bias_row(l))))       # a bias per channel, expanded
            nodes.append(helper.make_node("Add", [product, f"b{l}"], [z]))
        y = "output" if l == network.n_layers - 1 else f"x{l + 1}"
        nodes += _activation_nodes(helper, act, z, y, dtype, f"act{l}", initializers)
        xs.append(y)
    outputs = [helper.make_tensor_value_info("output", elem, ["batch", network.widths[-1]])]
    if kind == "classifier":
        scores = "output"
        if len(classes) < network.widths[-1]:       # a single class: scores of more outputs than classes
            initializers += [("label_starts", np.array([0], np.int64)), ("label_ends", np.array([len(classes)],
                                                                                                np.int64)),
                             ("label_axes", np.array([1], np.int64))]
            nodes.append(helper.make_node("Slice", ["output", "label_starts", "label_ends", "label_axes"],
                                          ["class_scores"]))
            scores = "class_scores"
        nodes.append(helper.make_node("ArgMax", [scores], ["label_index"], axis=1, keepdims=0))
        labels = np.asarray(classes)
        if labels.dtype.kind in "iub":
            table, elem_label = labels.astype(np.int64), TensorProto.INT64
        elif labels.dtype.kind in "US" or labels.dtype == object:
            table, elem_label = labels.astype(str).astype(object), TensorProto.STRING
        else:
            table, elem_label = labels.astype(np.float64), TensorProto.DOUBLE
        initializers.append(("classes", table))
        nodes.append(helper.make_node("Gather", ["classes", "label_index"], ["label"], axis=0))
        outputs.append(helper.make_tensor_value_info("label", elem_label, ["batch"]))
    graph = helper.make_graph(
        nodes, f"bregman_solvers_{kind}",
        [helper.make_tensor_value_info(input_name, elem, ["batch", network.widths[0]])], outputs,
        [numpy_helper.from_array(array, name) for name, array in initializers])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                                   producer_name="bregman_solvers")
    onnx.checker.check_model(onnx_model)
    if path is not None:
        onnx.save(onnx_model, path)
    return onnx_model


def from_sklearn(mlp, dtype=None, **network_params):
    """A fitted ``MLPClassifier`` or ``MLPRegressor`` as a :class:`~bregman_solvers.LiftedNetwork`
    with the same weights and activations (to continue with lifted training, or to compare).

    Its hidden activation (``relu``, ``tanh``, ``logistic``, ``identity``) becomes the library's
    (``logistic``: ``sigmoid``), its output activation too (``softmax``; ``logistic``, a binary
    classifier's single unit: ``sigmoid``; ``identity``). The forward pass equals ``mlp``'s
    (``predict_proba`` for a classifier, ``predict`` for a regressor).

    Parameters
    ----------
    mlp : sklearn.neural_network.MLPClassifier or MLPRegressor, fitted
    dtype : numpy dtype, optional
        Default: the dtype of ``mlp``'s weights.
    **network_params
        Passed on to :class:`~bregman_solvers.LiftedNetwork` (``lambdas``, ``penalty``, ``n_threads``).
    """
    coefs, intercepts = getattr(mlp, "coefs_", None), getattr(mlp, "intercepts_", None)
    if coefs is None or intercepts is None or not hasattr(mlp, "out_activation_"):
        raise TypeError(f"mlp must be a fitted MLPClassifier or MLPRegressor, got {type(mlp).__name__}")
    names = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "identity": "identity", "softmax": "softmax"}
    for what, value in (("activation", mlp.activation), ("out_activation_", mlp.out_activation_)):
        if value not in names:
            raise ValueError(f"mlp's {what} {value!r} has no counterpart here (one of {sorted(names)})")
    dtype = np.dtype(coefs[0].dtype if dtype is None else dtype)
    widths = [coefs[0].shape[0], *(c.shape[1] for c in coefs)]
    acts = [get_activation(names[mlp.activation])] * (len(coefs) - 1) + [get_activation(names[mlp.out_activation_])]
    network = LiftedNetwork(widths, acts, dtype=dtype, **network_params)
    network.set_parameters([np.asarray(c, dtype).T for c in coefs], [np.asarray(b, dtype) for b in intercepts])
    return network


def to_torch(model):
    """The forward pass of ``model`` as a PyTorch module with the same parameters (copies).

    Parameters
    ----------
    model : LiftedNetwork or fitted estimator
        As for :func:`to_onnx`: Dense, Conv2d, AvgPooled and Residual layers, every activation.

    Returns
    -------
    torch.nn.Module
        A ``torch.nn.Sequential`` of (product, activation) pairs when every layer reads the layer
        before it: ``torch.nn.Linear`` per dense layer; a convolution is a ``torch.nn.Conv2d`` inside
        a ``FlatConv2d``, a pooled layer a ``FlatAvgPool2d`` before its operator (both take and give
        the library's flat NHWC rows, so the module is called with what
        :meth:`~bregman_solvers.LiftedNetwork.forward` takes); otherwise (residual blocks) a
        ``LiftedModule`` whose layer ``l`` reads its sources. In the network's dtype (float32 or
        float64), in training mode as every new module (no layer depends on the mode). The
        activations are PyTorch's (``nn.ReLU``, ``nn.LeakyReLU``, ``nn.ELU``, ``nn.Softshrink``,
        ``nn.Hardtanh``, ``nn.Tanh``, ``nn.Sigmoid``, ``nn.Softmax(dim=1)``, ``nn.Identity``) and
        ``ShiftedReLU`` for ``nonneg_soft_threshold``. A classifier's scores come out; its labels
        are ``estimator.classes_[scores.argmax(1)]``.
    """
    _torch = _import_torch()
    import torch

    network = _network_of(model)[0]
    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[network.dtype]
    products, activations = [], []
    for l, (op, act) in enumerate(zip(network.layers, network.activations)):
        where = f"layer {l + 1}"
        products.append(_torch.module_of(op, np.asarray(network.weights[l]), np.asarray(network.biases[l]),
                                         network.dtype, where))
        activations.append(_torch.activation_module(act))
    if all(op.sources == (1,) for op in network.layers):
        return torch.nn.Sequential(*(m for pair in zip(products, activations) for m in pair)).to(dtype)
    return _torch.LiftedModule(products, activations, [op.sources for op in network.layers],
                               [op.get_config() for op in network.layers]).to(dtype)


def from_torch(module, input_shape=None, dtype=None, **network_params):
    """A PyTorch network as a :class:`~bregman_solvers.LiftedNetwork` with the same parameters.

    Each lifted layer is a product (``nn.Linear``, ``nn.Conv2d``) followed by at most one activation
    module (none: the identity); an ``nn.AvgPool2d`` is folded into the operator of the layer that
    reads the pooled image (:class:`~bregman_solvers.AvgPooled`), and ``nn.Flatten`` is free.
    Nested ``nn.Sequential`` s are read in order; a module written by :func:`to_torch` (residual
    blocks included) converts back exactly.

    Parameters
    ----------
    module : torch.nn.Sequential or a module of :func:`to_torch`
        Linear, Conv2d (one stride, symmetric zero padding, no groups or dilation), AvgPool2d
        (window = stride, no padding), Flatten, and the activations ReLU, LeakyReLU, ELU,
        Softshrink, Hardtanh(-1, 1), Tanh, Sigmoid, Softmax(dim=1), Identity. Anything else is
        refused with an error naming the module.
    input_shape : (int, int, int), optional
        ``(C, H, W)``, PyTorch's image shape, when the first layers are convolutions. The
        converted network reads the library's flat NHWC rows: an image batch ``images`` (N, C, H, W)
        becomes ``images.transpose(0, 2, 3, 1).reshape(N, -1)``; a ``Linear`` after ``Flatten``
        has its columns reordered from PyTorch's (C, H, W) order to the library's (H, W, C), so the
        two networks compute the same outputs.
    dtype : numpy dtype, optional
        Default: the dtype of the module's first parameter.
    **network_params
        Passed on to :class:`~bregman_solvers.LiftedNetwork` (``lambdas``, ``penalty``, ``n_threads``).
    """
    _torch = _import_torch()
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Sequential or a module of to_torch, got {type(module).__name__}")
    if input_shape is not None:
        shape = tuple(input_shape) if hasattr(input_shape, "__len__") else ()
        if len(shape) != 3 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in shape):
            raise ValueError(f"input_shape must be (C, H, W) of positive integers, got {input_shape!r}")
        input_shape = tuple(int(s) for s in shape)
    first = next(module.parameters(), None)
    if dtype is None:
        dtype = np.float64 if first is not None and first.dtype == torch.float64 else np.float32
    dtype = np.dtype(dtype)
    if isinstance(module, _torch.LiftedModule):
        layers, weights, biases, acts = _torch.read_lifted_module(module, dtype)
    elif isinstance(module, torch.nn.Sequential):
        layers, weights, biases, acts = _torch.read_sequential(module, input_shape, dtype)
    else:
        raise TypeError(f"module must be a torch.nn.Sequential or a module of to_torch, got {type(module).__name__}")
    network = LiftedNetwork(layers, acts, dtype=dtype, **network_params)
    network.set_parameters(weights, biases)
    return network
