"""What the command line trains with: the library's defaults or the paper's settings (``--preset``).

``--preset library`` (the default) trains LBN with the library's variant of Algorithm 1 (momentum
between batches, each batch started from the forward pass, ``tau_theta="auto"``), each part measured
against the stored start and no momentum in docs/stochastic.rst. ``--preset paper`` trains Algorithm 1
as the paper states it (Section 6): no momentum, the stored auxiliary variables after one
forward-pass initialisation, steps by the paper's convexity condition (``"lipschitz"``, 1 / L per
block: "set ... to ensure convexity of J in (16)", Section 6.1), Glorot initialisation, and the
paper's sizes, epochs and random subsets where the text gives them. The values the paper's text
lost (the proximity weight tau, K for the classification and the 1K experiments, the batch sizes,
the back-propagation learning rates) stay the library's, and docs/cli.rst lists each.

Every table, legend and JSON record names the LBN model with its preset.
"""

from ._cli_args import cosine_steps

__all__ = ["PRESETS", "LIFTED_STEPS", "BACKPROP_STEPS", "BATCH_SIZE", "LBN", "LBN_OPTIONS", "apply_preset", "lbn_name",
           "model_steps", "estimator_settings", "preset_note"]

#: The LBN model's name in tables, legends and results.json, by preset
LBN = {"library": "lifted Bregman network (LBN, library defaults)", "paper": "lifted Bregman network (LBN, paper)"}
#: ``--batch-size``'s default, both presets' (the paper's text lost its batch sizes)
BATCH_SIZE = 100
#: The options that change how LBN trains from its preset's settings (unset: None), as ``args``' names
LBN_OPTIONS = ("inner_iterations", "aux_start", "momentum", "tau_theta", "tau_x", "tau", "penalty_growth")

#: The lifted solvers' steps where the command line leaves them, with the library's preset: the
#: estimators' own defaults but for the step sizes of the experiments (docs/results.rst). LBN's are
#: the defaults, whose "auto" depends on the network (ImplicitSGD.steps_for: tau 10 and tau_x 0.5 for
#: --arch mlp; tau_x 0.1 for the convolutional ones and, in the input metric, tau 100, tau_theta 0.25)
LIFTED_STEPS = {"bregman": dict(tau_theta="auto", tau_x="auto", tau="auto"),
                # the classical penalty keeps 0.5|x|^2 in the smooth part: it needs MATH.md's smaller steps
                "classical": dict(tau_theta=0.1, tau_x=0.1, tau=1.0),
                "autoencoder": dict(tau_theta=0.1, tau_x=0.1, tau=1.0)}
#: The paper's rule for both step sizes (tau, its value lost, stays the library's)
PAPER_STEPS = dict(tau_theta="lipschitz", tau_x="lipschitz")
BACKPROP_STEPS = {"classify": 0.1, "autoencoder": 0.05}

#: The run's sizes where the command line leaves them (None), by preset and command. The paper's:
#: classification on the full 60,000 / 10,000 images for 100 epochs (Section 6.1); the sparse
#: autoencoder on 1,000 random MNIST images, validated on all 10,000, for 100 epochs (6.2); the
#: denoising autoencoders on 1,000 (or 10,000) random images, validated on 10,000, for 50 epochs,
#: with K = 30 stated for the 10,000-image experiment (6.3)
PRESETS = {
    "library": {"classify": dict(epochs=5, n_train=5000, n_test=1000, subset="first", inner_iterations=10),
                "autoencoder": dict(epochs=5, n_train=1000, n_test=1000, subset="first", inner_iterations=10),
                "denoise": dict(epochs=5, n_train=1000, n_test=1000, subset="first", inner_iterations=10)},
    "paper": {"classify": dict(epochs=100, n_train=60000, n_test=10000, subset="first", inner_iterations=10),
              "autoencoder": dict(epochs=100, n_train=1000, n_test=10000, subset="random", inner_iterations=10),
              "denoise": dict(epochs=50, n_train=1000, n_test=10000, subset="random", inner_iterations=None)},
}


