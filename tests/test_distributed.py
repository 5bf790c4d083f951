"""The Dask back end: data-parallel implicit SGD on a LocalCluster, a scheduler started by hand,
dask.array inputs, a worker killed mid-training, memory-mapped auxiliary variables."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import bregman_solvers as bs
from bregman_solvers.distributed import DistributedImplicitSGD, ShardTrainer

distributed = pytest.importorskip("distributed", reason='the Dask back end needs the extra '
                                  '"bregman_solvers[distributed]" (dask.distributed)')
da = pytest.importorskip("dask.array")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTHS = [20, 16, 16, 5]
FAST = dict(batch_size=25, inner_iterations=3, epochs=3, random_state=3, n_threads=1)
#: The even split of the 400 samples whatever their batches (the default overlaps shards this small)
SPLIT = dict(min_shard_batches=None)


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes on localhost, shared by the tests of this module."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, 20)) * 2
    labels = rng.integers(0, 5, 400)
    X = (0.25 * (centres[labels] + rng.standard_normal((400, 20)))).astype(np.float32)
    return X, np.eye(5, dtype=np.float32)[labels]


def net():
    return bs.LiftedNetwork(WIDTHS, ["relu", "relu", "identity"], dtype="float32", random_state=0)


def accuracy(network, X, Y):
    return float(np.mean(network.forward(X).argmax(1) == Y.argmax(1)))


def test_one_worker_is_implicit_sgd_exactly(client, data):
    """One shard, one round per epoch: the same batches, steps and parameters as ImplicitSGD."""
    X, Y = data
    a, b = net(), net()
    ra = bs.ImplicitSGD(**FAST).fit(a, X, Y)
    rb = DistributedImplicitSGD(n_workers=1, client=client, **FAST).fit(b, X, Y)
    np.testing.assert_array_equal(a.parameter_vector, b.parameter_vector)
    assert rb.history["batch_energy"] == ra.history["batch_energy"]
    assert rb.history["shards"] == [1, 1, 1] and rb.history["rounds"] == [1, 1, 1]
    assert rb.history["bytes_per_round"][0] == 2 * a.parameter_vector.nbytes
    # the workers split their products as this process does (a Dask worker's own default would be 1 block)
    blocks = client.run(lambda: __import__("bregman_solvers")._runtime.SETTINGS.product_blocks)
    assert bs._runtime.SETTINGS.product_blocks in blocks.values()         # the worker that ran the shard


def test_one_worker_grows_the_penalties_as_implicit_sgd(client, data):
    """penalty_growth reaches the shards (their network copies take each epoch's weights); the
    driver's network keeps its own and the history has the factor."""
    X, Y = data
    a, b = net(), net()
    bs.ImplicitSGD(penalty_growth=1.0, **FAST).fit(a, X, Y)
    rb = DistributedImplicitSGD(n_workers=1, client=client, penalty_growth=1.0, **FAST).fit(b, X, Y)
    np.testing.assert_array_equal(a.parameter_vector, b.parameter_vector)
    assert rb.history["penalty_factor"] == [1.0, 2.0, 3.0] and b.lambdas == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("settings, expected", [
    (dict(), 20), (dict(averaging="batch"), "epoch"), (dict(sync_every=10), 10),
    (dict(sync_every="epoch"), "epoch"), (dict(averaging="batch", sync_every=3), 3)])
def test_sync_every_defaults_to_20_batches_and_to_the_epoch_for_eq_23(settings, expected):
    """The default averages every DEFAULT_SYNC_EVERY batches (full MNIST, 2 workers, seeds 0-3: 0.48
    points below one process on average, where every 60 batches was 0.75); the model averaging of
    eq. 23 averages once per epoch. The estimators and the CLI pass None through."""
    from bregman_solvers import distributed as dist
    from bregman_solvers.estimators import LiftedBregmanClassifier, SparseAutoencoder

    assert dist.DEFAULT_SYNC_EVERY == 20
    assert DistributedImplicitSGD(**settings)._sync_every() == expected
    assert LiftedBregmanClassifier().sync_every is None and SparseAutoencoder().sync_every is None


def test_model_averaging_on_the_cluster_is_eq_23(client, data):
    """averaging="batch" with one averaging per epoch: every batch from theta^k, theta^{k+1} their mean."""
    X, Y = data
    a, b = net(), net()
    bs.ModelAveraging(**FAST).fit(a, X, Y)
    # ModelAveraging's batches start from the stored variables, with its fixed default step
    DistributedImplicitSGD(n_workers=1, averaging="batch", client=client, aux_start="stored", tau_theta=0.5,
                           **FAST).fit(b, X, Y)
    np.testing.assert_allclose(a.parameter_vector, b.parameter_vector, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sync_every, velocity", [("epoch", "restart"), (2, "restart"), (2, "average")])
def test_two_workers_learn_and_are_reproducible(client, data, sync_every, velocity):
    X, Y = data
    before = accuracy(net(), X, Y)
    fits = []
    for _ in range(2):
        network = net()
        result = DistributedImplicitSGD(n_workers=2, sync_every=sync_every, client=client, velocity=velocity,
                                        **SPLIT, **FAST).fit(network, X, Y)
        fits.append((network.parameter_vector.copy(), result))
    np.testing.assert_array_equal(fits[0][0], fits[1][0])        # same seed and workers: same fit
    history = fits[0][1].history
    # two shards of 200 samples: 8 batches of 25 each per epoch, in rounds of sync_every
    assert history["rounds"] == [1 if sync_every == "epoch" else 4] * 3
    # through the driver: theta out and its average in; the averaged velocity's theta^{k-1} as much again
    theta_bytes = net().parameter_vector.nbytes
    assert history["bytes_per_round"] == [2 * theta_bytes * (2 if velocity == "average" else 1)] * 3
    assert history["worker_losses"] == [0, 0, 0] and fits[0][1].events == []
    assert history["batch_energy"][-1] < history["batch_energy"][0]
    trained = net()
    trained.parameter_vector[:] = fits[0][0]
    assert accuracy(trained, X, Y) > max(0.8, before + 0.3)


def test_the_bytes_through_the_driver_do_not_grow_with_the_shards(client, data):
    """The shards' parameters are averaged on the workers (a tree of pairwise sums): the driver sends
    theta once and fetches the average once per round, with 1, 2 or 4 shards; what the workers send
    each other grows with the shards instead."""
    X, Y = data
    theta_bytes = net().parameter_vector.nbytes
    driver, workers = {}, {}
    for n in (1, 2, 4):
        h = DistributedImplicitSGD(n_workers=n, sync_every=2, client=client, **SPLIT, **FAST).fit(net(), X, Y).history
        driver[n], workers[n] = set(h["bytes_per_round"]), h["worker_bytes_per_round"][0]
    assert driver == {1: {2 * theta_bytes}, 2: {2 * theta_bytes}, 4: {2 * theta_bytes}}
    assert workers[1] < workers[2] < workers[4]


@pytest.mark.parametrize("n, shards, batch, minimum", [
    (400, 2, 25, None), (400, 2, 25, 50), (400, 2, 25, 12), (400, 3, 25, 5), (1001, 4, 100, 3), (7, 7, 1, 2),
    (60000, 16, 100, 50), (5, 1, 100, 50)])
def test_shards_split_evenly_or_overlap_to_hold_their_batches(n, shards, batch, minimum):
    """shard_rows: an even split of a seeded permutation while every part holds ``minimum`` batches;
    otherwise windows of min(n, minimum * batch) samples that overlap and cover every sample; each
    shard's rows sorted; the same rows for the same seed; one shard is every row in order."""
    from bregman_solvers.distributed._shards import shard_rows

    parts = shard_rows(n, shards, 3, batch, minimum)
    assert len(parts) == shards and all(np.array_equal(p, np.sort(p)) for p in parts)
    assert all(len(np.unique(p)) == len(p) for p in parts)
    assert np.array_equal(np.unique(np.concatenate(parts)), np.arange(n))           # every sample in one
    even = minimum is None or n // shards >= minimum * batch
    if even:
        assert sum(len(p) for p in parts) == n and max(map(len, parts)) - min(map(len, parts)) <= 1
    else:
        assert {len(p) for p in parts} == {min(n, minimum * batch)}
    assert all(np.array_equal(a, b) for a, b in zip(parts, shard_rows(n, shards, 3, batch, minimum)))
    if shards == 1:
        assert np.array_equal(parts[0], np.arange(n))


def test_small_data_shards_overlap_by_default(client, data):
    """400 samples in batches of 25 are 8 batches per shard of an even split: fewer than the default
    50, so each of the two shards holds all 400 (16 batches an epoch, 8 rounds of 2); with
    min_shard_batches=12 each holds 300 (6 rounds); None keeps the even split (4 rounds)."""
    from bregman_solvers import distributed as dist

    assert dist.DEFAULT_MIN_SHARD_BATCHES == 50 and DistributedImplicitSGD().min_shard_batches == 50
    X, Y = data
    rounds = {}
    for minimum in (50, 12, None):
        network = net()
        h = DistributedImplicitSGD(n_workers=2, sync_every=2, client=client, min_shard_batches=minimum,
                                   **FAST).fit(network, X, Y).history
        rounds[minimum] = h["rounds"][0], h["shard_samples"][0]
        assert accuracy(network, X, Y) > 0.8
    assert rounds == {50: (8, 400), 12: (6, 300), None: (4, 200)}


def test_the_tree_average_is_the_shard_order_sum_to_rounding():
    """pairwise adds neighbours first in a fixed tree; with up to three shards it is the sequential
    sum of the driver-side average it replaced, bit for bit; beyond, equal to rounding."""
    from bregman_solvers.distributed._reduce import _added, _leaf, _mean, pairwise
    from bregman_solvers.solvers._averages import ParameterAverage

    assert pairwise([1], None) == 1
    assert pairwise(list("abcdef"), lambda a, b: f"({a}{b})") == "(((ab)(cd))(ef))"
    with pytest.raises(ValueError, match="at least one"):
        pairwise([], None)
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 4, 7):
        thetas = [rng.standard_normal(1000).astype(np.float32) for _ in range(n)]
        weights = [int(w) for w in rng.integers(1, 300, n)]
        sequential = ParameterAverage(1000)
        for theta, w in zip(thetas, weights):
            sequential.add(theta, w)
        tree = _mean(pairwise([_leaf({"theta": t}, "theta", w) for t, w in zip(thetas, weights)], _added),
                     np.float32)
        expected = sequential.mean().astype(np.float32)
        if n <= 3:
            np.testing.assert_array_equal(tree, expected)
        else:
            np.testing.assert_allclose(tree, expected, rtol=1e-6)


def test_validation_energy_and_code_sparsity_come_from_the_workers(client, data):
    X, Y = data
    network = net()
    result = DistributedImplicitSGD(n_workers=2, client=client, track_energy=True, code_layer=1,
                                    validation_data=(X[:50], Y[:50]), **FAST).fit(network, X, Y)
    h = result.history
    assert len(h["energy"]) == 3 and len(h["per_layer"][0]) == 3 and h["energy"][-1] < h["energy"][0]
    assert all(0 <= s <= 1 for s in h["lifted_code_sparsity"]) and len(h["val_accuracy"]) == 3
    # the workers' energy is the full-data energy of their auxiliary variables: at most the
    # energy of a fresh forward-pass state plus the Bregman terms, and finite
    assert np.isfinite(h["energy"]).all()


def test_dask_arrays_train_where_their_chunks_are(client, data):
    X, Y = data
    Xd, Yd = client.persist([da.from_array(X, chunks=(100, 20)), da.from_array(Y, chunks=(100, 5))])
    distributed.wait([Xd, Yd])
    held = {w for holders in client.who_has(distributed.futures_of(Xd)).values() for w in holders}
    network = net()
    result = DistributedImplicitSGD(client=client, **FAST).fit(network, Xd, Yd)
    assert result.history["shards"][0] == len(held) >= 1      # one shard per worker holding chunks
    assert accuracy(network, X, Y) > 0.8


def test_memory_mapped_auxiliary_variables_give_the_same_fit(tmp_path, data):
    """ShardTrainer in-process: the state in .npy memmaps under aux_dir, removed by close()."""
    X, Y = data
    results = []
    for storage in ("memory", "memmap"):
        network = net()
        solver = bs.ImplicitSGD(batch_size=25, inner_iterations=3)
        shard = ShardTrainer(network, X, Y, solver, seed=3, aux_storage=storage, aux_dir=str(tmp_path))
        theta = network.parameter_vector.copy()
        for epoch in range(2):
            theta = shard.run_round(theta, epoch, 0, shard.n_batches())["theta"]
        if storage == "memmap":
            assert isinstance(shard.state.hidden[0], np.memmap) and len(os.listdir(tmp_path)) == 1
        shard.close()
        results.append(theta)
    assert os.listdir(tmp_path) == []
    np.testing.assert_array_equal(*results)


def test_a_round_from_an_averaged_theta_starts_without_velocity(data):
    """Momentum on a shard: a round restarts the velocity unless told to keep it (the only shard),
    so two epoch-long rounds of one shard equal one two-epoch ImplicitSGD fit only with keep_velocity.
    Carried over the averaging instead, the velocity diverged (400 samples, 2 shards, 6 epochs:
    training loss 1e9)."""
    X, Y = data
    thetas = {}
    for keep in (True, False):
        network = net()
        shard = ShardTrainer(network, X, Y, bs.ImplicitSGD(batch_size=25, inner_iterations=3, momentum=0.7), seed=3)
        theta = network.parameter_vector.copy()
        for epoch in range(2):
            theta = shard.run_round(theta, epoch, 0, shard.n_batches(), keep_velocity=keep)["theta"]
        thetas[keep] = theta
    single = net()
    bs.ImplicitSGD(batch_size=25, inner_iterations=3, momentum=0.7, epochs=2, random_state=3).fit(single, X, Y)
    np.testing.assert_array_equal(thetas[True], single.parameter_vector)
    assert not np.array_equal(thetas[False], single.parameter_vector)


def test_a_round_given_the_averaged_previous_parameters_goes_on_with_their_velocity(data):
    """``previous`` sets the velocity a round starts with: given a shard's own theta^{k-1}, the round
    equals the one that kept the shard's velocity; without it, the round restarts (and differs)."""
    X, Y = data
    solver = bs.ImplicitSGD(batch_size=25, inner_iterations=3, momentum=0.7)
    shards = [ShardTrainer(net(), X, Y, solver, seed=3) for _ in range(3)]
    theta = net().parameter_vector.copy()
    first = [shard.run_round(theta, 0, 0, 4, return_previous=True) for shard in shards]
    for res in first:
        np.testing.assert_array_equal(res["theta"], first[0]["theta"])
    assert first[0]["previous"] is not None and not np.array_equal(first[0]["previous"], first[0]["theta"])
    theta1, previous = first[0]["theta"], first[0]["previous"]
    kept = shards[0].run_round(theta1, 0, 4, 8, keep_velocity=True)["theta"]
    given = shards[1].run_round(theta1, 0, 4, 8, previous=previous.astype(np.float64))["theta"]
    restarted = shards[2].run_round(theta1, 0, 4, 8)["theta"]
    np.testing.assert_array_equal(given, kept)
    assert not np.array_equal(restarted, kept)
    # without momentum there is no velocity to return
    plain = ShardTrainer(net(), X, Y, bs.ImplicitSGD(batch_size=25, inner_iterations=3, momentum=0.0), seed=3)
    assert plain.run_round(theta, 0, 0, 4, return_previous=True)["previous"] is None


def test_a_lost_worker_costs_one_round_and_no_exception(data):
    """A worker killed between rounds: its shard moves to a live worker, the fit goes on and records it."""
    X, Y = data
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", silence_logs=50) as cluster, \
            distributed.Client(cluster) as c:
        pids = c.run(os.getpid)

        def kill_one(result):
            if result.epoch == 1:
                os.kill(pids[sorted(pids)[0]], 9)
                time.sleep(1.0)
            return False

        network = net()
        result = DistributedImplicitSGD(client=c, sync_every=4, callback=kill_one, **FAST).fit(network, X, Y)
    h = result.history
    assert sum(h["worker_losses"]) == 1 and h["worker_losses"][0] == 0
    assert len(result.events) == 1 and result.events[0]["epoch"] == 2 and "lost" in result.events[0]["error"]
    assert h["epoch"] == [1, 2, 3] and np.all(np.isfinite(network.parameter_vector))
    assert accuracy(network, X, Y) > 0.8


def test_a_worker_lost_during_the_averaging_costs_its_shards_contribution(data, monkeypatch):
    """A worker killed after a round's shards finished, as the average of their results is formed
    on the workers: its shard's result is gone with it, so that shard is re-created on a live
    worker, the average is taken over the results left, and the fit finishes."""
    from bregman_solvers.distributed import _driver

    X, Y = data
    real = _driver.average_on_workers
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", silence_logs=50) as cluster, \
            distributed.Client(cluster) as c:
        pids = c.run(os.getpid)
        calls = []

        def killing_first(client, results, weights, key, dtype):
            calls.append(len(results))
            if len(calls) == 3:                  # the second epoch's first averaging (two rounds an epoch)
                os.kill(pids[sorted(pids)[0]], 9)
                time.sleep(1.0)
            return real(client, results, weights, key, dtype)

        monkeypatch.setattr(_driver, "average_on_workers", killing_first)
        network = net()
        result = DistributedImplicitSGD(client=c, sync_every=4, **SPLIT, **FAST).fit(network, X, Y)
    h = result.history
    assert calls[:3] == [2, 2, 2] and calls[3] == 1       # the retry averages the one result left
    assert h["worker_losses"] == [0, 1, 0] and h["epoch"] == [1, 2, 3]
    assert len(result.events) == 1 and result.events[0]["epoch"] == 2
    assert np.all(np.isfinite(network.parameter_vector)) and accuracy(network, X, Y) > 0.8


def test_a_scheduler_and_workers_started_by_hand(tmp_path, data):
    """The address path: `dask scheduler` and two `dask worker` processes, then scheduler=address."""
    X, Y = data
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    file = tmp_path / "scheduler.json"
    # the `dask` command of this interpreter's environment
    dask = [sys.executable, "-c", "import sys; from dask.cli import run_cli; sys.argv[0] = 'dask'; run_cli()"]
    procs = [subprocess.Popen(dask + ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(file)], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(300):
            if file.exists() and file.read_text().strip():
                break
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen(dask + ["worker", address, "--nthreads", "1", "--no-dashboard",
                                                  "--host", "127.0.0.1"], env=env, cwd=REPO,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(address) as c:
            c.wait_for_workers(2, timeout=60)
        network = net()
        result = DistributedImplicitSGD(scheduler=address, **FAST).fit(network, X, Y)
        assert result.history["shards"] == [2, 2, 2] and accuracy(network, X, Y) > 0.8
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_a_local_cluster_starts_and_stops_for_the_fit(data):
    X, Y = data
    network = net()
    result = DistributedImplicitSGD(n_workers=2, threads_per_worker=1, **FAST).fit(network, X, Y)
    assert result.history["shards"] == [2, 2, 2] and accuracy(network, X, Y) > 0.8


@pytest.mark.parametrize("setting, error", [
    (dict(n_workers=0), ValueError), (dict(n_workers=1.5), TypeError), (dict(sync_every="often"), ValueError),
    (dict(sync_every=0), ValueError), (dict(averaging="median"), ValueError), (dict(aux_storage="disk"), ValueError),
    (dict(velocity="keep"), ValueError), (dict(min_shard_batches=0), ValueError),
    (dict(min_shard_batches="few"), TypeError),
    (dict(scheduler=8786), TypeError), (dict(threads_per_worker=0), ValueError),
    (dict(regulariser=bs.regularisers.BregmanIteration(bs.regularisers.L1(0.1))), ValueError),
])
def test_bad_settings_are_refused_before_a_cluster_starts(data, setting, error):
    X, Y = data
    name = next(iter(setting))
    with pytest.raises(error, match=name if name != "regulariser" else "BregmanIteration"):
        DistributedImplicitSGD(**setting).fit(net(), X, Y)


def test_bad_data_are_refused_before_a_cluster_starts(data):
    X, Y = data
    with pytest.raises(ValueError, match="NaN"):
        DistributedImplicitSGD(n_workers=2).fit(net(), np.full_like(X, np.nan), Y)
    with pytest.raises(ValueError, match="n_workers"):
        DistributedImplicitSGD(n_workers=5).fit(net(), X[:3], Y[:3])


def test_without_dask_the_error_says_what_to_install(monkeypatch, data):
    X, Y = data
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"bregman_solvers\[distributed\]"):
        DistributedImplicitSGD(n_workers=2).fit(net(), X, Y)


def test_the_estimators_take_the_dask_back_end(client, data):
    from bregman_solvers.estimators import LiftedBregmanClassifier, SparseAutoencoder

    X, Y = data
    y = Y.argmax(1)
    clf = LiftedBregmanClassifier(hidden_layer_sizes=(16,), epochs=2, batch_size=25, inner_iterations=3,
                                  random_state=0, n_workers=2, sync_every=4, track_metrics=True,
                                  scheduler=client.scheduler.address)
    clf.fit(X, y)
    # 16 batches of 25: too few to split (the default 50 per shard), so each shard holds all 16
    assert clf.history_["shards"] == [2, 2] and clf.history_["rounds"] == [4, 4]
    assert clf.score(X, y) > 0.8 and clf.history_["train_accuracy"][-1] > 0.8 and len(clf.history_["energy"]) == 2
    # the estimator hands min_shard_batches on (its name is in the driver's signature): None splits evenly
    clf.set_params(min_shard_batches=None, epochs=1).fit(X, y)
    assert clf.history_["rounds"] == [2] and clf.history_["shard_samples"] == [200]
    ae = SparseAutoencoder(hidden_layer_sizes=(16, 8, 16), epochs=1, batch_size=25, inner_iterations=2,
                           random_state=0, scheduler=client.scheduler.address).fit(X)
    assert ae.history_["shards"] == [2] and np.isfinite(ae.score(X))
    with pytest.raises(ValueError, match="n_workers and scheduler"):
        LiftedBregmanClassifier(solver="sgd-bp", n_workers=2).fit(X, y)


def test_the_command_line_takes_the_dask_back_end(client, tmp_path):
    from bregman_solvers.cli import main

    argv = ["classify", "--n-train", "400", "--n-test", "100", "--epochs", "1", "--hidden", "16", "--quiet",
            "--scheduler", client.scheduler.address, "--sync-every", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    lbn = results["history"]["lifted Bregman network (LBN, library defaults)"]
    # 400 samples are 4 batches of 100: fewer than 50 per shard, so both shards hold all 4, 1 per round
    assert lbn["shards"] == [2] and lbn["rounds"] == [4] and lbn["shard_samples"] == [400]
    assert "shards" not in results["history"]["SGD-BP"]            # the baseline stays in-process
    assert results["settings"]["scheduler"] == client.scheduler.address


def test_a_lost_worker_is_recognised_by_type_never_by_message():
    distributed = pytest.importorskip("distributed")
    from distributed.comm import CommClosedError

    from bregman_solvers.distributed import ShardLost
    from bregman_solvers.distributed._cluster import lost_worker_error

    assert lost_worker_error(ShardLost("gone")) and lost_worker_error(CommClosedError("closed"))
    assert lost_worker_error(distributed.KilledWorker("task", "worker", 3))
    # an actor's lost worker is a plain RuntimeError: the driver asks the scheduler instead
    assert not lost_worker_error(RuntimeError("Worker holding Actor was lost"))
    assert not lost_worker_error(OSError("No space left on device"))     # a shard's own failure


def test_ctrl_c_in_a_terminal_stops_a_dask_fit_at_a_round_in_one_line(tmp_path):
    """A terminal's Ctrl-C reaches the whole foreground process group: the command and the local
    cluster's worker processes. The workers ignore it (they would die mid-round with a traceback each);
    the driver stops at the end of the current round: exit 130, one line on stderr, results marked
    interrupted."""
    import signal

    command = [sys.executable, "-m", "bregman_solvers", "classify", "--workers", "2", "--n-train", "2000",
               "--n-test", "200", "--quiet", "--hidden", "128", "128", "--epochs", "30", "--sync-every", "2",
               "--checkpoint-every", "1", "--out", str(tmp_path / "run")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(bs.__file__)),
                                                                      os.environ.get("PYTHONPATH")])))
    # a process group of its own, as a terminal's foreground job
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               cwd=tmp_path, start_new_session=True)
    assert process.stdout.readline().startswith("training lifted Bregman network")
    deadline = time.monotonic() + 240
    while not (tmp_path / "run" / "checkpoint-lbn.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)                         # the cluster up, an epoch done, rounds running
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, (out, err)
    assert err.count("\n") == 1 and "Traceback" not in err and "interrupted: kept lifted Bregman network" in err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["interrupted"]["not_trained"] == ["SGD-BP"]
    assert results["table1"]["lifted Bregman network (LBN, library defaults)"]["epochs_completed"] >= 1
