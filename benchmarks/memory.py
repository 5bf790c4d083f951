"""Memory of an implicit-SGD fit: no growth across epochs, and the peak against the essentials.

Traces NumPy's allocations with tracemalloc (NumPy reports its buffers to it) over a
5-epoch fit and prints, per epoch, the memory held after the epoch (after a full
garbage collection, which also empties CPython's free lists: without it, the
tuples and floats parked there read as a slow growth that stops at about 140 KB),
and the peak of the whole fit against the essentials: the auxiliary variables of
all samples, the data (input and target) and the parameters.

    python benchmarks/memory.py                      # 5,000 samples, 784-784-784-784-10, float32
    python benchmarks/memory.py --n-samples 20000 --dtype float64
"""
import argparse
import gc
import tracemalloc

import numpy as np

import bregman_solvers as bs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    n = args.n_samples
    X = ((rng.random((n, 784)) - 0.5) * 0.5).astype(args.dtype)
    Y = np.eye(10, dtype=args.dtype)[rng.integers(0, 10, n)]
    net = bs.LiftedNetwork([784, 784, 784, 784, 10], ["relu"] * 3 + ["identity"], dtype=args.dtype,
                           random_state=0)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    state = net.init_state(X)
    held = []

    def after_epoch(result):
        gc.collect()
        held.append(tracemalloc.get_traced_memory()[0] - base)

    bs.ImplicitSGD(batch_size=100, inner_iterations=2, epochs=args.epochs, random_state=0, tau_theta=0.1,
                   tau_x=0.1, tau=1.0, track_energy=False, callback=after_epoch).fit(net, X, Y, state=state)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    itemsize = np.dtype(args.dtype).itemsize
    aux = sum(h.nbytes for h in state.hidden)
    data = X.nbytes + Y.nbytes
    params = sum(p.nbytes for p in net.weights + net.biases)
    essentials = aux + data + params
    mb = 1 / 2**20
    print(f"{n} samples, {args.dtype} ({itemsize} bytes); memory held after each epoch (MiB, beyond the data):")
    print("  " + "  ".join(f"{h * mb:.1f}" for h in held))
    print(f"growth from epoch 1 to {args.epochs}: {(held[-1] - held[0]) * mb:.3f} MiB")
    print(f"auxiliary variables {aux * mb:.1f} MiB + data {data * mb:.1f} MiB + parameters {params * mb:.1f} MiB "
          f"= {essentials * mb:.1f} MiB")
    print(f"peak during the fit (beyond the data, which existed before): {peak * mb:.1f} MiB "
          f"-> peak + data = {(peak + data) / essentials:.2f} x the essentials")


if __name__ == "__main__":
    main()