def apply_preset(args):
    """Fill the options the command line left unset (None) from ``args.preset``'s values (first noting,
    in ``args.lbn_options``, the :data:`LBN_OPTIONS` it set, for :func:`lbn_name`)."""
    args.lbn_options = {name: getattr(args, name) for name in LBN_OPTIONS if getattr(args, name, None) is not None}
    for name, value in PRESETS[args.preset][args.command].items():
        if getattr(args, name) is None:
            if name == "inner_iterations" and value is None:
                # Fashion-MNIST-10K: K = 30 (Section 6.3); for 1K the text lost K: the library's 10
                value = 30 if args.n_train >= 10000 else 10
            setattr(args, name, value)


def lbn_name(args, input_metric, auto_input_metric):
    """The LBN model's name: :data:`LBN`'s for its preset, with the options that changed its settings
    (``--batch-size`` other than :data:`BATCH_SIZE`, any of :data:`LBN_OPTIONS`, a ``--theta-metric``
    other than what ``auto`` takes) with their values, and ``input metric`` where its steps take it;
    e.g. ``lifted Bregman network (LBN, library defaults, input metric)`` or ``lifted Bregman network
    (LBN, library preset, --momentum 0.9 --tau-theta 0.5, input metric)``. Runs with other settings so
    never share a name in tables, legends, results.json or checkpoints."""
    given = dict(getattr(args, "lbn_options", {}))
    if args.batch_size != BATCH_SIZE:
        given = {"batch_size": args.batch_size, **given}
    if input_metric != auto_input_metric:
        given["theta_metric"] = args.theta_metric
    name = LBN[args.preset][:-1]
    if given:
        name = name.replace("library defaults", "library preset")
        name += ", " + " ".join(f"--{option.replace('_', '-')} {value}" for option, value in given.items())
    return name + (", input metric)" if input_metric else ")")


def model_steps(args, kind, command):
    """The step sizes of a model: the command line's where given, else the preset's lifted steps of
    ``kind`` (a key of :data:`LIFTED_STEPS`; the paper's rule but for the classical network, whose
    results the paper quotes from Zach and Estellers) and the back-propagation step of ``command``."""
    defaults = dict(LIFTED_STEPS[kind])
    if args.preset == "paper" and kind != "classical":
        defaults.update(PAPER_STEPS)
    steps = {name: getattr(args, name) if getattr(args, name) is not None else value
             for name, value in defaults.items()}
    for name in ("tau_theta", "tau_x"):
        if isinstance(steps[name], str) and steps[name].startswith("cosine:"):
            steps[name] = cosine_steps(steps[name], args.epochs)
    steps["learning_rate"] = args.learning_rate if args.learning_rate is not None else BACKPROP_STEPS[command]
    return steps


def estimator_settings(args):
    """The estimators' settings of the run. Where a batch starts and the momentum: the command
    line's where given, else the preset's (the paper: the stored variables, no momentum; the
    library: the estimators' defaults)."""
    paper = args.preset == "paper"
    settings = {"aux_start": args.aux_start if args.aux_start is not None else ("stored" if paper else None),
                "momentum": args.momentum if args.momentum is not None else (0.0 if paper else None)}
    settings = {name: value for name, value in settings.items() if value is not None}
    return dict(settings, batch_size=args.batch_size, inner_iterations=args.inner_iterations, epochs=args.epochs,
                dtype=args.dtype, n_threads=args.threads, random_state=args.seed, verbose=not args.quiet,
                track_metrics=True)     # the tables and plots are per epoch: the training metrics are tracked


def preset_note(args):
    """The line that names, above a table and in a plot's title, how the lifted models were trained."""
    if args.preset == "paper":
        return ("lifted models: the paper's Algorithm 1 (--preset paper: stored start, no momentum, steps 1/L by "
                "the convexity condition of Section 6.1)")
    return ("lifted models: the library's defaults (--preset library: " +
            ("forward start, momentum 0.7, tau_theta auto)" if args.command == "classify" else
             "stored start, no momentum, fixed steps tau_theta = tau_x = 0.1)"))
