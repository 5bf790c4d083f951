"""Average pooling folded into operators, residual blocks, the named architectures, the memory
estimate and image inputs of the estimator: kernels against NumPy, adjoint identities, finite
differences of the energy, every solver on a pooled residual network, bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import bregman_solvers as bs
import oracles
from bregman_solvers._kernels import _conv
from bregman_solvers.architectures import architecture
from bregman_solvers.estimators import LiftedBregmanClassifier

DTYPES = [np.float32, np.float64]


def reference_pool(images, shape, size):
    """Mean over non-overlapping windows, remainder dropped: (n, H//s, W//s, C) flat."""
    n = images.shape[0]
    h, w, c = shape
    ho, wo = h // size, w // size
    x = images.reshape(n, h, w, c)[:, :ho * size, :wo * size]
    return x.reshape(n, ho, size, wo, size, c).mean(axis=(2, 4)).reshape(n, -1)


pool_geometry = st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 3), st.integers(1, 4),
                          st.integers(1, 3)).filter(lambda g: g[3] <= min(g[0], g[1]))


@given(pool_geometry, st.sampled_from(DTYPES), st.integers(1, 2))
def test_avg_pool_against_numpy_and_its_adjoint(g, dtype, threads):
    h, w, c, size, n = g
    rng = np.random.default_rng(0)
    images = rng.standard_normal((n, h * w * c)).astype(dtype)
    pooled = np.empty((n, (h // size) * (w // size) * c), dtype)
    _conv.avg_pool(images, pooled, h, w, c, size, threads)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(pooled, reference_pool(images, (h, w, c), size), rtol=tol, atol=tol)
    y = rng.standard_normal(pooled.shape).astype(dtype)
    back = np.zeros_like(images)
    _conv.avg_pool_adjoint(y, back, h, w, c, size, 2.0, threads)
    lhs = 2.0 * float(np.sum(pooled * y, dtype=np.float64))
    assert lhs == pytest.approx(float(np.sum(images * back, dtype=np.float64)), rel=1e-4, abs=1e-4)


def test_pool_kernels_refuse_bad_shapes():
    with pytest.raises(ValueError, match="size must be between 1"):
        _conv.avg_pool(np.zeros((1, 9)), np.zeros((1, 1)), 3, 3, 1, 4)
    with pytest.raises(ValueError, match="pooled images must have shape"):
        _conv.avg_pool(np.zeros((1, 16)), np.zeros((1, 3)), 4, 4, 1, 2)
    with pytest.raises(ValueError, match="images must have 16 entries"):
        _conv.avg_pool_adjoint(np.zeros((1, 4)), np.zeros((1, 15)), 4, 4, 1, 2)


def pooled_conv():
    return bs.AvgPooled(bs.Conv2d((3, 4, 2), 3, 3, padding=1), 2, in_shape=(7, 8, 2))


def residual_ops():
    stem = bs.Conv2d((6, 6, 2), 4, 3, stride=2, padding=1)                        # 3x3x4
    return [bs.Residual(bs.Conv2d((3, 3, 4), 4, 3, padding=1)),                   # identity skip
            bs.Residual(bs.Conv2d((3, 3, 4), 5, 3, stride=2, padding=1), skip_shape=(3, 3, 4),
                        projection=True),                                         # 1x1 stride-2 projection
            bs.Residual(bs.Dense(8, 6), skip_shape=(5,), projection=True), stem]   # dense projection


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", [pooled_conv, lambda: bs.AvgPooled(bs.Dense(12, 5), 2, in_shape=(4, 6, 2)),
                                  *[(lambda i=i: residual_ops()[i]) for i in range(3)]])
def test_the_adjoint_identity_of_every_source(make, dtype):
    """<A x, y> = sum_j <x_j, A_j^T y>, and the weight gradient is the adjoint of W -> A(x; W)."""
    op = make()
    rng = np.random.default_rng(1)
    w = rng.standard_normal(op.weight_shape).astype(dtype)
    xs = tuple(rng.standard_normal((3, int(np.prod(s)))).astype(dtype) for s in op.in_shapes)
    y = rng.standard_normal((3, op.out_size)).astype(dtype)
    ax = np.empty_like(y)
    op.forward(xs, w, ax)
    rhs = 0.0
    for j, x in enumerate(xs):
        back = np.zeros_like(x)
        op.adjoint(y, w, j, back, 1.0)
        rhs += float(np.sum(x * back, dtype=np.float64))
    # the part linear in W: A(x; W) minus its W-free part (an identity skip)
    free = np.empty_like(y)
    op.forward(xs, np.zeros_like(w), free)
    g = np.empty_like(w)
    op.weight_gradient(y, xs, g, 1.0)
    rel = 1e-4 if dtype == np.float32 else 1e-10
    assert float(np.sum(ax * y, dtype=np.float64)) == pytest.approx(rhs, rel=rel, abs=1e-4)
    assert float(np.sum((ax - free) * y, dtype=np.float64)) == pytest.approx(
        float(np.sum(w * g, dtype=np.float64)), rel=rel, abs=1e-4)


def test_norm_bounds_hold():
    rng = np.random.default_rng(2)
    for op in [pooled_conv(), *residual_ops()[:3]]:
        w = rng.standard_normal(op.weight_shape)
        for j, shape in enumerate(op.in_shapes):
            bound, _ = op.norm_sq(w, j)
            worst = 0.0
            for _ in range(20):
                xs = [np.zeros((1, int(np.prod(s)))) for s in op.in_shapes]
                xs[j] = rng.standard_normal(xs[j].shape)
                z = np.empty((1, op.out_size))
                op.forward(tuple(xs), w, z)
                worst = max(worst, float(np.sum(z ** 2) / np.sum(xs[j] ** 2)))
            assert worst <= bound * 1.001


def small_network(dtype=np.float64, **kwargs):
    """A stem, a residual block, a pooled residual layer with a projection and a dense head on 6x6x2
    images."""
    layers = [bs.Conv2d((6, 6, 2), 4, 3, padding=1),
              bs.Conv2d((6, 6, 4), 4, 3, padding=1),
              bs.Residual(bs.Conv2d((6, 6, 4), 4, 3, padding=1)),
              bs.Residual(bs.AvgPooled(bs.Conv2d((3, 3, 4), 3, 1)), skip_shape=(6, 6, 4), projection=True),
              bs.Dense(27, 3)]
    return bs.LiftedNetwork(layers, ["relu"] * 4 + ["identity"], dtype=dtype, **kwargs)


def test_energy_gradients_of_pooled_and_residual_layers_match_finite_differences():
    rng = np.random.default_rng(3)
    net = small_network(random_state=0)
    X = rng.standard_normal((3, 72))
    Y = np.eye(3)[rng.integers(0, 3, 3)]
    state = net.init_state(X)
    for h in state.hidden:
        h += 0.2 * np.abs(rng.standard_normal(h.shape))
    oracles.assert_energy_gradients(net, X, Y, state, rng)


def images(n=240, seed=0, dtype=np.float32):
    """Three classes of 6x6x2 images: a bright square in one of three places, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    x = 0.3 * rng.standard_normal((n, 6, 6, 2))
    for i, c in enumerate(labels):
        x[i, 2 * c:2 * c + 2, 1:5] += 1.5
    return x.reshape(n, -1).astype(dtype), np.eye(3, dtype=dtype)[labels]


def shallow_network(dtype=np.float32, **kwargs):
    """A stem, a residual layer with a learned projection of the input and a pooled dense head."""
    layers = [bs.Conv2d((6, 6, 2), 4, 3, padding=1),
              bs.Residual(bs.Conv2d((6, 6, 4), 4, 3, padding=1), skip_shape=(6, 6, 2), projection=True),
              bs.AvgPooled(bs.Dense(36, 3), 2, in_shape=(6, 6, 4))]
    return bs.LiftedNetwork(layers, ["relu", "relu", "identity"], dtype=dtype, **kwargs)


@pytest.mark.parametrize("solver,make", [
    (bs.ImplicitSGD(epochs=6, random_state=0, tau_x=0.1), small_network),
    # stored auxiliary variables and no momentum (model averaging's Algorithm 1) collapse the
    # five-layer network to one class at this size (as ImplicitSGD(aux_start="stored",
    # momentum=0) does): the three-layer network learns
    (bs.ModelAveraging(epochs=6, random_state=0, tau_x=0.1, tau_theta="auto"), shallow_network),
    (bs.ProximalGradient(max_iter=60, tol=0), small_network),
    (bs.SGDBP(epochs=6, random_state=0, learning_rate=0.05), small_network),
    (bs.ImplicitSGDBP(epochs=6, random_state=0, learning_rate=0.05), small_network)],
    ids=lambda s: type(s).__name__ if not callable(s) or isinstance(s, type) else s.__name__)
def test_every_solver_trains_a_pooled_residual_network(solver, make):
    X, Y = images()
    net = make(np.float32, random_state=0)
    before = np.mean(net.predict(X).argmax(1) == Y.argmax(1))
    solver.fit(net, X, Y)
    after = np.mean(net.predict(X).argmax(1) == Y.argmax(1))
    assert np.isfinite(net.parameter_vector).all()
    assert after > max(before, 0.6), (before, after)


def test_bad_layers_name_the_argument():
    with pytest.raises(ValueError, match="an identity skip needs equal shapes"):
        bs.Residual(bs.Conv2d((6, 6, 4), 8, 3, padding=1), skip_shape=(6, 6, 4))
    with pytest.raises(ValueError, match="no 1x1 projection maps the skip"):
        bs.Residual(bs.Conv2d((6, 6, 4), 8, 3, padding=1), skip_shape=(5, 5, 4), projection=True)
    with pytest.raises(ValueError, match=r"AvgPooled: pooling \(6, 6, 4\) by 2 gives \(3, 3, 4\)"):
        bs.AvgPooled(bs.Conv2d((4, 4, 4), 2, 3), 2, in_shape=(6, 6, 4))
    with pytest.raises(ValueError, match="AvgPooled: in_shape .* is required"):
        bs.AvgPooled(bs.Dense(9, 2), 2)
    with pytest.raises(ValueError, match="AvgPooled: size must be a positive integer"):
        bs.AvgPooled(bs.Conv2d((3, 3, 1), 2, 3), 0)
    with pytest.raises(TypeError, match="Residual: projection must be True or False"):
        bs.Residual(bs.Dense(4, 4), projection="yes")
    with pytest.raises(TypeError, match="Residual: zero_init must be True or False"):
        bs.Residual(bs.Dense(4, 4), zero_init=1)
    with pytest.raises(ValueError, match=r"layer 3 .* reads layer 1's output of shape \(6, 6, 4\) as shape "
                                         r"\(6, 6, 3\)"):
        bs.LiftedNetwork([bs.Conv2d((6, 6, 1), 4, 3, padding=1), bs.Conv2d((6, 6, 4), 3, 3, padding=1),
                          bs.Residual(bs.Conv2d((6, 6, 3), 3, 3, padding=1), skip_shape=(6, 6, 3))], "relu")
    with pytest.raises(ValueError, match="architecture must be one of"):
        architecture("vgg", (28, 28, 1), 10)
    with pytest.raises(ValueError, match="'lenet5' needs image inputs"):
        architecture("lenet5", 784, 10)


def test_named_architectures_and_their_memory():
    lenet = bs.LiftedNetwork.from_architecture("lenet5", (28, 28, 1), 10, dtype="float32", random_state=0)
    assert lenet.widths == [784, 4704, 1600, 120, 84, 10]
    assert [w.shape for w in lenet.weights] == [(6, 5, 5, 1), (16, 5, 5, 6), (120, 400), (84, 120), (10, 84)]
    est = lenet.memory_estimate(60000, batch_size=100)
    assert est.auxiliary == 60000 * 6508 * 4 and est.total > est.auxiliary
    assert "1.56 GB (60,000 samples x 6,508 entries, float32)" in repr(est)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 0"):
        lenet.memory_estimate(-1)
    with pytest.raises(TypeError, match="batch_size must be a positive integer"):
        lenet.memory_estimate(10, batch_size=2.5)
    resnet = bs.LiftedNetwork.from_architecture("resnet", (28, 28, 1), 10, random_state=0)
    assert resnet.widths == [784] + [3136] * 3 + [10] and not resnet.weights[2].any()     # zero-init branch
    assert [op.sources for op in resnet.layers].count((1, 2)) == 1
    deeper = bs.LiftedNetwork.from_architecture("resnet", (28, 28, 1), 10, blocks=3, random_state=0)
    assert deeper.widths == [784] + [3136] * 7 + [10]
    mlp = bs.LiftedNetwork.from_architecture("mlp", 20, 3, hidden=[7], output_activation="softmax")
    assert mlp.widths == [20, 7, 3] and mlp.compiled and mlp.activations[-1].name == "softmax"


def test_a_checkpoint_keeps_pooled_and_residual_layers(tmp_path):
    net = bs.LiftedNetwork.from_architecture("resnet", (8, 8, 1), 3, blocks=2, dtype="float32", random_state=0)
    back = bs.load(bs.save(tmp_path / "resnet", net)).network
    assert back.layers == net.layers
    np.testing.assert_array_equal(back.parameter_vector, net.parameter_vector)


def test_auxiliary_variables_on_disk_and_a_fit_that_cannot_fit(tmp_path, monkeypatch):
    net = small_network(random_state=0)
    X, _ = images(30, dtype=np.float64)
    on_disk = net.init_state(X, directory=str(tmp_path))
    in_memory = net.init_state(X)
    assert all(isinstance(h, np.memmap) for h in on_disk.hidden)
    for a, b in zip(on_disk.hidden, in_memory.hidden):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="directory must be an existing folder"):
        net.init_state(X, directory=str(tmp_path / "missing"))
    from bregman_solvers.solvers import _base
    monkeypatch.setattr(_base, "available_memory", lambda: 1000)
    with pytest.raises(MemoryError, match=r"auxiliary variables of 30 samples need 110.16 kB \(459 entries a "
                                          r"sample, float64\), more than 80% of the 1.00 kB .*init_state\(X0, dir"):
        bs.ImplicitSGD(epochs=1).fit(net, X, np.eye(3)[np.zeros(30, int)])


def test_the_classifier_takes_images_and_architectures():
    X, Y = images(240)
    y = Y.argmax(1)
    clf = LiftedBregmanClassifier(layers=[bs.Conv2d((6, 6, 2), 4, 3, padding=1),
                                             bs.AvgPooled(bs.Dense(36, 3), 2, in_shape=(6, 6, 4))],
                                     epochs=5, tau_x=0.1, random_state=0)
    clf.fit(X.reshape(-1, 6, 6, 2), y)
    assert clf.image_shape_ == (6, 6, 2) and clf.network_.layers[0] == clf.layers[0]
    assert clf.score(X.reshape(-1, 6, 6, 2), y) > 0.8
    np.testing.assert_array_equal(clf.predict(X), clf.predict(X.reshape(-1, 6, 6, 2)))
    with pytest.raises(ValueError, match="X holds images of shape"):
        clf.predict(X.reshape(-1, 6, 12, 1))
    named = LiftedBregmanClassifier(layers="resnet", image_shape=(6, 6, 2), epochs=1, random_state=0,
                                       tau_x=0.1).fit(X, y)
    assert named.network_.widths[1] == 3 * 3 * 16
    with pytest.raises(ValueError, match="layers='lenet5' needs images: give image_shape"):
        LiftedBregmanClassifier(layers="lenet5").fit(X, y)
    with pytest.raises(ValueError, match="image_shape must be"):
        LiftedBregmanClassifier(layers="lenet5", image_shape=(6, 0)).fit(X, y)
    with pytest.raises(ValueError, match=r"image_shape \(5, 5, 2\) holds 50 entries, X has 72 features"):
        LiftedBregmanClassifier(layers="resnet", image_shape=(5, 5, 2)).fit(X, y)
    with pytest.raises(ValueError, match="the last writes 4 outputs"):
        LiftedBregmanClassifier(layers=[bs.Dense(72, 4)]).fit(X, y)


def test_lenet5_learns_mnist(seed=0):
    """LeNet-5 on 1,000 embedded MNIST images, 2 epochs of implicit SGD: well above chance."""
    from bregman_solvers.datasets import load_mnist, one_hot, preprocess

    X, y = load_mnist(None, "train")
    X, Xt, _ = preprocess(X[:1000], X[1000:1500], dtype=np.float32)
    net = bs.LiftedNetwork.from_architecture("lenet5", (28, 28, 1), 10, dtype="float32", random_state=seed)
    bs.ImplicitSGD(epochs=2, random_state=seed, tau_x=0.1).fit(net, X, one_hot(y[:1000], 10, "float32"))
    assert np.mean(net.predict(Xt).argmax(1) == y[1000:1500]) > 0.5


def test_a_pooled_residual_network_trains_on_dask_shards_on_disk(tmp_path):
    """The shards hold image-shaped auxiliary variables (memory-mapped here): one shard is ImplicitSGD
    exactly, two shards learn."""
    distributed = pytest.importorskip("distributed")
    from bregman_solvers.distributed import DistributedImplicitSGD

    X, Y = images(240)
    fast = dict(batch_size=40, inner_iterations=5, epochs=4, random_state=0, n_threads=1, tau_x=0.1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster) as client:
        alone, one, two = (shallow_network(random_state=0) for _ in range(3))
        before = np.mean(two.predict(X).argmax(1) == Y.argmax(1))
        bs.ImplicitSGD(**fast).fit(alone, X, Y)
        DistributedImplicitSGD(n_workers=1, client=client, aux_storage="memmap", aux_dir=str(tmp_path),
                               **fast).fit(one, X, Y)
        DistributedImplicitSGD(n_workers=2, client=client, **fast).fit(two, X, Y)
    np.testing.assert_array_equal(one.parameter_vector, alone.parameter_vector)
    assert np.mean(two.predict(X).argmax(1) == Y.argmax(1)) > max(0.6, before)


def test_the_lifted_cnn_example_runs(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "lifted_cnn.py"
    spec = importlib.util.spec_from_file_location("lifted_cnn", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["--epochs", "1", "--n-train", "200", "--n-test", "100"])
    out = capsys.readouterr().out
    assert "auxiliary variables 5.21 MB (200 samples x 6,508 entries, float32)" in out and "epoch 1: test" in out


def test_the_engine_reuses_patches_only_for_the_inputs_they_came_from():
    """The parameter step reads the patch matrices its evaluate formed; after an x-step (or a
    restore) they are formed again: the engine's gradients equal the network's, computed afresh."""
    from bregman_solvers.solvers._engine import StepEngine

    X, Y = images(50, dtype=np.float64)
    net = small_network(random_state=0)
    state = net.init_state(X)
    engine = StepEngine(net, X, Y, state)
    tau_x = np.full(net.n_layers - 1, 0.3)
    for step in range(3):
        engine.evaluate(tau_x)
        engine.theta_gradients()
        expected, _, _ = net.gradients(X, Y, state)
        for got, want in zip(engine.ws.grad_w, expected):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
        engine.apply_x(tau_x)                         # moves every auxiliary variable
        assert all(not cache for cache in engine._caches)
    snap = engine.snapshot()
    engine.evaluate()
    assert engine._caches[1]["patches"] is not None
    engine.restore(snap)
    assert all(not cache for cache in engine._caches)
