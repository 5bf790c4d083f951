"""``bregman-solvers figures``: the paper's Figures 1 and 2, drawn from the library's own kernels.

Figure 1 (Section 3, Example 1): the proximal activations ReLU, soft thresholding, the hyperbolic
tangent and softmax (its first output for the input ``(z, 0)``). Figure 2 (Example 2): each one's
Bregman loss ``B(x, z)`` (eq. 12) as a function of ``z`` for a fixed target ``x``, against the
squared error ``0.5 |x - sigma(z)|^2``, which it bounds from above (Theorem 10; MATH.md, "The
Bregman loss"). The paper's figures are lost with its images; the targets and ranges here are ours.
"""
import os

import numpy as np

from .activations import get_activation

#: (label, activation, keyword parameters, fixed target x for Figure 2)
PANELS = [("ReLU", "relu", {}, 0.5), ("soft thresholding (alpha = 1)", "soft_threshold", {"alpha": 1.0}, 0.5),
          ("tanh", "tanh", {}, 0.5), ("softmax, first output of (z, 0)", "softmax", {}, 0.5)]
Z = np.linspace(-3.0, 3.0, 601)


def _curves(name, params, x_value):
    """``z``, ``sigma(z)``, ``B(x, z)`` and ``0.5 |x - sigma(z)|^2`` along :data:`Z`."""
    act = get_activation(name, **params)
    if name == "softmax":
        z = np.column_stack([Z, np.zeros_like(Z)])
        x = np.tile([x_value, 1.0 - x_value], (len(Z), 1))
    else:
        z, x = Z[:, None], np.full((len(Z), 1), x_value)
    s = act(z)
    return s[:, 0], act.bregman_loss(x, z), 0.5 * np.sum((x - s) ** 2, axis=1)


def draw(out):
    """Write ``figure1_activations.png`` and ``figure2_bregman_losses.png`` into ``out``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, "figure1_activations.png"), os.path.join(out, "figure2_bregman_losses.png")]
    fig1, axes1 = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.4))
    fig2, axes2 = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.4))
    for ax1, ax2, (label, name, params, x_value) in zip(axes1, axes2, PANELS):
        sigma, loss, squared = _curves(name, params, x_value)
        ax1.plot(Z, sigma)
        ax1.set(title=label, xlabel="z", ylabel="sigma(z)")
        ax1.grid(alpha=0.3)
        target = f"x = ({x_value}, {1 - x_value})" if name == "softmax" else f"x = {x_value}"
        ax2.plot(Z, loss, label="Bregman loss B(x, z)")
        ax2.plot(Z, squared, "--", label="0.5 |x - sigma(z)|^2")
        ax2.set(title=f"{label}, {target}", xlabel="z")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
    fig1.suptitle("Figure 1: proximal activations (Example 1)")
    fig2.suptitle("Figure 2: Bregman losses against the squared error (Example 2)")
    for fig, path in zip((fig1, fig2), paths):
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return paths


def add_parser(sub, formatter):
    p = sub.add_parser("figures", formatter_class=formatter,
                       help="the paper's Figures 1 and 2: the activations and their Bregman losses")
    p.add_argument("--out", default="results/figures", help="output directory")
    p.set_defaults(func=run)
    return p


def run(args):
    for path in draw(args.out):
        print(f"wrote {path}")
    return 0
